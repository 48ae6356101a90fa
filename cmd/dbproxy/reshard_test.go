package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/internal/pgproxy"
	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/shardmap"
)

const reshardSchema = `
CREATE TABLE usernames (name text PRIMARY KEY, user_id bigint NOT NULL);
CREATE TABLE users (user_id bigint PRIMARY KEY, name text NOT NULL, password_hash text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE posts (user_id bigint NOT NULL, post_id bigint NOT NULL, author text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (user_id, post_id));
`

// shardedYAML is a proxy config for database app over the given shards.
func shardedYAML(version int, shards []*pgtest.Cluster) string {
	var b strings.Builder
	fmt.Fprintf(&b, `listen: 127.0.0.1:0
log: {level: warn}
admin_users: [admin]
health: {interval: 200ms, timeout: 150ms, rise: 1}
users:
  - {name: app, password: pw}
  - {name: admin, password: adminpw, server_user: app, server_password: pw}
databases:
  app:
    server_database: rs
    shards:
`)
	var names []string
	for i, c := range shards {
		fmt.Fprintf(&b, "      - {primary: %s, replicas: [%s]}\n", c.Primary().Addr(), c.Replicas()[0].Addr())
		names = append(names, fmt.Sprintf("s%d", i))
	}
	fmt.Fprintf(&b, `    sharding:
      version: %d
      shards: [%s]
      key_spaces: [{name: users, type: bigint, function: hash}]
      tables:
        - {table: users, column: user_id, key_space: users}
        - {table: posts, column: user_id, key_space: users}
      reference_tables: [usernames]
`, version, strings.Join(names, ", "))
	return b.String()
}

// TestReshardTwoToThree reshards 100k users (and their posts) from two
// shards to three with `dbproxy reshard`, through a running proxy that
// takes writes meanwhile: no key is lost or duplicated, every row ends on
// its new shard, and the proxy serves every key after the cutover.
func TestReshardTwoToThree(t *testing.T) {
	cs := pgtest.NewShards(t, 3, pgtest.Spec{Name: "rs", Replicas: 1, Auth: "scram-sha-256"})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, c := range cs {
		for _, q := range []string{"CREATE ROLE app LOGIN PASSWORD 'pw'", "CREATE DATABASE rs OWNER app"} {
			if err := c.Primary().Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		conn, err := pgx.Connect(ctx, c.Primary().DSNFor("rs", "app", "pw"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, reshardSchema); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close(ctx)
	}
	dir := t.TempDir()
	oldPath, newPath, proxyPath := filepath.Join(dir, "old.yaml"), filepath.Join(dir, "new.yaml"), filepath.Join(dir, "proxy.yaml")
	for path, text := range map[string]string{oldPath: shardedYAML(1, cs[:2]), newPath: shardedYAML(2, cs), proxyPath: shardedYAML(1, cs[:2])} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	oldCfg, err := pgproxy.LoadConfig(oldPath)
	if err != nil {
		t.Fatal(err)
	}
	newCfg, err := pgproxy.LoadConfig(newPath)
	if err != nil {
		t.Fatal(err)
	}
	oldMap, _ := shardmap.New(*oldCfg.Databases["app"].Sharding)
	newMap, _ := shardmap.New(*newCfg.Databases["app"].Sharding)

	// 100k users and 20k posts, straight into their old shards.
	const users, posts = 100_000, 20_000
	direct := make([]*pgx.Conn, 3)
	for i, c := range cs {
		conn, err := pgx.Connect(ctx, c.Primary().DSNFor("rs", "app", "pw"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		direct[i] = conn
	}
	urows, prows := make([][][]any, 2), make([][][]any, 2)
	for k := int64(1); k <= users; k++ {
		s, err := oldMap.ShardFor("users", shardmap.Int64Key(k))
		if err != nil {
			t.Fatal(err)
		}
		urows[s] = append(urows[s], []any{k, fmt.Sprint("u", k), "h"})
		if k <= posts {
			prows[s] = append(prows[s], []any{k, int64(1), "a", "b"})
		}
	}
	for s := 0; s < 2; s++ {
		if _, err := direct[s].CopyFrom(ctx, pgx.Identifier{"users"}, []string{"user_id", "name", "password_hash"}, pgx.CopyFromRows(urows[s])); err != nil {
			t.Fatal(err)
		}
		if _, err := direct[s].CopyFrom(ctx, pgx.Identifier{"posts"}, []string{"user_id", "post_id", "author", "body"}, pgx.CopyFromRows(prows[s])); err != nil {
			t.Fatal(err)
		}
		if _, err := direct[s].Exec(ctx, "INSERT INTO usernames VALUES ('ref', 1)"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		if err := c.WaitReplayed(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The running proxy, reading proxy.yaml on RELOAD.
	cfg, err := pgproxy.LoadConfig(proxyPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pgproxy.New(cfg, pgproxy.Options{LoadConfig: func() (*pgproxy.Config, error) { return pgproxy.LoadConfig(proxyPath) }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	proxyAddr := ln.Addr().String()
	dsn := fmt.Sprintf("postgres://app:pw@%s/app?sslmode=disable", proxyAddr)

	// A dry run describes the plan.
	var out, errOut bytes.Buffer
	if code := run([]string{"reshard", "-config", oldPath, "-to", newPath, "-dry-run"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "shards added: s2") {
		t.Fatalf("dry run: %d\n%s%s", code, out.String(), errOut.String())
	}

	// Writes through the proxy while the job runs.
	var written []int64
	var mu sync.Mutex
	var stop atomic.Bool
	writerDone := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			writerDone <- err
			return
		}
		defer conn.Close(context.Background())
		for k := int64(users + 1); !stop.Load(); k++ {
			if _, err := conn.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'w', 'h')", k); err != nil {
				writerDone <- fmt.Errorf("write %d: %w", k, err)
				return
			}
			mu.Lock()
			written = append(written, k)
			mu.Unlock()
		}
		writerDone <- nil
	}()

	// The operator puts the new map in place for the proxies, then runs
	// the job with -cutover.
	if err := os.WriteFile(proxyPath, []byte(shardedYAML(2, cs)), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	start := time.Now()
	code := run([]string{"reshard", "-config", oldPath, "-to", newPath, "-state", filepath.Join(dir, "state.json"),
		"-cutover", "-proxy", proxyAddr, "-batch-rows", "20000"}, &out, &errOut)
	stop.Store(true)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("reshard: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	t.Logf("resharded in %v; %d users written through the proxy meanwhile", time.Since(start).Round(time.Millisecond), len(written))

	// Key sets: every key once, on its new shard.
	want := make([]int64, 0, users+len(written))
	for k := int64(1); k <= users; k++ {
		want = append(want, k)
	}
	want = append(want, written...)
	var got []int64
	for s, conn := range direct {
		rows, err := conn.Query(ctx, "SELECT user_id FROM users")
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			ns, _ := newMap.ShardFor("users", shardmap.Int64Key(k))
			if ns != s {
				t.Fatalf("user %d is on shard %d, its new shard is %d", k, s, ns)
			}
		}
		got = append(got, keys...)
		var refs int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM usernames").Scan(&refs); err != nil || refs != 1 {
			t.Fatalf("shard %d: reference rows %d %v", s, refs, err)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("key set after resharding: %d keys, want %d (lost or duplicated)", len(got), len(want))
	}
	var postCount int
	for _, conn := range direct {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts").Scan(&n); err != nil {
			t.Fatal(err)
		}
		postCount += n
	}
	if postCount != posts {
		t.Fatalf("posts after resharding: %d, want %d", postCount, posts)
	}

	// The proxy serves every key from the new map.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var total int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&total); err != nil || total != len(want) {
		t.Fatalf("count through the proxy: %d %v, want %d", total, err, len(want))
	}
	for i := 0; i < len(want); i += 97 {
		var name string
		if err := conn.QueryRow(ctx, "/* tiergate: primary */ SELECT name FROM users WHERE user_id = $1", want[i]).Scan(&name); err != nil {
			t.Fatalf("user %d through the proxy: %v", want[i], err)
		}
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts WHERE user_id = ANY($1)", want[:posts]).Scan(&total); err != nil || total != posts {
		t.Fatalf("posts through the proxy: %d %v", total, err)
	}
}
