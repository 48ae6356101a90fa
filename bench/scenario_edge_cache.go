package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func edgeCacheScenario() scenario {
	return scenario{
		name:     "edge-cache",
		title:    "HTTP cache-hit throughput (1 KiB object): edge route cache, nginx proxy_cache, HAProxy cache",
		needs:    []string{"wrk"},
		optional: []string{"haproxy", "nginx"},
		run:      runEdgeCache,
	}
}

var (
	mCacheThroughput = metricKey{Name: "throughput", Group: "cache-hit throughput (wrk -t1 -c64, 1 KiB object)", Unit: "req/s", Better: "higher"}
	mCacheP99        = metricKey{Name: "p99", Group: "cache-hit latency (wrk; coordinated omission applies)", Unit: "ms", Better: "lower"}
	mOriginRequests  = metricKey{Name: "origin requests", Group: "origin requests per system, cumulative (1 = the first miss)", Unit: "requests", Better: "lower"}
)

// maxOriginShare is the share of a run's requests that may reach the
// origin before the run no longer counts as measuring cache hits.
const maxOriginShare = 0.001

// runEdgeCache measures cache hits: every system sits in front of the
// same origin, gets one miss that fills its cache (start-up and a check
// request), a warm-up, and then wrk rounds, alternating systems. The
// origin counts the requests it serves; the count per system shows that
// the measured requests were hits.
func runEdgeCache(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	systems := []string{sysEdge, sysHAProxy, sysNginx}
	res.Systems, res.Baseline = systems, sysNginx
	wrkDur := h.dur(h.opts.wrkDur, 10*time.Second, time.Second)
	const conns = 64
	res.Settings["wrk"] = fmt.Sprintf("wrk -t1 -c%d -d%s --latency, GET / (every system, same settings), after one miss and a warm-up", conns, wrkDur)
	res.Settings["origin"] = fmt.Sprintf("one fasthttp origin process: every path answers a %d-byte body with Cache-Control: %s and is counted; /healthz is not", originBodySize, originCacheControl)
	res.Settings["edge"] = "one route with cache: {enabled: true, max_size: 64MiB, max_object_size: 1MiB} (otherwise defaults), round_robin, active health checks every 2s, access log off"
	res.Settings["haproxy"] = "nbthread 2, cache section total-max-size 64 (MB), max-object-size 1MiB, max-age 3600; http-request cache-use + http-response cache-store in the backend, http-reuse always, httpchk every 2s"
	res.Settings["nginx"] = "worker_processes 2, proxy_cache (keys_zone 10m, max_size 64m, bodies in files under the temp dir, so in the page cache), proxy_cache_lock on, open_file_cache max=10000 inactive=60s (valid 60s), upstream keepalive 64, access_log off"

	if _, err := h.build(ctx, sysEdge, "./cmd/edge"); err != nil {
		return err
	}
	origin, err := h.startOrigin(ctx)
	if err != nil {
		return err
	}
	count := originCounter(origin)

	// Panels in this order: throughput, latency, origin requests.
	for _, k := range []metricKey{mCacheThroughput, mCacheP99, mOriginRequests} {
		for _, name := range systems {
			rec.metric(k, name)
		}
	}
	run := map[string]*httpSystem{}
	cumulative := map[string]int64{}
	for _, name := range systems {
		if name != sysEdge && !haveTool(name) {
			for r := range h.roundsOf() {
				rec.fail(name, r, fmt.Errorf("%s is not installed: system skipped", name))
			}
			continue
		}
		before, err := count()
		if err != nil {
			return err
		}
		h.prog.begin(0, "starting %s and filling its cache", name)
		s, err := h.startHTTPSystem(ctx, name, name, []string{origin}, edgeOptions{Cache: true})
		if err == nil {
			err = checkCachedObject(s.addr)
		}
		if err != nil {
			s.stop()
			if h.failed(ctx, rec, name, allRounds, err) {
				return ctx.Err()
			}
			continue
		}
		after, err := count()
		if err != nil {
			return err
		}
		cumulative[name] = after - before
		h.prog.end("listening on %s; %d origin request(s) so far", s.addr, after-before)
		run[name] = s
	}
	// The warm-up runs each system in turn; nothing else reaches the
	// origin meanwhile, so the difference of the counts is that system's.
	if !h.opts.smoke {
		for _, name := range systems {
			if s := run[name]; s != nil {
				before, err := count()
				if err != nil {
					return err
				}
				h.warmup(ctx, map[string]*httpSystem{name: s}, []string{name})
				after, err := count()
				if err != nil {
					return err
				}
				cumulative[name] += after - before
			}
		}
	}

	for r := range h.roundsOf() {
		for _, name := range systems {
			s := run[name]
			if s == nil {
				continue
			}
			before, err := count()
			if err != nil {
				return err
			}
			h.prog.begin(wrkDur, "round %d/%d cache hits %s", r+1, h.roundsOf(), name)
			wr, err := h.wrk(ctx, wrkSpec{URL: "http://" + s.addr + "/", Threads: 1, Conns: conns, Duration: wrkDur})
			if err == nil {
				err = wrkErrors(wr)
			}
			after, cerr := count()
			if cerr != nil {
				return cerr
			}
			cumulative[name] += after - before
			rec.add(mOriginRequests, name, r, float64(cumulative[name]))
			if err == nil && float64(after-before) > maxOriginShare*float64(wr.Requests) {
				err = fmt.Errorf("%d of %d requests reached the origin: not a cache-hit measurement", after-before, wr.Requests)
			}
			if err != nil {
				if h.failed(ctx, rec, name, r, err) {
					return ctx.Err()
				}
				continue
			}
			rec.add(mCacheThroughput, name, r, wr.RPS)
			rec.add(mCacheP99, name, r, wr.P99)
			h.prog.end("%.0f req/s, p99 %.2fms, %d origin requests", wr.RPS, wr.P99, after-before)
		}
	}
	for _, s := range run {
		s.stop()
	}
	rec.finish()

	g := rec.ratioGoal("edge cache-hit throughput ≥ nginx proxy_cache's", mCacheThroughput.Group, mCacheThroughput.Name, sysEdge, sysNginx, ">=", 1.0)
	note := edgeVersusHAProxy(rec)
	if g.Note != "" {
		note = g.Note + "; " + note
	}
	res.Goals[len(res.Goals)-1].Note = note
	var counts []string
	for _, name := range systems {
		if m := rec.find(mOriginRequests.Group, mOriginRequests.Name, name); m != nil && m.Max.ok() {
			counts = append(counts, fmt.Sprintf("%s %.0f", name, float64(m.Max)))
		}
	}
	if len(counts) > 0 {
		res.Notes = append(res.Notes, "origin requests per system from start-up to the last round (the first is the miss that fills the cache): "+strings.Join(counts, ", "))
	}

	if h.wantProfile(res) {
		h.profileEdge(ctx, res, []string{origin}, edgeOptions{Cache: true}, nil)
	}
	return nil
}

// edgeVersusHAProxy is the edge/HAProxy throughput ratio, per round and
// its median, for the goal's note (the issue asks for it; it is no goal).
func edgeVersusHAProxy(rec *recorder) string {
	e := rec.find(mCacheThroughput.Group, mCacheThroughput.Name, sysEdge)
	hp := rec.find(mCacheThroughput.Group, mCacheThroughput.Name, sysHAProxy)
	if e == nil || hp == nil {
		return "edge/HAProxy: no ratio (a system produced no measurement)"
	}
	rs := ratios(e.Values, hp.Values)
	med, _, _ := summarize(rs)
	if !med.ok() {
		return "edge/HAProxy: no round measured both"
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmtNum(r))
	}
	return fmt.Sprintf("edge/HAProxy %.2f× (rounds %s)", float64(med), strings.Join(parts, " "))
}

// startOrigin starts the cache origin in its own process.
func (h *harness) startOrigin(ctx context.Context) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	h.prog.begin(0, "starting the origin")
	p, err := h.procs.start("origin", []string{h.self, "-origin", addr}, procOpts{})
	if err != nil {
		return "", err
	}
	if err := waitFor(ctx, p, 10*time.Second, httpCheck(addr, "/healthz")); err != nil {
		h.prog.end("failed")
		return "", fmt.Errorf("origin: %w", err)
	}
	h.prog.end("listening on %s", addr)
	return addr, nil
}

// originCounter returns a function reading the origin's request count.
func originCounter(addr string) func() (int64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	return func() (int64, error) {
		resp, err := client.Get("http://" + addr + originStatsPath)
		if err != nil {
			return 0, fmt.Errorf("origin request count: %w", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, fmt.Errorf("origin request count: %w", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("origin request count %q: %w", b, err)
		}
		return n, nil
	}
}

// checkCachedObject fetches the object through a system twice (the
// start-up check already filled the cache) and checks it is the 1 KiB
// object with the origin's Cache-Control.
func checkCachedObject(addr string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	for range 2 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || len(b) != originBodySize {
			return fmt.Errorf("GET /: %s with %d bytes, want 200 with %d", resp.Status, len(b), originBodySize)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != originCacheControl {
			return fmt.Errorf("GET /: Cache-Control %q, want %q", cc, originCacheControl)
		}
	}
	return nil
}
