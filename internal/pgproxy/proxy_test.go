package pgproxy

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestReadsOnReplicasWritesOnPrimary(t *testing.T) {
	c := sharedCluster(t)
	p := startProxy(t, testConfig(c))
	ctx := ctxT(t, time.Minute)
	p.waitReplicasReadable(t, ctx)
	conn := p.connect(t, ctx)

	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol},
		{"exec", pgx.QueryExecModeExec},
		{"cache_statement", pgx.QueryExecModeCacheStatement},
		{"describe_exec", pgx.QueryExecModeDescribeExec},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var inRecovery bool
			if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()", m.mode).Scan(&inRecovery); err != nil {
				t.Fatal(err)
			}
			if !inRecovery {
				t.Error("read went to the primary")
			}
			var hinted bool
			if err := conn.QueryRow(ctx, "/* tiergate: primary */ SELECT pg_is_in_recovery()", m.mode).Scan(&hinted); err != nil {
				t.Fatal(err)
			}
			if hinted {
				t.Error("hinted read went to a replica")
			}
		})
	}

	// A transaction is pinned to the primary.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		var inRecovery bool
		if err := tx.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			t.Fatal(err)
		}
		if inRecovery {
			t.Fatal("statement in a transaction went to a replica")
		}
	}
	var pid1, pid2 int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid1); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 {
		t.Fatalf("transaction moved between server connections: %d then %d", pid1, pid2)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// BEGIN READ ONLY may go to a replica.
	tx, err = conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	var inRecovery bool
	if err := tx.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if !inRecovery {
		t.Error("BEGIN READ ONLY transaction went to the primary")
	}

	// SET tiergate.route is answered by the proxy.
	for _, tc := range []struct {
		set      string
		recovery bool
	}{{"SET tiergate.route = primary", false}, {"SET tiergate.route TO replica", true}, {"RESET tiergate.route", true}} {
		if _, err := conn.Exec(ctx, tc.set); err != nil {
			t.Fatalf("%s: %v", tc.set, err)
		}
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.recovery {
			t.Errorf("after %s: pg_is_in_recovery() = %v", tc.set, got)
		}
	}
	var route string
	if err := conn.QueryRow(ctx, "SHOW tiergate.route", pgx.QueryExecModeSimpleProtocol).Scan(&route); err != nil || route != "auto" {
		t.Errorf("SHOW tiergate.route = %q, %v", route, err)
	}

	// Writes go to the primary.
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS rw (id int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO rw VALUES ($1)", 1); err != nil {
		t.Fatal(err)
	}
}
