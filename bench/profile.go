package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
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
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				stats := fmt.Sprintf("runtime.MemStats: HeapInuse %d KiB, StackInuse %d KiB, Sys %d KiB; %d goroutines\n",
					ms.HeapInuse>>10, ms.StackInuse>>10, ms.Sys>>10, runtime.NumGoroutine())
				_ = os.WriteFile(path+".memstats", []byte(stats), 0o644)
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
	heapOnSignal(ctx, profPath+".heap")
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

// profiled is an engine running in-process in a child under runtime/pprof.
type profiled struct {
	p    *proc
	addr string
	cpu  string // CPU profile path, written when the child stops
}

// startProfiled starts `bench -serve-<kind>` on the config that cfg builds
// for a fresh listen address, and waits until check(addr) passes.
func (h *harness) startProfiled(ctx context.Context, scenario, kind string, cfg func(listen, admin, dir string) ([]byte, error), check func(string) func() error) (*profiled, error) {
	dir := filepath.Join(h.tmp, "profile-"+scenario)
	addr, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	data, err := cfg(addr, admin, dir)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, kind+".yaml")
	if err := mkdirWrite(cfgPath, data); err != nil {
		return nil, err
	}
	pr := &profiled{addr: addr, cpu: filepath.Join(dir, "cpu.pprof")}
	pr.p, err = h.procs.start(kind+"-profiled", []string{h.self, "-serve-" + kind, cfgPath, "-cpuprofile", pr.cpu}, procOpts{})
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, pr.p, 30*time.Second, check(addr)); err != nil {
		pr.p.stop(time.Second)
		return nil, err
	}
	return pr, nil
}

// heap asks the child for a heap profile and returns its path.
func (pr *profiled) heap(ctx context.Context) (string, error) {
	path := pr.cpu + ".heap"
	if err := syscall.Kill(pr.p.pid(), syscall.SIGUSR1); err != nil {
		return "", err
	}
	err := waitFor(ctx, pr.p, 20*time.Second, func() error { _, err := os.Stat(path); return err })
	return path, err
}

func edgeProfileConfig(backends []string, eo edgeOptions) func(listen, admin, dir string) ([]byte, error) {
	return func(listen, admin, dir string) ([]byte, error) {
		eo.AccessLogPath = filepath.Join(dir, "access.log")
		return edgeConfig(listen, admin, backends, eo)
	}
}

func dbproxyProfileConfig(primary string) func(listen, admin, dir string) ([]byte, error) {
	return func(listen, admin, dir string) ([]byte, error) {
		return dbproxyConfig(listen, admin, primary, nil, 11000), nil
	}
}

// profileFailed records a profiling failure.
func (h *harness) profileFailed(res *Result, err error) {
	h.prog.end("failed")
	res.Failures = append(res.Failures, "profile: "+err.Error())
}

// profileEdge runs the in-process edge (config eo) under wrk for the
// closed-loop duration and stores the top of its CPU profile.
func (h *harness) profileEdge(ctx context.Context, res *Result, backends []string, eo edgeOptions, script *string) {
	d := h.dur(h.opts.wrkDur, 10*time.Second, time.Second)
	h.prog.begin(d, "CPU profile of the in-process edge engine under wrk")
	pr, err := h.startProfiled(ctx, res.Scenario, "edge", edgeProfileConfig(backends, eo), func(a string) func() error { return httpCheck(a, "/") })
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	spec := wrkSpec{URL: "http://" + pr.addr + "/", Threads: 1, Conns: 64, Duration: d}
	if script != nil {
		spec.Script = *script
	}
	wr, err := h.wrk(ctx, spec)
	pr.p.stop(10 * time.Second)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	res.Notes = append(res.Notes, fmt.Sprintf("profiled run (in-process engine under runtime/pprof): %.0f req/s", wr.RPS))
	h.storeProfile(ctx, res, pr.cpu)
}

// profileIdle runs the in-process engine of kind ("edge" or "dbproxy"),
// holds n idle connections through it and stores the top of its heap
// profile (in-use bytes): for a memory goal that is the useful profile.
func (h *harness) profileIdle(ctx context.Context, res *Result, kind string, cfg func(listen, admin, dir string) ([]byte, error), n int) {
	h.prog.begin(0, "heap profile of the in-process %s engine holding %d idle connections", kind, n)
	proto, check := "http", func(a string) func() error { return httpCheck(a, "/") }
	if kind == "dbproxy" {
		proto, check = "pg", pgCheck
	}
	pr, err := h.startProfiled(ctx, res.Scenario, kind, cfg, check)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	defer pr.p.stop(10 * time.Second)
	user, db := "", ""
	if proto == "pg" {
		user, db = benchPG, benchDB
	}
	holder, err := h.hold(ctx, proto, pr.addr, n, user, db)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	defer holder.stop(5 * time.Second)
	heap, err := pr.heap(ctx)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	res.Notes = append(res.Notes, fmt.Sprintf("profile: heap (in-use bytes) of the in-process %s engine while it holds %d idle connections; a CPU profile says nothing about memory", kind, n))
	h.storeProfile(ctx, res, heap, "-sample_index=inuse_space")
	if stats, err := os.ReadFile(heap + ".memstats"); err == nil {
		res.Profile = strings.TrimSpace(string(stats)) + "\n\n" + res.Profile
	}
}

// storeProfile runs `go tool pprof -top` on a profile into res.Profile,
// sorted by flat and then by cumulative cost (extra are pprof flags, e.g.
// -sample_index=inuse_space).
func (h *harness) storeProfile(ctx context.Context, res *Result, prof string, extra ...string) {
	var parts []string
	for _, sort := range []string{"-flat", "-cum"} {
		argv := append([]string{"go", "tool", "pprof", "-top", sort, "-nodecount=25"}, extra...)
		out, err := h.procs.runTool(ctx, "pprof", append(argv, h.self, prof), nil)
		if err != nil {
			h.prog.end("pprof failed")
			res.Failures = append(res.Failures, fmt.Sprintf("profile: go tool pprof: %v: %s", err, tailLines(string(out), 5)))
			return
		}
		parts = append(parts, "$ go tool pprof -top "+sort+" "+strings.Join(extra, " ")+"\n"+strings.TrimSpace(string(out)))
	}
	res.Profile = strings.Join(parts, "\n\n")
	h.prog.end("stored")
}

// mkdirWrite writes data to path, creating its directory.
func mkdirWrite(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
