// Command bench is tiergate's side-by-side benchmark harness: it runs the
// edge against HAProxy, nginx, a bare fasthttp pass-through proxy and
// direct access, and dbproxy against PgBouncer and direct PostgreSQL, with
// the systems alternating round by round, and writes results/<scenario>.json
// and an SVG chart per scenario.
//
//	go run ./bench                               every scenario (make bench)
//	go run ./bench -scenario edge-throughput -rounds 3
//	go run ./bench -smoke -scenario edge-throughput   seconds, for CI
//
// The same binary also runs the helper processes the harness starts (the
// hello backends, the pass-through proxy, the open-loop load generator, the
// idle-connection client and the profiled in-process engines); see the
// flags below "child modes".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the harness flags.
type options struct {
	scenario  string
	rounds    int
	smoke     bool
	out       string
	install   bool
	profile   string // auto | always | never
	list      bool
	markdown  string
	render    string
	wrkDur    time.Duration
	openDur   time.Duration
	pgDur     time.Duration
	holdConns int
	// failoverRuns is how many failovers db-failover measures.
	failoverRuns int
}

// childOptions are the flags of the helper modes.
type childOptions struct {
	hello       string
	origin      string
	passthrough string
	upstreams   string
	loadgen     bool
	hold        string
	addr        string
	rate        float64
	duration    time.Duration
	conns       int
	timeout     time.Duration
	n           int
	user, db    string
	serveEdge   string
	serveDB     string
	cpuprofile  string
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.scenario, "scenario", "all", "scenario to run, or all (see -list)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each round runs every system once, in turn (at least 3 for published numbers)")
	fs.BoolVar(&o.smoke, "smoke", false, "tiny durations and 1 round: checks the harness works, numbers mean nothing")
	fs.StringVar(&o.out, "out", "", "results directory (default bench/results, or bench/tmp/smoke with -smoke)")
	fs.BoolVar(&o.install, "install", true, "apt-get install missing comparison systems (needs root)")
	fs.StringVar(&o.profile, "profile", "auto", "CPU-profile the tiergate engine under load: auto (when a goal is not met) | always | never")
	fs.BoolVar(&o.list, "list", false, "list the scenarios and exit")
	fs.StringVar(&o.markdown, "markdown", "", "print a Markdown summary of the results/*.json in this directory and exit")
	fs.StringVar(&o.render, "render", "", "redraw the SVG of every results/*.json in this directory and exit")
	fs.DurationVar(&o.wrkDur, "wrk-duration", 0, "closed-loop (wrk) run length (default 10s; 5s for edge-features; 1s smoke)")
	fs.DurationVar(&o.openDur, "latency-duration", 0, "open-loop run length per rate (default 3s; 1s smoke)")
	fs.DurationVar(&o.pgDur, "pg-duration", 0, "pgbench run length (default 3s; 1s smoke)")
	fs.IntVar(&o.holdConns, "idle-conns", 0, "idle connections for the *-connections scenarios (default 10000; 500 smoke)")

	fs.IntVar(&o.failoverRuns, "failover-runs", 0, "db-failover: failovers to measure, each on a fresh cluster (default 10; 1 smoke; -rounds does not apply)")

	var c childOptions
	fs.StringVar(&c.hello, "hello", "", "child mode: serve the hello backend on this address")
	fs.StringVar(&c.origin, "origin", "", "child mode: serve the cache origin (1 KiB, Cache-Control: public, max-age=3600; counts requests) on this address")
	fs.StringVar(&c.passthrough, "passthrough", "", "child mode: serve the bare fasthttp pass-through proxy on this address (with -upstreams)")
	fs.StringVar(&c.upstreams, "upstreams", "", "pass-through upstreams, comma-separated")
	fs.BoolVar(&c.loadgen, "loadgen", false, "child mode: open-loop load generator (-addr -rate -duration -conns -timeout); prints JSON")
	fs.StringVar(&c.hold, "hold", "", "child mode: hold idle connections, http or pg (-addr -n [-user -db])")
	fs.StringVar(&c.addr, "addr", "", "child modes: target host:port")
	fs.Float64Var(&c.rate, "rate", 0, "loadgen: requests per second")
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "loadgen: schedule length")
	fs.IntVar(&c.conns, "conns", 64, "loadgen: connections")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Second, "loadgen: request timeout")
	fs.IntVar(&c.n, "n", 10000, "hold: connections")
	fs.StringVar(&c.user, "user", "bench", "hold pg: user")
	fs.StringVar(&c.db, "db", "bench", "hold pg: database")
	fs.StringVar(&c.serveEdge, "serve-edge", "", "child mode: run the edge engine in-process from this config (with -cpuprofile)")
	fs.StringVar(&c.serveDB, "serve-dbproxy", "", "child mode: run the dbproxy engine in-process from this config (with -cpuprofile)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "serve-*: write a CPU profile here until SIGTERM")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if done, err := runChild(ctx, c, stdout); done {
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}

	if o.markdown != "" {
		if err := writeMarkdown(stdout, o.markdown); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	if o.render != "" {
		if err := renderAll(o.render); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	if o.list {
		for _, s := range allScenarios() {
			fmt.Fprintf(stdout, "%-18s %s\n", s.name, s.title)
		}
		return 0
	}
	if err := runHarness(ctx, o, args, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// runChild runs a helper mode if one was asked for.
func runChild(ctx context.Context, c childOptions, stdout io.Writer) (bool, error) {
	switch {
	case c.hello != "":
		return true, serveHello(ctx, c.hello)
	case c.origin != "":
		return true, serveOrigin(ctx, c.origin)
	case c.passthrough != "":
		ups := splitList(c.upstreams)
		if len(ups) == 0 {
			return true, errUsage("-passthrough ADDR -upstreams A,B")
		}
		return true, servePassthrough(ctx, c.passthrough, ups)
	case c.loadgen:
		res, err := runOpenLoop(ctx, loadSpec{Addr: c.addr, Rate: c.rate, Duration: c.duration, Conns: c.conns, Timeout: c.timeout})
		if err != nil {
			return true, err
		}
		return true, json.NewEncoder(stdout).Encode(res)
	case c.hold != "":
		if _, err := raiseFileLimit(uint64(c.n) + 1024); err != nil {
			return true, err
		}
		return true, holdConns(ctx, holdSpec{Proto: c.hold, Addr: c.addr, N: c.n, User: c.user, Database: c.db}, stdout)
	case c.serveEdge != "":
		return true, serveEdgeProfiled(ctx, c.serveEdge, c.cpuprofile, stdout)
	case c.serveDB != "":
		return true, serveDBProxyProfiled(ctx, c.serveDB, c.cpuprofile, stdout)
	}
	return false, nil
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// errUsage reports a bad command line.
func errUsage(format string, args ...any) error {
	return fmt.Errorf("usage: "+format, args...)
}
