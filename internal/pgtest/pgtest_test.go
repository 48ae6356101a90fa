package pgtest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestReplicatedClusterStreams(t *testing.T) {
	c := New(t, Spec{Replicas: 2})
	ctx := ctxT(t, time.Minute)
	p := c.Primary()
	if p == nil || len(c.Replicas()) != 2 {
		t.Fatalf("want 1 primary + 2 replicas, got %d nodes", len(c.Nodes))
	}
	if err := p.Exec(ctx, "CREATE TABLE t (id int primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "INSERT INTO t VALUES ($1, $2)", 1, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Replicas() {
		var v string
		var inRecovery bool
		if err := r.QueryRow(ctx, "SELECT v, pg_is_in_recovery() FROM t WHERE id = 1").Scan(&v, &inRecovery); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		if v != "hello" || !inRecovery {
			t.Fatalf("%s: got %q in_recovery=%v", r.Name, v, inRecovery)
		}
		if err := r.Exec(ctx, "INSERT INTO t VALUES (2, 'x')"); err == nil {
			t.Fatalf("%s: a replica accepted a write", r.Name)
		}
	}
	var sums int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").Scan(&sums); err != nil || sums != 2 {
		t.Fatalf("pg_stat_replication: %d, %v", sums, err)
	}
	var checksums string
	if err := p.QueryRow(ctx, "SHOW data_checksums").Scan(&checksums); err != nil || checksums != "on" {
		t.Errorf("data_checksums = %q, %v", checksums, err)
	}
}

func TestKillPromoteRepoint(t *testing.T) {
	c := New(t, Spec{Replicas: 2, Sync: true})
	ctx := ctxT(t, 2*time.Minute)
	old := c.Primary()
	if err := old.Exec(ctx, "CREATE TABLE t (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	// Synchronous (ANY 1): once acknowledged, a row is on at least one replica.
	for i := range 50 {
		if err := old.Exec(ctx, "INSERT INTO t VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	if old.Running() || old.Exec(ctx, "SELECT 1") == nil {
		t.Fatal("killed primary still answers")
	}
	newP, other := c.Replicas()[0], c.Replicas()[1]
	if err := newP.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if newP.Role() != RolePrimary {
		t.Fatal("promoted node's role not updated")
	}
	// The promoted node is writable and has every acknowledged row.
	if err := newP.Exec(ctx, "INSERT INTO t VALUES (1000)"); err != nil {
		t.Fatalf("write after promote: %v", err)
	}
	var n int
	if err := newP.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 51 {
		t.Fatalf("rows on new primary: %d, %v", n, err)
	}
	// The other replica follows the new primary's timeline.
	if err := other.Repoint(ctx, newP); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, func() bool {
		var got int
		return other.QueryRow(ctx, "SELECT count(*) FROM t WHERE id = 1000").Scan(&got) == nil && got == 1
	}); err != nil {
		t.Fatalf("repointed replica did not follow: %v\n%s", err, other.LogTail(20))
	}
}

func TestStopStartPauseResume(t *testing.T) {
	c := New(t, Spec{})
	ctx := ctxT(t, time.Minute)
	p := c.Primary()
	if err := p.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// A session opened before the pause must freeze too: its backend is a
	// child of the postmaster in a session of its own.
	open, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(context.Background())
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = p.Exec(short, "SELECT 1")
	cancel()
	if err == nil {
		t.Fatal("paused server answered a new connection")
	}
	short, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = open.Exec(short, "SELECT count(*) FROM t")
	cancel()
	if err == nil {
		t.Fatal("a session opened before the pause kept answering")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	// Kill then Start again: crash recovery keeps committed rows, and no
	// process of the killed server survives.
	procs := serverProcesses(p.Pid())
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if anyAlive(procs) {
		t.Fatal("backends survived Kill")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after restart: %d, %v", n, err)
	}
}

func TestShardsAndAuth(t *testing.T) {
	shards := NewShards(t, 2, Spec{Auth: "scram-sha-256"})
	ctx := ctxT(t, time.Minute)
	if len(shards) != 2 || shards[0].Name != "shard0" || shards[1].Name != "shard1" {
		t.Fatalf("shards: %+v", shards)
	}
	if shards[0].Primary().Port == shards[1].Primary().Port {
		t.Fatal("shards share a port")
	}
	p := shards[0].Primary()
	if err := p.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD 'pw'"); err != nil {
		t.Fatal(err)
	}
	ok := p.QueryRowAs(ctx, "postgres", "app", "pw", "SELECT 1").Scan(new(int))
	bad := p.QueryRowAs(ctx, "postgres", "app", "wrong", "SELECT 1").Scan(new(int))
	if ok != nil || bad == nil {
		t.Fatalf("scram: good password %v, bad password %v", ok, bad)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	skipWithoutPostgres(t)
	ctx := ctxT(t, time.Minute)
	c, err := StartCluster(ctx, Spec{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	pids := append(serverProcesses(c.Nodes[0].Pid()), serverProcesses(c.Nodes[1].Pid())...)
	if len(pids) < 6 {
		t.Fatalf("only %d server processes found: children not discovered", len(pids))
	}
	base := c.base
	c.Close()
	if anyAlive(pids) {
		t.Errorf("server processes still alive after Close")
	}
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not removed: %v", base, err)
	}
}
