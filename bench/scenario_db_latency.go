package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func dbLatencyScenario() scenario {
	return scenario{
		name:  "db-latency",
		title: "added latency per SELECT 1 at 1 client (proxy − direct): dbproxy vs PgBouncer",
		needs: []string{"postgres", "pgbench", "pgbouncer"},
		run:   runDBLatency,
	}
}

func runDBLatency(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	systems := []string{sysPGDirect, sysPgBouncer, sysDBProxy}
	res.Systems, res.Baseline = systems, sysPgBouncer
	d := h.dur(h.opts.pgDur, 3*time.Second, time.Second)
	res.Settings["pgbench"] = fmt.Sprintf("pgbench -c 1 -j 1 -M simple -T %s -f select1.sql (SELECT 1), per-transaction log", d)
	res.Settings["added"] = "per round: the proxy's p50 (and mean) latency minus direct's in the same round; the goal compares the p50 through each proxy (equivalent, and well-conditioned)"

	script := filepath.Join(h.tmp, "select1.sql")
	if err := os.WriteFile(script, []byte("SELECT 1;\n"), 0o644); err != nil {
		return err
	}
	if _, err := h.build(ctx, sysDBProxy, "./cmd/dbproxy"); err != nil {
		return err
	}
	cl, err := h.startCluster(ctx, 0, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	primary := cl.Primary().Addr()
	run := map[string]*pgSystem{sysPGDirect: {name: sysPGDirect, addr: primary}}
	for _, name := range systems[1:] {
		h.prog.begin(0, "starting %s", name)
		var s *pgSystem
		if name == sysPgBouncer {
			s, err = h.startPgBouncer(ctx, primary, 1000)
		} else {
			s, err = h.startDBProxy(ctx, name, primary, nil, 1000)
		}
		if err != nil {
			if h.failed(ctx, rec, name, allRounds, err) {
				return ctx.Err()
			}
			continue
		}
		h.prog.end("listening on %s", s.addr)
		run[name] = s
	}
	logDir := filepath.Join(h.tmp, "pgbench-log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	const group = "SELECT 1 latency, 1 client"
	mMean := metricKey{Name: "mean", Group: "added latency per SELECT 1 (proxy − direct)", Unit: "ms", Better: "lower"}
	mP50 := metricKey{Name: "p50", Group: "added p50 latency (proxy − direct)", Unit: "ms", Better: "lower"}
	for r := range h.roundsOf() {
		means, p50s := map[string]float64{}, map[string]float64{}
		for _, name := range systems {
			s := run[name]
			if s == nil {
				continue
			}
			h.prog.begin(d, "round %d/%d %s", r+1, h.roundsOf(), name)
			pr, err := h.pgbench(ctx, pgbenchSpec{Addr: s.addr, User: benchPG, Database: benchDB, Script: script, Protocol: "simple", Clients: 1, Jobs: 1, Duration: d, LogDir: logDir})
			if err == nil && pr.Samples.count() == 0 {
				err = fmt.Errorf("pgbench logged no transactions")
			}
			if err != nil {
				if h.failed(ctx, rec, name, r, err) {
					return ctx.Err()
				}
				continue
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			for _, k := range pctKeys(group) {
				q := map[string]float64{"p50": 0.5, "p99": 0.99, "p99.9": 0.999}[k.Name]
				rec.add(k, name, r, ms(pr.Samples.quantile(q)))
			}
			means[name], p50s[name] = ms(pr.Samples.mean()), ms(pr.Samples.quantile(0.5))
			h.prog.end("mean %.3fms p50 %.3fms p99 %.3fms (%.0f TPS)", means[name], p50s[name], ms(pr.Samples.quantile(0.99)), pr.TPS)
		}
		direct, ok := means[sysPGDirect]
		if !ok {
			continue
		}
		for _, name := range systems[1:] {
			if m, ok := means[name]; ok {
				rec.add(mMean, name, r, m-direct)
				rec.add(mP50, name, r, p50s[name]-p50s[sysPGDirect])
			}
		}
	}
	rec.finish()
	// Direct is common to both, so "dbproxy adds no more than PgBouncer"
	// is "dbproxy's latency ≤ PgBouncer's": judged on that ratio, which
	// stays well-defined when PgBouncer's added latency is near zero (a
	// ratio of two small differences swings wildly on a busy machine). It
	// uses p50, which CPU-starvation outliers do not move.
	g := rec.ratioGoal("dbproxy added latency per SELECT 1 ≤ PgBouncer's (p50 through each, same direct)", group, "p50", sysDBProxy, sysPgBouncer, "<=", 1.0)
	if a, b := rec.find(mP50.Group, mP50.Name, sysDBProxy), rec.find(mP50.Group, mP50.Name, sysPgBouncer); a != nil && b != nil {
		g.Note = fmt.Sprintf("added p50: dbproxy %.1fµs, PgBouncer %.1fµs", float64(a.Median)*1000, float64(b.Median)*1000)
		res.Goals[len(res.Goals)-1] = g
	}
	if h.wantProfile(res) {
		h.profileDBLatency(ctx, res, primary, script, d)
	}
	return nil
}

// profileDBLatency profiles the in-process dbproxy under the 1-client
// SELECT 1 load.
func (h *harness) profileDBLatency(ctx context.Context, res *Result, primary, script string, d time.Duration) {
	d = max(d, 5*time.Second)
	h.prog.begin(d, "CPU profile of the in-process dbproxy engine under 1-client SELECT 1")
	pr, err := h.startProfiled(ctx, res.Scenario, "dbproxy", dbproxyProfileConfig(primary), pgCheck)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	_, err = h.pgbench(ctx, pgbenchSpec{Addr: pr.addr, User: benchPG, Database: benchDB, Script: script, Protocol: "simple", Clients: 1, Jobs: 1, Duration: d})
	pr.p.stop(10 * time.Second)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	h.storeProfile(ctx, res, pr.cpu)
}
