package pgproxy

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPreparedTransactionsSmallPool: named prepared statements inside
// explicit transactions with more clients than server connections must not
// deadlock (each transaction keeps to its one server connection).
func TestPreparedTransactionsSmallPool(t *testing.T) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		t.Skip("pgbench not installed")
	}
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Databases["app"] = DatabaseConfig{Primary: c.Primary().Addr()} // single node
	cfg.Pool.Size = 2
	cfg.Pool.QueryWaitTimeout = 5 * time.Second
	p := startProxy(t, cfg)
	ctx := ctxT(t, 2*time.Minute)
	if out, err := runInit(ctx, c.Primary().Addr()); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	out, err := runPgbench(ctx, p.addr, "-c", "8", "-j", "2", "-T", "3", "-M", "prepared")
	if err != nil || !strings.Contains(out, "number of failed transactions: 0") {
		t.Fatalf("pgbench tpcb-like -M prepared, 8 clients on 2 connections: %v\n%s", err, out)
	}
}
