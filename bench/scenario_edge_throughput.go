package main

import (
	"context"
	"fmt"
	"math"
	"time"
)

func edgeThroughputScenario() scenario {
	return scenario{
		name:  "edge-throughput",
		title: "HTTP keep-alive throughput and latency: direct, fasthttp pass-through, edge, HAProxy, nginx",
		needs: []string{"wrk", "haproxy", "nginx"},
		run:   runEdgeThroughput,
	}
}

var (
	mThroughput = metricKey{Name: "throughput", Group: "closed-loop throughput (wrk -t1 -c64)", Unit: "req/s", Better: "higher"}
	mWrkP99     = metricKey{Name: "p99", Group: "closed-loop latency (wrk; coordinated omission applies)", Unit: "ms", Better: "lower"}
)

func pctKeys(group string) []metricKey {
	return []metricKey{
		{Name: "p50", Group: group, Unit: "ms", Better: "lower"},
		{Name: "p99", Group: group, Unit: "ms", Better: "lower"},
		{Name: "p99.9", Group: group, Unit: "ms", Better: "lower"},
	}
}

// runEdgeThroughput: wrk closed-loop rounds over every system, then
// open-loop rounds at 25/50/75% of the slowest system's throughput.
func runEdgeThroughput(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	systems := []string{sysDirect, sysPassthrough, sysEdge, sysHAProxy, sysNginx}
	res.Systems, res.Baseline = systems, sysHAProxy
	wrkDur := h.dur(h.opts.wrkDur, 10*time.Second, time.Second)
	openDur := h.dur(h.opts.openDur, 3*time.Second, 500*time.Millisecond)
	const conns = 64
	res.Settings["wrk"] = fmt.Sprintf("wrk -t1 -c%d -d%s --latency", conns, wrkDur)
	res.Settings["open_loop"] = fmt.Sprintf("bench -loadgen: fixed schedule, %d connections, %s per rate, latency from intended send time", conns, openDur)
	res.Settings["backends"] = "2 fasthttp hello backends (13-byte body), separate processes"
	res.Settings["edge"] = "round_robin, active health checks every 2s, Prometheus metrics on the admin listener, access log off"
	res.Settings["haproxy"] = "nbthread 2, balance roundrobin, http-reuse always, httpchk every 2s"
	res.Settings["nginx"] = "worker_processes 2, upstream keepalive 64, access_log off"

	if _, err := h.build(ctx, sysEdge, "./cmd/edge"); err != nil {
		return err
	}
	backends, err := h.startBackends(ctx, 2)
	if err != nil {
		return err
	}
	run, err := h.startAll(ctx, systems, backends, edgeOptions{}, rec)
	if err != nil {
		return err
	}

	h.warmup(ctx, run, systems)
	for r := range h.roundsOf() {
		for _, name := range systems {
			s := run[name]
			if s == nil {
				continue
			}
			h.prog.begin(wrkDur, "round %d/%d closed loop %s", r+1, h.roundsOf(), name)
			wr, err := h.wrk(ctx, wrkSpec{URL: "http://" + s.addr + "/", Threads: 1, Conns: conns, Duration: wrkDur})
			if err == nil {
				err = wrkErrors(wr)
			}
			if err != nil {
				if h.failed(ctx, rec, name, r, err) {
					return ctx.Err()
				}
				continue
			}
			rec.add(mThroughput, name, r, wr.RPS)
			rec.add(mWrkP99, name, r, wr.P99)
			h.prog.end("%.0f req/s, p99 %.2fms", wr.RPS, wr.P99)
		}
	}
	rec.finish()

	// Open loop at fixed rates below the slowest system's saturation.
	slowest := math.Inf(1)
	for _, name := range systems {
		if m := rec.find(mThroughput.Group, mThroughput.Name, name); m != nil && m.Median.ok() {
			slowest = math.Min(slowest, float64(m.Median))
		}
	}
	if math.IsInf(slowest, 1) {
		return fmt.Errorf("no system completed a closed-loop run")
	}
	res.Settings["saturation_rps"] = math.Round(slowest)
	for r := range h.roundsOf() {
		for _, level := range loadLevels() {
			rate := math.Round(slowest * level)
			group := latencyGroup(level, rate)
			for _, name := range systems {
				s := run[name]
				if s == nil {
					continue
				}
				h.prog.begin(openDur, "round %d/%d open loop %.0f%% (%.0f req/s) %s", r+1, h.roundsOf(), level*100, rate, name)
				lr, err := h.openLoop(ctx, s.addr, rate, openDur, conns)
				if err == nil {
					err = loadErrors(lr)
				}
				if err != nil {
					if h.failed(ctx, rec, name, r, fmt.Errorf("open loop %.0f req/s: %w", rate, err)) {
						return ctx.Err()
					}
					continue
				}
				ks := pctKeys(group)
				rec.add(ks[0], name, r, lr.P50)
				rec.add(ks[1], name, r, lr.P99)
				rec.add(ks[2], name, r, lr.P999)
				h.prog.end("p50 %.3fms p99 %.3fms p99.9 %.3fms", lr.P50, lr.P99, lr.P999)
			}
		}
	}
	rec.finish()

	rec.ratioGoal("edge throughput ≥ 1.25× HAProxy", mThroughput.Group, mThroughput.Name, sysEdge, sysHAProxy, ">=", 1.25)
	rec.ratioGoal("edge throughput ≥ 0.9× bare fasthttp pass-through", mThroughput.Group, mThroughput.Name, sysEdge, sysPassthrough, ">=", 0.9)
	mid := latencyGroup(0.5, math.Round(slowest*0.5))
	rec.ratioGoal("edge p99 at 50% load ≤ HAProxy's", mid, "p99", sysEdge, sysHAProxy, "<=", 1.0)

	if h.wantProfile(res) {
		h.profileEdge(ctx, res, backends, edgeOptions{}, nil)
	}
	return nil
}

// startAll starts each system; one that fails is recorded as failed in
// every round and left out, so the others still run.
func (h *harness) startAll(ctx context.Context, systems []string, backends []string, eo edgeOptions, rec *recorder) (map[string]*httpSystem, error) {
	run := map[string]*httpSystem{}
	for _, name := range systems {
		h.prog.begin(0, "starting %s", name)
		s, err := h.startHTTPSystem(ctx, name, name, backends, eo)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			h.prog.end("FAILED")
			for r := range h.roundsOf() {
				rec.fail(name, r, err)
			}
			continue
		}
		h.prog.end("listening on %s", s.addr)
		run[name] = s
	}
	return run, nil
}

// warmup runs a short wrk against each system so the first measured round
// does not pay for connection setup, page faults and JIT-less cold caches.
func (h *harness) warmup(ctx context.Context, run map[string]*httpSystem, order []string) {
	if h.opts.smoke {
		return
	}
	d := 2 * time.Second
	for _, name := range order {
		if s := run[name]; s != nil {
			h.prog.begin(d, "warm-up %s", name)
			_, _ = h.wrk(ctx, wrkSpec{URL: "http://" + s.addr + "/", Threads: 1, Conns: 64, Duration: d})
			h.prog.end("done")
		}
	}
}

// wrkErrors fails a run with more than 0.1% errors: its throughput would
// count error responses.
func wrkErrors(r wrkResult) error {
	if r.Requests == 0 {
		return fmt.Errorf("no requests completed")
	}
	if float64(r.Errors) > 0.001*float64(r.Requests) {
		return fmt.Errorf("%d errors in %d requests", r.Errors, r.Requests)
	}
	return nil
}

// loadErrors fails an open-loop run with more than 0.1% errors or drops:
// its latencies would leave out the failed requests.
func loadErrors(r loadResult) error {
	bad := r.Errors + r.Dropped
	if r.OK == 0 || float64(bad) > 0.001*float64(r.Scheduled) {
		return fmt.Errorf("%d errors and %d dropped of %d scheduled", r.Errors, r.Dropped, r.Scheduled)
	}
	return nil
}
