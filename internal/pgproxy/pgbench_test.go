package pgproxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runPgbench runs pgbench against addr as user app on database app.
func runPgbench(ctx context.Context, addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	all := append([]string{"-h", host, "-p", port, "-U", "app", "-n"}, args...)
	all = append(all, "app")
	cmd := exec.CommandContext(ctx, "pgbench", all...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+appPassword, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=5")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var failedRE = regexp.MustCompile(`number of failed transactions: (\d+)`)
var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

func TestPgbench(t *testing.T) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		t.Skip("pgbench not installed")
	}
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Size = 4
	p := startProxy(t, cfg)
	ctx := ctxT(t, 2*time.Minute)
	if out, err := runInit(ctx, c.Primary().Addr()); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	p.waitReplicasReadable(t, ctx)
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			out, err := runPgbench(ctx, p.addr, "-S", "-c", "8", "-j", "2", "-T", "2", "-M", mode)
			if err != nil {
				t.Fatalf("pgbench: %v\n%s", err, out)
			}
			m := failedRE.FindStringSubmatch(out)
			if m == nil || m[1] != "0" {
				t.Fatalf("pgbench reported failures:\n%s", out)
			}
			if tps := tpsRE.FindStringSubmatch(out); tps != nil {
				t.Logf("%s: %s tps through the proxy (pool size 4, race detector on)", mode, tps[1])
			}
		})
	}
	// The write workload too (transactions, read-your-writes sampling).
	out, err := runPgbench(ctx, p.addr, "-c", "4", "-j", "2", "-T", "2", "-M", "prepared")
	if err != nil || !strings.Contains(out, "number of failed transactions: 0") {
		t.Fatalf("pgbench tpcb-like: %v\n%s", err, out)
	}
}

func runInit(ctx context.Context, addr string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, "pgbench", "-h", host, "-p", port, "-U", "app", "-i", "-s", "1", "-q", "app")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+appPassword, "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPgbenchFigures prints pgbench -S TPS through the proxy and direct
// (closing figures, not an assertion). Opt in with PGPROXY_BENCH=1; run
// without -race.
func TestPgbenchFigures(t *testing.T) {
	if os.Getenv("PGPROXY_BENCH") == "" {
		t.Skip("set PGPROXY_BENCH=1")
	}
	c := sharedCluster(t)
	ctx := ctxT(t, 10*time.Minute)
	if out, err := runInit(ctx, c.Primary().Addr()); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	dur := os.Getenv("PGPROXY_BENCH_T")
	if dur == "" {
		dur = "15"
	}
	run := func(name, addr, mode string) {
		out, err := runPgbench(ctx, addr, "-S", "-c", "32", "-j", "2", "-T", dur, "-M", mode)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		tps := tpsRE.FindStringSubmatch(out)
		failed := failedRE.FindStringSubmatch(out)
		if tps == nil || failed == nil {
			t.Fatalf("%s: unexpected output\n%s", name, out)
		}
		t.Logf("%-32s -M %-8s tps %10s  failed %s", name, mode, tps[1], failed[1])
	}
	split := testConfig(c)
	split.Pool.Size = 20
	split.Health.Interval, split.Health.Timeout = time.Second, 500*time.Millisecond
	ps := startProxy(t, split)
	ps.waitReplicasReadable(t, ctx)
	single := testConfig(c)
	single.Routing.ReadWriteSplit = new(false)
	single.Pool.Size = 20
	single.Health.Interval, single.Health.Timeout = time.Second, 500*time.Millisecond
	pp := startProxy(t, single)
	modes := []string{"simple", "extended", "prepared"}
	if m := os.Getenv("PGPROXY_BENCH_MODES"); m != "" {
		modes = strings.Split(m, ",")
	}
	for _, mode := range modes {
		if os.Getenv("PGPROXY_BENCH_NODIRECT") == "" {
			run("direct (primary)", c.Primary().Addr(), mode)
		}
		run("dbproxy, primary only, pool 20", pp.addr, mode)
		run("dbproxy, read/write split, pool 20", ps.addr, mode)
	}
}
