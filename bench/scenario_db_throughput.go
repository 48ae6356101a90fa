package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tiergate/tiergate/internal/pgtest"
)

func dbThroughputScenario() scenario {
	return scenario{
		name:  "db-throughput",
		title: "pgbench TPS, 32 clients, transaction pooling: direct, PgBouncer, dbproxy (single node; primary + 2 replicas)",
		needs: []string{"postgres", "pgbench", "pgbouncer"},
		run:   runDBThroughput,
	}
}

func pgbenchWorkloads() []string { return []string{"select-only", "tpcb-like"} }
func pgbenchModes() []string     { return []string{"simple", "extended", "prepared"} }

func tpsGroup(workload, mode string) string {
	return fmt.Sprintf("pgbench -b %s -M %s", workload, mode)
}

func runDBThroughput(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	systems := []string{sysPGDirect, sysPgBouncer, sysDBProxy, sysDBProxySplit}
	res.Systems, res.Baseline = systems, sysPgBouncer
	d := h.dur(h.opts.pgDur, 3*time.Second, time.Second)
	scale := 10
	if h.opts.smoke {
		scale = 1
	}
	const clients = 32
	res.Settings["pgbench"] = fmt.Sprintf("pgbench -c %d -j 2 -T %s -n, scale %d", clients, d, scale)
	res.Settings["pgbouncer"] = "pool_mode transaction, default_pool_size 20, auth trust, single process"
	res.Settings["dbproxy"] = "pool mode transaction, size 20 per node, auth trust; 'dbproxy' has the primary only, the split variant also 2 streaming replicas (reads go there)"
	res.Settings["direct"] = "pgbench straight to the primary"

	if _, err := h.build(ctx, sysDBProxy, "./cmd/dbproxy"); err != nil {
		return err
	}
	cl, err := h.startCluster(ctx, 2, scale)
	if err != nil {
		return err
	}
	defer cl.Close()
	primary := cl.Primary().Addr()
	run := map[string]*pgSystem{sysPGDirect: {name: sysPGDirect, addr: primary}}
	start := func(name string) (*pgSystem, error) {
		switch name {
		case sysPgBouncer:
			return h.startPgBouncer(ctx, primary, 1000)
		case sysDBProxy:
			return h.startDBProxy(ctx, name, primary, nil, 1000)
		default:
			return h.startDBProxy(ctx, name, primary, nodeAddrs(cl.Replicas()), 1000)
		}
	}
	for _, name := range systems[1:] {
		h.prog.begin(0, "starting %s", name)
		s, err := start(name)
		if err != nil {
			if h.failed(ctx, rec, name, allRounds, err) {
				return ctx.Err()
			}
			continue
		}
		h.prog.end("listening on %s", s.addr)
		run[name] = s
	}

	// A system that fails a (workload, mode) in the first round, such as
	// PgBouncer 1.18 with -M prepared, is not run again for it: the
	// failure is recorded once and the time goes to the others.
	broken := map[string]bool{}
	for r := range h.roundsOf() {
		for _, wl := range pgbenchWorkloads() {
			for _, mode := range pgbenchModes() {
				group := tpsGroup(wl, mode)
				for _, name := range systems {
					s := run[name]
					if s == nil || broken[group+name] {
						continue
					}
					h.prog.begin(d, "round %d/%d %s %s", r+1, h.roundsOf(), group, name)
					pr, err := h.pgbench(ctx, pgbenchSpec{Addr: s.addr, User: benchPG, Database: benchDB, Builtin: wl, Protocol: mode, Clients: clients, Jobs: 2, Duration: d})
					if err != nil {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						h.prog.end("failed")
						if s.proc != nil {
							if tail := strings.TrimSpace(s.proc.logTail(3)); tail != "" {
								err = fmt.Errorf("%w\n%s log: %s", err, name, tail)
							}
						}
						rec.fail(name, r, fmt.Errorf("%s: %w", group, err))
						broken[group+name] = true
						continue
					}
					rec.add(metricKey{Name: "tps", Group: group, Unit: "TPS", Better: "higher"}, name, r, pr.TPS)
					h.prog.end("%.0f TPS", pr.TPS)
				}
			}
		}
	}
	rec.finish()
	for _, mode := range pgbenchModes() {
		for _, wl := range pgbenchWorkloads() {
			rec.ratioGoal(fmt.Sprintf("dbproxy ≥ 1.1× PgBouncer TPS (%s, -M %s)", wl, mode), tpsGroup(wl, mode), "tps", sysDBProxy, sysPgBouncer, ">=", 1.1)
		}
	}
	if h.wantProfile(res) && run[sysDBProxy] != nil {
		h.profileDBProxy(ctx, res, cl, d)
	}
	return nil
}

// profileDBProxy runs the in-process dbproxy engine (single node) under
// pgbench -S -M extended and stores the top of its CPU profile.
func (h *harness) profileDBProxy(ctx context.Context, res *Result, cl *pgtest.Cluster, d time.Duration) {
	d = max(d, 5*time.Second)
	h.prog.begin(d, "CPU profile of the in-process dbproxy engine under pgbench -S -M extended")
	pr, err := h.startProfiled(ctx, res.Scenario, "dbproxy", dbproxyProfileConfig(cl.Primary().Addr()), pgCheck)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	out, err := h.pgbench(ctx, pgbenchSpec{Addr: pr.addr, User: benchPG, Database: benchDB, Builtin: "select-only", Protocol: "extended", Clients: 32, Jobs: 2, Duration: d})
	pr.p.stop(10 * time.Second)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	res.Notes = append(res.Notes, fmt.Sprintf("profiled run (in-process dbproxy under runtime/pprof, pgbench -S -M extended): %.0f TPS", out.TPS))
	h.storeProfile(ctx, res, pr.cpu)
}
