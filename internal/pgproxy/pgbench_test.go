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
