package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

func edgeConnectionsScenario() scenario {
	return scenario{
		name:  "edge-connections",
		title: "memory with 10,000 idle keep-alive client connections (fewer if the fd limit forces it): edge vs HAProxy vs nginx",
		needs: []string{"haproxy", "nginx"},
		run:   runEdgeConnections,
	}
}

const sysEdgeLowMem = "edge (reduce_memory_usage)"

func runEdgeConnections(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	type sys struct {
		label, kind string
		opts        edgeOptions
	}
	systems := []sys{
		{sysEdge, sysEdge, edgeOptions{}},
		{sysEdgeLowMem, sysEdge, edgeOptions{ReduceMemory: true}},
		{sysHAProxy, sysHAProxy, edgeOptions{}},
		{sysNginx, sysNginx, edgeOptions{}},
	}
	for _, s := range systems {
		res.Systems = append(res.Systems, s.label)
	}
	res.Baseline = sysNginx
	n := h.idleConns(res)
	gLoaded := fmt.Sprintf("RSS with %d idle client connections", n)
	mLoaded := metricKey{Name: "RSS", Group: gLoaded, Unit: "MiB", Better: "lower"}
	mPss := metricKey{Name: "PSS", Group: fmt.Sprintf("PSS with %d idle client connections", n), Unit: "MiB", Better: "lower"}
	mIdle := metricKey{Name: "RSS", Group: "RSS before the connections (after one request)", Unit: "MiB", Better: "lower"}
	mPer := metricKey{Name: "RSS per connection", Group: "RSS growth per idle connection", Unit: "KiB", Better: "lower"}
	res.Settings["client"] = fmt.Sprintf("bench -hold http: %d connections, one GET each, then idle; a separate process", n)
	res.Settings["measure"] = "sum of VmRSS (and Pss) over the system's process group (nginx: master + 2 workers), 1s after the last connection was answered; each system starts fresh every round"
	res.Settings["edge"] = "the edge-throughput config (round_robin, health checks, metrics), idle_timeout 300s; the second edge adds listeners[].reduce_memory_usage: true"

	if _, err := h.build(ctx, sysEdge, "./cmd/edge"); err != nil {
		return err
	}
	backends, err := h.startBackends(ctx, 2)
	if err != nil {
		return err
	}
	for r := range h.roundsOf() {
		for _, s := range systems {
			h.prog.begin(0, "round %d/%d %s: %d idle connections", r+1, h.roundsOf(), s.label, n)
			idle, loaded, err := h.measureIdle(ctx, s.kind, s.label, backends, s.opts, n)
			if err != nil {
				if h.failed(ctx, rec, s.label, r, err) {
					return ctx.Err()
				}
				continue
			}
			mib := func(kib int64) float64 { return float64(kib) / 1024 }
			rec.add(mIdle, s.label, r, mib(idle.RSSKiB))
			rec.add(mLoaded, s.label, r, mib(loaded.RSSKiB))
			rec.add(mPss, s.label, r, mib(loaded.PssKiB))
			rec.add(mPer, s.label, r, float64(loaded.RSSKiB-idle.RSSKiB)/float64(n))
			h.prog.end("RSS %.1f MiB idle, %.1f MiB loaded (%d processes)", mib(idle.RSSKiB), mib(loaded.RSSKiB), loaded.Procs)
		}
	}
	rec.finish()
	rec.ratioGoal(fmt.Sprintf("edge RSS with %d idle connections ≤ 2× nginx's", n), mLoaded.Group, mLoaded.Name, sysEdge, sysNginx, "<=", 2.0)
	if h.wantProfile(res) {
		h.profileIdle(ctx, res, "edge", edgeProfileConfig(backends, edgeOptions{}), n)
	}
	return nil
}

// idleConns is how many idle connections the connection scenarios hold:
// 10,000 (or -idle-conns), but never more than HAProxy can take under this
// machine's open-files limit, so every system gets the same number.
func (h *harness) idleConns(res *Result) int {
	want := h.opts.holdConns
	if want <= 0 {
		want = 10000
		if h.opts.smoke {
			want = 500
		}
	}
	limit := (h.haproxyMaxConn() - 50) / 100 * 100
	if want > limit {
		res.Notes = append(res.Notes, fmt.Sprintf("the open-files hard limit here is %d and HAProxy needs two descriptors per connection, so every system holds %d idle connections, not %d", h.fdLimit, limit, want))
		return limit
	}
	return want
}

// measureIdle starts a fresh system, measures its memory after one request,
// opens n idle connections through it from a separate process, measures
// again, and stops both.
func (h *harness) measureIdle(ctx context.Context, kind, label string, backends []string, eo edgeOptions, n int) (idle, loaded memUsage, err error) {
	s, err := h.startHTTPSystem(ctx, kind, label, backends, eo)
	if err != nil {
		return idle, loaded, err
	}
	defer s.stop()
	if idle, err = groupMemory(s.proc.pid()); err != nil {
		return idle, loaded, err
	}
	holder, err := h.hold(ctx, "http", s.addr, n, "", "")
	if err != nil {
		return idle, loaded, err
	}
	defer holder.stop(5 * time.Second)
	// Let lazily freed buffers and the runtime settle before measuring.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return idle, loaded, ctx.Err()
	}
	loaded, err = groupMemory(s.proc.pid())
	return idle, loaded, err
}

// hold starts the idle-connection client and waits until it reports that
// all n connections are open and used; any failed connection fails it.
func (h *harness) hold(ctx context.Context, proto, addr string, n int, user, db string) (*proc, error) {
	var out syncBuffer
	argv := []string{h.self, "-hold", proto, "-addr", addr, "-n", strconv.Itoa(n)}
	if user != "" {
		argv = append(argv, "-user", user, "-db", db)
	}
	p, err := h.procs.start("hold-"+proto, argv, procOpts{stdout: &out})
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, p, 120*time.Second, func() error {
		if strings.Contains(out.String(), "ready ") {
			return nil
		}
		return fmt.Errorf("not ready")
	})
	if err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("idle-connection client: %w", err)
	}
	line := strings.TrimSpace(out.String())
	if !strings.Contains(line, " failed=0") {
		p.stop(time.Second)
		return nil, fmt.Errorf("idle-connection client: %s", line)
	}
	return p, nil
}
