package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// harness is one invocation's shared state: where things live and what
// was started. Scenarios get it and start what they need through it, so
// stopping is one place.
type harness struct {
	opts  options
	root  string // repository root
	tmp   string // scratch dir, removed at exit
	self  string // this executable (child modes)
	procs *procSet
	bins  map[string]string // built tiergate binaries by system name
	// fdLimit is the open-files limit every child inherits (the harness
	// raises it as far as the hard limit allows).
	fdLimit int
	out     io.Writer
	prog    *progress
}

// scenario is one named comparison.
type scenario struct {
	name  string
	title string
	needs []string // tools, see debianPackage
	// optional tools are installed like needs, but a scenario whose
	// optional tool is missing still runs, without the systems needing it.
	optional []string
	run      func(ctx context.Context, h *harness, res *Result, rec *recorder) error
}

// allScenarios lists the scenarios in the order `make bench` runs them.
func allScenarios() []scenario {
	return []scenario{
		edgeThroughputScenario(),
		edgeFeaturesScenario(),
		edgeConnectionsScenario(),
		edgeCacheScenario(),
		dbThroughputScenario(),
		dbConnectionsScenario(),
		dbLatencyScenario(),
		dbFailoverScenario(),
		dbFanoutScenario(),
		dbCacheScenario(),
	}
}

func runHarness(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	if o.rounds < 1 {
		return errUsage("-rounds must be at least 1")
	}
	if o.smoke {
		o.rounds = 1
	}
	var chosen []scenario
	for _, s := range allScenarios() {
		if o.scenario == "all" || o.scenario == s.name {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		return errUsage("unknown scenario %q (see -list)", o.scenario)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results")
		if o.smoke {
			o.out = filepath.Join(root, "bench", "tmp", "smoke")
		}
	}
	fdLimit, err := raiseFileLimit(40000)
	if err != nil || fdLimit == 0 {
		fmt.Fprintf(stderr, "bench: cannot raise the open-files limit: %v\n", err)
		fdLimit = 1024
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "tiergate-bench-")
	if err != nil {
		return err
	}
	// Other users (pgbouncer runs as postgres) must reach files under it.
	_ = os.Chmod(tmp, 0o755)
	h := &harness{opts: o, root: root, tmp: tmp, self: self, procs: newProcSet(tmp), bins: map[string]string{}, fdLimit: int(fdLimit),
		prog: newProgress(stderr)}
	defer func() {
		h.procs.stopAll()
		_ = os.RemoveAll(tmp)
	}()

	machine := readMachine()
	missing := h.ensureTools(ctx, chosen)
	start := time.Now()
	var summary []string
	for _, s := range chosen {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if m := missing[s.name]; len(m) > 0 {
			msg := fmt.Sprintf("%s: SKIPPED, missing %s", s.name, strings.Join(m, ", "))
			fmt.Fprintln(stdout, msg)
			summary = append(summary, msg)
			continue
		}
		res, err := h.runScenario(ctx, s, machine, args)
		if res != nil {
			printResult(stdout, res)
			if ctx.Err() == nil {
				jp, sp, werr := writeResult(o.out, res)
				if werr != nil {
					return werr
				}
				fmt.Fprintf(stdout, "wrote %s and %s\n", rel(root, jp), rel(root, sp))
			}
			for _, g := range res.Goals {
				summary = append(summary, fmt.Sprintf("%-16s [%s] %s", s.name, strings.ToUpper(g.Status), goalLine(g)))
			}
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			msg := fmt.Sprintf("%s: FAILED: %v", s.name, err)
			fmt.Fprintln(stdout, msg)
			summary = append(summary, firstLine(msg))
		}
		h.procs.stopAll()
	}
	fmt.Fprintf(stdout, "\n== summary (%s) ==\n", time.Since(start).Round(time.Second))
	for _, l := range summary {
		fmt.Fprintln(stdout, l)
	}
	return nil
}

// runScenario runs one scenario and fills its Result.
func (h *harness) runScenario(ctx context.Context, s scenario, machine machineInfo, args []string) (*Result, error) {
	res := &Result{
		Scenario: s.name,
		Title:    s.title,
		Date:     time.Now().UTC(),
		Command:  commandLine(args),
		Machine:  machine,
		Smoke:    h.opts.smoke,
		Rounds:   h.opts.rounds,
		Settings: map[string]any{},
	}
	res.Machine.LoadBefore = loadAvg()
	res.Machine.Tools = map[string]string{}
	for _, t := range append(slices.Clone(s.needs), s.optional...) {
		if v := toolVersionOf(t); v != "" {
			res.Machine.Tools[t] = v
		}
	}
	h.prog.scenario(s.name)
	rec := newRecorder(res)
	start := time.Now()
	err := s.run(ctx, h, res, rec)
	rec.finish()
	res.Elapsed = time.Since(start).Seconds()
	res.Machine.LoadAfter = loadAvg()
	if busy := max(load1(res.Machine.LoadBefore), load1(res.Machine.LoadAfter)); busy > float64(res.Machine.CPUs) {
		res.Notes = append(res.Notes, fmt.Sprintf("other work ran concurrently: 1-minute load average %.1f on %d CPUs (before %s, after %s); expect noisy numbers", busy, res.Machine.CPUs, res.Machine.LoadBefore, res.Machine.LoadAfter))
	}
	if err != nil {
		res.Failures = append(res.Failures, err.Error())
	}
	return res, err
}

// load1 is the 1-minute figure of a loadavg string.
func load1(s string) float64 {
	f, _ := strconv.ParseFloat(strings.SplitN(s, " ", 2)[0], 64)
	return f
}

// commandLine is how this result can be reproduced.
func commandLine(args []string) string {
	if len(args) == 0 {
		return "go run ./bench"
	}
	return "go run ./bench " + strings.Join(args, " ")
}

// build compiles ./cmd/<name> into the temp dir once.
func (h *harness) build(ctx context.Context, system, pkg string) (string, error) {
	if p, ok := h.bins[system]; ok {
		return p, nil
	}
	out := filepath.Join(h.tmp, "bin", system)
	h.prog.begin(0, "building %s", pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = h.root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	h.prog.end("ok")
	h.bins[system] = out
	return out, nil
}

// repoRoot finds the directory holding tiergate's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/tiergate/tiergate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the tiergate repository (no go.mod found)")
		}
		dir = parent
	}
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// haproxyMaxConn is the largest maxconn HAProxy accepts under the
// open-files limit: it reserves two descriptors per connection (client and
// server side) plus a few dozen of its own, and refuses to start otherwise.
func (h *harness) haproxyMaxConn() int {
	return min(max((h.fdLimit-100)/2, 256), 30000)
}

// roundsOf is how many rounds a scenario runs.
func (h *harness) roundsOf() int { return h.opts.rounds }

// dur picks the smoke or the full duration unless a flag overrides it.
func (h *harness) dur(flagVal, full, smoke time.Duration) time.Duration {
	switch {
	case flagVal > 0:
		return flagVal
	case h.opts.smoke:
		return smoke
	default:
		return full
	}
}

// allRounds, as failed's round, fails every round of a system (it did not
// start).
const allRounds = -1

// failed records err for round r of system (allRounds: every round) and
// marks the progress line failed. It reports whether the run was cancelled
// instead; the scenario then returns ctx.Err().
func (h *harness) failed(ctx context.Context, rec *recorder, system string, r int, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	if r == allRounds {
		h.prog.end("FAILED")
		for r := range h.roundsOf() {
			rec.fail(system, r, err)
		}
		return false
	}
	h.prog.end("failed")
	rec.fail(system, r, err)
	return false
}
