package pgproxy

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/internal/pgtest"
)

// TestFailoverPausedPrimary freezes the primary (SIGSTOP of every server
// process) for longer than failover_after while clients write through three
// peers, then resumes it: a replica is promoted, writes continue there, and
// the resumed old primary never receives another write from any proxy.
func TestFailoverPausedPrimary(t *testing.T) {
	c := pgtest.New(t, pgtest.Spec{Name: "hapause", Replicas: 2, Sync: true,
		Conf: map[string]string{"wal_retrieve_retry_interval": "'200ms'"}})
	ctx := ctxT(t, 3*time.Minute)
	if err := setupApp(ctx, c); err != nil {
		t.Fatal(err)
	}
	setup, err := pgx.Connect(ctx, c.Primary().DSNFor("app", "postgres", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(ctx, "CREATE TABLE w (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())"); err != nil {
		t.Fatal(err)
	}
	setup.Close(ctx)
	proxies := haProxies(t, c, 3)
	write := func(p *testProxy) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, p.dsn("writer", "writer-pw"))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(cctx, "INSERT INTO w DEFAULT VALUES")
		return err
	}
	waitFor(t, ctx, "writes through every proxy", func() bool {
		for _, p := range proxies {
			if write(p) != nil {
				return false
			}
		}
		return true
	})
	old := c.Primary()
	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	waitFor(t, ctx, "writes through every proxy on a new primary", func() bool {
		for _, p := range proxies {
			if write(p) != nil {
				return false
			}
		}
		return true
	})
	t.Logf("writes resumed %v after the primary froze", time.Since(paused).Round(10*time.Millisecond))
	if err := old.Resume(); err != nil {
		t.Fatal(err)
	}
	// A statement that reached the frozen primary's socket before the
	// failover runs when it thaws (PostgreSQL reads what the kernel already
	// received even though the proxy closed the connection); with
	// synchronous replication its commit is never acknowledged and it is
	// discarded when the node is rewound. What must not happen is a new
	// write reaching it: count, then keep writing through every proxy.
	count := func() int64 {
		var n int64
		if err := old.QueryRowAs(ctx, "app", "postgres", "", "SELECT count(*) FROM w").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, prev := count(), int64(-1)
	waitFor(t, ctx, "the thawed in-flight statements to settle", func() bool {
		prev, before = before, count()
		return prev == before
	})
	for range 20 {
		for _, p := range proxies {
			_ = write(p)
		}
	}
	var after int64
	if err := old.QueryRowAs(ctx, "app", "postgres", "", "SELECT count(*) FROM w").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("the resumed old primary received %d new writes after the failover", after-before)
	}
}
