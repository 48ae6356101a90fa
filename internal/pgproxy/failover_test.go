package pgproxy

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReplicaLossUnderLoad kills one replica while clients read, then the
// other: no read may fail, and with no replica left reads go to the primary.
func TestReplicaLossUnderLoad(t *testing.T) {
	c := newCluster(t, 2)
	cfg := testConfig(c)
	cfg.Pool.Size = 6
	p := startProxy(t, cfg)
	ctx := ctxT(t, 2*time.Minute)
	p.waitReplicasReadable(t, ctx)

	const clients = 6
	var (
		reads, failures, onPrimary atomic.Int64
		stop                       atomic.Bool
		wg                         sync.WaitGroup
		firstErr                   atomic.Pointer[error]
	)
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		conns[i] = p.connect(t, ctx)
	}
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(conn *pgx.Conn) {
			defer wg.Done()
			for !stop.Load() {
				var rec bool
				if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				reads.Add(1)
				if !rec {
					onPrimary.Add(1)
				}
			}
		}(conns[i])
	}
	waitReads := func(n int64) {
		target := reads.Load() + n
		waitFor(t, ctx, "reads to progress", func() bool { return reads.Load() >= target })
	}
	waitReads(300)
	replicas := c.Replicas()
	if err := replicas[0].Kill(); err != nil {
		t.Fatal(err)
	}
	waitReads(1000)
	if f := failures.Load(); f != 0 {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("%d reads failed after one replica died; first: %v", f, *firstErr.Load())
	}
	before := onPrimary.Load()
	if err := replicas[1].Kill(); err != nil {
		t.Fatal(err)
	}
	waitReads(1000)
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d reads failed; first: %v", f, *firstErr.Load())
	}
	if onPrimary.Load()-before < 500 {
		t.Fatalf("only %d reads reached the primary after both replicas died", onPrimary.Load()-before)
	}
	st := p.srv.rt.Load().clusters["app"].stats
	t.Logf("%d reads, 0 failed, %d retried, %d fell back to the primary", reads.Load(), st.retries.Load(), st.fallbacks.Load())

	// A replica that comes back takes reads again.
	if err := replicas[0].Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn := conns[0]
	waitFor(t, ctx, "reads back on the restarted replica", func() bool {
		var rec bool
		return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec) == nil && rec
	})
}

// TestLaggingReplicaSkipped pauses replay on one replica: once its lag
// passes max_replica_lag_bytes it stops getting reads.
func TestLaggingReplicaSkipped(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Routing.MaxReplicaLagBytes = 64 << 10
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	p.waitReplicasReadable(t, ctx)
	lagging := c.Replicas()[0]
	if err := lagging.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lagging.Exec(context.Background(), "SELECT pg_wal_replay_resume()") }()
	if err := c.Primary().Exec(ctx, "CREATE TABLE IF NOT EXISTS lagfill AS SELECT g, repeat('x', 200) AS s FROM generate_series(1, 2000) g"); err != nil {
		t.Fatal(err)
	}
	if err := c.Primary().Exec(ctx, "INSERT INTO lagfill SELECT g, repeat('y', 200) FROM generate_series(1, 2000) g"); err != nil {
		t.Fatal(err)
	}
	var n *node
	for _, r := range p.srv.rt.Load().clusters["app"].replicas {
		if r.addr == lagging.Addr() {
			n = r
		}
	}
	waitFor(t, ctx, "the paused replica to be seen lagging", func() bool { return !n.readable(0) })
	conn := p.connect(t, ctx)
	for i := 0; i < 50; i++ {
		var port int
		if err := conn.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
		if port == lagging.Port {
			t.Fatalf("read %d went to the lagging replica (lag %d bytes)", i, n.lagBytes.Load())
		}
	}
	if err := lagging.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the replica to catch up", func() bool { return n.readable(0) })
}

// TestWrongRoleReplica promotes the only replica: it is no longer in
// recovery, so it stops getting reads (they fall back to the primary).
func TestWrongRoleReplica(t *testing.T) {
	c := newCluster(t, 1)
	p := startProxy(t, testConfig(c))
	ctx := ctxT(t, time.Minute)
	p.waitReplicasReadable(t, ctx)
	conn := p.connect(t, ctx)
	var port int
	if err := conn.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil || port != c.Replicas()[0].Port {
		t.Fatalf("read went to port %d (%v)", port, err)
	}
	r := c.Replicas()[0]
	if err := r.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	n := p.srv.rt.Load().clusters["app"].replicas[0]
	waitFor(t, ctx, "the promoted replica to be seen in the wrong role", func() bool { return !n.readable(0) })
	if !strings.Contains(n.errString(), "pg_is_in_recovery") {
		t.Errorf("node error %q", n.errString())
	}
	for i := 0; i < 20; i++ {
		if err := conn.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
		if port != c.Primary().Port && port != c.Nodes[0].Port {
			t.Fatalf("read %d went to the promoted node (port %d)", i, port)
		}
	}
}
