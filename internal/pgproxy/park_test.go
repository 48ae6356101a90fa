package pgproxy

import (
	"context"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestParkIdleClients: idle clients park (their goroutines exit) and
// resume transparently; clients in a transaction or listening stay;
// a client that hangs up while parked is cleaned up; shutdown is quick.
func TestParkIdleClients(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Skip("parking needs epoll")
	}
	ctx := ctxT(t, 2*time.Minute)
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.ParkIdleClientsAfter = 100 * time.Millisecond
	px := startProxy(t, cfg)
	if px.srv.parker == nil {
		t.Fatal("no parker on Linux")
	}
	const idle = 50
	var conns []*pgx.Conn
	for range idle {
		conns = append(conns, px.connect(t, ctx))
	}
	inTx := px.connect(t, ctx)
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listener := px.connect(t, ctx)
	if _, err := listener.Exec(ctx, "LISTEN qc_park"); err != nil {
		t.Fatal(err)
	}
	before := goruntime.NumGoroutine()
	waitFor(t, ctx, "idle clients parked", func() bool { return px.srv.parker.count() == idle })
	t.Logf("goroutines %d → %d with %d clients parked", before, goruntime.NumGoroutine(), idle)

	// Parked clients run queries as if nothing happened, several times.
	for round := range 3 {
		for i, conn := range conns {
			var n int
			if err := conn.QueryRow(ctx, "SELECT $1::int", i).Scan(&n); err != nil || n != i {
				t.Fatalf("round %d client %d: %v %d", round, i, err, n)
			}
		}
		waitFor(t, ctx, "parked again", func() bool { return px.srv.parker.count() == idle })
	}
	// The transaction and the listener were never parked and still work.
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	notifier := px.connect(t, ctx)
	if _, err := notifier.Exec(ctx, "NOTIFY qc_park, 'hi'"); err != nil {
		t.Fatal(err)
	}
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	n, err := listener.WaitForNotification(nctx)
	cancel()
	if err != nil || n.Payload != "hi" {
		t.Fatalf("notification: %v %v", n, err)
	}
	// Hanging up while parked frees the client.
	clients := px.srv.Clients()
	for _, conn := range conns[:10] {
		_ = conn.Close(ctx)
	}
	waitFor(t, ctx, "hung-up parked clients gone", func() bool { return px.srv.Clients() == clients-10 })
	// Shutdown with parked clients does not wait for shutdown_timeout.
	waitFor(t, ctx, "parked", func() bool { return px.srv.parker.count() >= idle-10 })
	start := time.Now()
	px.stop()
	if took := time.Since(start); took > cfg.ShutdownTimeout {
		t.Fatalf("shutdown took %v", took)
	}
}
