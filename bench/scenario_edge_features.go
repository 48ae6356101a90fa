package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func edgeFeaturesScenario() scenario {
	return scenario{
		name:  "edge-features",
		title: "cost of each edge feature relative to plain round_robin (throughput)",
		needs: []string{"wrk"},
		run:   runEdgeFeatures,
	}
}

// edgeFeature is one edge config under test.
type edgeFeature struct {
	name string
	opts edgeOptions
}

func edgeFeatures() []edgeFeature {
	return []edgeFeature{
		{"round_robin", edgeOptions{}},
		{"expr routing", edgeOptions{Expr: `Method == "GET" && Header("X-Canary") != "1" && Path startsWith "/"`}},
		{"header rewrite", edgeOptions{Rewrite: true}},
		{"access log", edgeOptions{AccessLog: true}},
		{"p2c_ewma", edgeOptions{Policy: "p2c_ewma"}},
		{"consistent_hash", edgeOptions{Policy: "consistent_hash", HashKey: "header:X-User-Id"}},
	}
}

// featuresScript makes wrk send 1,000 distinct users' requests in turn
// (pre-built, so Lua costs little): every variant sees the same requests,
// and consistent_hash gets keys that spread over the backends.
const featuresScript = `-- written by tiergate bench
local reqs = {}
local i = 0
init = function(args)
  for n = 1, 1000 do
    reqs[n] = wrk.format("GET", "/", {["X-User-Id"] = tostring((n * 7919) % 100000), ["X-Debug"] = "1"})
  end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
`

var mFeatThroughput = metricKey{Name: "throughput", Group: "edge throughput by feature (wrk -t1 -c64)", Unit: "req/s", Better: "higher"}

func runEdgeFeatures(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	feats := edgeFeatures()
	for _, f := range feats {
		res.Systems = append(res.Systems, f.name)
	}
	res.Baseline = feats[0].name
	d := h.dur(h.opts.wrkDur, 5*time.Second, time.Second)
	res.Settings["wrk"] = fmt.Sprintf("wrk -t1 -c64 -d%s, Lua script cycling 1,000 pre-built requests with X-User-Id and X-Debug headers", d)
	res.Settings["baseline"] = "round_robin, active health checks every 2s, metrics on, access log off, no routes"
	res.Settings["expr routing"] = feats[1].opts.Expr
	res.Settings["header rewrite"] = "request: set 2 headers, remove 1; response: set 2 headers"
	res.Settings["access log"] = "access_log.enabled, sample 1.0, to a file (buffered 256KiB)"
	res.Settings["consistent_hash"] = "hash_key header:X-User-Id"

	if _, err := h.build(ctx, sysEdge, "./cmd/edge"); err != nil {
		return err
	}
	script := filepath.Join(h.tmp, "features.lua")
	if err := os.WriteFile(script, []byte(featuresScript), 0o644); err != nil {
		return err
	}
	backends, err := h.startBackends(ctx, 2)
	if err != nil {
		return err
	}
	run := map[string]*httpSystem{}
	for _, f := range feats {
		h.prog.begin(0, "starting edge with %s", f.name)
		s, err := h.startHTTPSystem(ctx, sysEdge, f.name, backends, f.opts)
		if err != nil {
			if h.failed(ctx, rec, f.name, allRounds, err) {
				return ctx.Err()
			}
			continue
		}
		h.prog.end("listening on %s", s.addr)
		run[f.name] = s
	}
	for r := range h.roundsOf() {
		for _, f := range feats {
			s := run[f.name]
			if s == nil {
				continue
			}
			if r == 0 {
				h.prog.begin(time.Second, "warm-up %s", f.name)
				_, _ = h.wrk(ctx, wrkSpec{URL: "http://" + s.addr + "/", Threads: 1, Conns: 64, Duration: time.Second, Script: script})
				h.prog.end("done")
			}
			h.prog.begin(d, "round %d/%d %s", r+1, h.roundsOf(), f.name)
			wr, err := h.wrk(ctx, wrkSpec{URL: "http://" + s.addr + "/", Threads: 1, Conns: 64, Duration: d, Script: script})
			if err == nil {
				err = wrkErrors(wr)
			}
			if err != nil {
				if h.failed(ctx, rec, f.name, r, err) {
					return ctx.Err()
				}
				continue
			}
			rec.add(mFeatThroughput, f.name, r, wr.RPS)
			h.prog.end("%.0f req/s", wr.RPS)
		}
	}
	rec.finish()
	// The profile is of the costliest feature (lowest ratio).
	worst, worstRatio := feats[0], 0.9
	for _, f := range feats[1:] {
		g := rec.ratioGoal(fmt.Sprintf("%s costs ≤ 10%% of round_robin throughput", f.name), mFeatThroughput.Group, mFeatThroughput.Name, f.name, res.Baseline, ">=", 0.9)
		if g.Status != goalMet && (!g.Ratio.ok() || float64(g.Ratio) < worstRatio) {
			worst = f
			worstRatio = 0
			if g.Ratio.ok() {
				worstRatio = float64(g.Ratio)
			}
		}
	}
	if h.wantProfile(res) {
		res.Notes = append(res.Notes, "profile: edge with "+worst.name)
		h.profileEdge(ctx, res, backends, worst.opts, &script)
	}
	return nil
}
