package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/httpproxy"
	"github.com/tiergate/tiergate/internal/pgproxy"
)

// The engines expose no pprof endpoint and cmd/ is not the harness's to
// change, so profiling runs the engine in-process in a child of this
// binary, under runtime/pprof, with the same config file the scenario
// gave the real binary.

// serveEdgeProfiled runs the edge engine from cfgPath until ctx ends,
// writing a CPU profile to profPath. It prints "ready ADDR" once listening.
func serveEdgeProfiled(ctx context.Context, cfgPath, profPath string, stdout io.Writer) error {
	cfg, err := httpproxy.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	eng, err := httpproxy.New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	lns, err := eng.Listen()
	if err != nil {
		return err
	}
	stop, err := startProfile(profPath)
	if err != nil {
		return err
	}
	defer stop()
	heapOnSignal(ctx, profPath+".heap")
	fmt.Fprintf(stdout, "ready %s\n", lns[0].Addr())
	return eng.Serve(ctx, lns)
}

// heapOnSignal writes a heap profile to path on SIGUSR1 (the harness
// sends it while the idle connections are held).
func heapOnSignal(ctx context.Context, path string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				runtime.GC()
				tmp := path + ".tmp"
				if f, err := os.Create(tmp); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					_ = f.Close()
					_ = os.Rename(tmp, path)
				}
			}
		}
	}()
}

// serveDBProxyProfiled is serveEdgeProfiled for dbproxy.
func serveDBProxyProfiled(ctx context.Context, cfgPath, profPath string, stdout io.Writer) error {
	cfg, err := pgproxy.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	srv, err := pgproxy.New(cfg, pgproxy.Options{Log: zap.NewNop(), Registry: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	stop, err := startProfile(profPath)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "ready %s\n", ln.Addr())
	err = srv.Serve(ctx, ln)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// wantProfile: profile when asked, or (auto) when a goal was missed.
func (h *harness) wantProfile(res *Result) bool {
	switch h.opts.profile {
	case "always":
		return true
	case "never":
		return false
	}
	return !h.opts.smoke && anyGoalNotMet(res)
}

// profileEdge runs the in-process edge (config eo) under wrk for the
// closed-loop duration and stores `go tool pprof -top` in res.Profile.
func (h *harness) profileEdge(ctx context.Context, res *Result, backends []string, eo edgeOptions, script *string) {
	dir := filepath.Join(h.tmp, "profile-"+res.Scenario)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Failures = append(res.Failures, "profile: "+err.Error())
		return
	}
	addr, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err := errors.Join(err1, err2); err != nil {
		res.Failures = append(res.Failures, "profile: "+err.Error())
		return
	}
	eo.AccessLogPath = filepath.Join(dir, "access.log")
	cfg, err := edgeConfig(addr, admin, backends, eo)
	if err != nil {
		res.Failures = append(res.Failures, "profile: "+err.Error())
		return
	}
	cfgPath, prof := filepath.Join(dir, "edge.yaml"), filepath.Join(dir, "cpu.pprof")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		res.Failures = append(res.Failures, "profile: "+err.Error())
		return
	}
	d := h.dur(h.opts.wrkDur, 10*time.Second, time.Second)
	h.prog.begin(d, "CPU profile of the in-process edge engine under wrk")
	p, err := h.procs.start("edge-profiled", []string{h.self, "-serve-edge", cfgPath, "-cpuprofile", prof}, procOpts{})
	if err == nil {
		err = waitFor(ctx, p, 20*time.Second, httpCheck(addr, "/"))
	}
	if err == nil {
		spec := wrkSpec{URL: "http://" + addr + "/", Threads: 1, Conns: 64, Duration: d}
		if script != nil {
			spec.Script = *script
		}
		var wr wrkResult
		wr, err = h.wrk(ctx, spec)
		res.Notes = append(res.Notes, fmt.Sprintf("profiled run (in-process engine under runtime/pprof): %.0f req/s", wr.RPS))
	}
	if p != nil {
		p.stop(10 * time.Second)
	}
	if err != nil {
		h.prog.end("failed")
		res.Failures = append(res.Failures, "profile: "+err.Error())
		return
	}
	h.storeProfile(ctx, res, prof)
}

// storeProfile runs `go tool pprof -top` on a profile into res.Profile
// (extra are pprof flags, e.g. -sample_index=inuse_space).
func (h *harness) storeProfile(ctx context.Context, res *Result, prof string, extra ...string) {
	argv := append([]string{"go", "tool", "pprof", "-top", "-nodecount=30"}, extra...)
	out, err := h.procs.runTool(ctx, "pprof", append(argv, h.self, prof), nil)
	if err != nil {
		h.prog.end("pprof failed")
		res.Failures = append(res.Failures, fmt.Sprintf("profile: go tool pprof: %v: %s", err, tailLines(string(out), 5)))
		return
	}
	res.Profile = strings.TrimSpace(string(out))
	h.prog.end("stored (%d lines)", strings.Count(res.Profile, "\n")+1)
}

// profileEdgeIdle runs the in-process edge (config eo), holds n idle
// connections through it and stores the top of its heap profile (in-use
// bytes) in res.Profile: for a memory goal that is the useful profile.
func (h *harness) profileEdgeIdle(ctx context.Context, res *Result, backends []string, eo edgeOptions, n int) {
	dir := filepath.Join(h.tmp, "profile-"+res.Scenario)
	fail := func(err error) {
		h.prog.end("failed")
		res.Failures = append(res.Failures, "profile: "+err.Error())
	}
	h.prog.begin(0, "heap profile of the in-process edge engine holding %d idle connections", n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
		return
	}
	addr, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err := errors.Join(err1, err2); err != nil {
		fail(err)
		return
	}
	eo.AccessLogPath = filepath.Join(dir, "access.log")
	cfg, err := edgeConfig(addr, admin, backends, eo)
	if err != nil {
		fail(err)
		return
	}
	cfgPath, prof := filepath.Join(dir, "edge.yaml"), filepath.Join(dir, "cpu.pprof")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		fail(err)
		return
	}
	p, err := h.procs.start("edge-profiled", []string{h.self, "-serve-edge", cfgPath, "-cpuprofile", prof}, procOpts{})
	if err != nil {
		fail(err)
		return
	}
	defer p.stop(10 * time.Second)
	if err := waitFor(ctx, p, 20*time.Second, httpCheck(addr, "/")); err != nil {
		fail(err)
		return
	}
	holder, err := h.hold(ctx, "http", addr, n, "", "")
	if err != nil {
		fail(err)
		return
	}
	defer holder.stop(5 * time.Second)
	heap := prof + ".heap"
	_ = syscall.Kill(p.pid(), syscall.SIGUSR1)
	if err := waitFor(ctx, p, 20*time.Second, func() error { _, err := os.Stat(heap); return err }); err != nil {
		fail(err)
		return
	}
	h.storeProfile(ctx, res, heap, "-sample_index=inuse_space")
}
