package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Result is one scenario's outcome, written to results/<scenario>.json.
type Result struct {
	Scenario string         `json:"scenario"`
	Title    string         `json:"title"`
	Date     time.Time      `json:"date"`
	Command  string         `json:"command"`
	Machine  machineInfo    `json:"machine"`
	Smoke    bool           `json:"smoke"`
	Rounds   int            `json:"rounds"`
	Settings map[string]any `json:"settings"`
	// Baseline is the comparison system: every metric carries its ratio to
	// it, round by round (the rounds alternate systems, so a round's ratio
	// compares runs made close together in time).
	Baseline string    `json:"baseline"`
	Systems  []string  `json:"systems"`
	Metrics  []*Metric `json:"metrics"`
	Goals    []Goal    `json:"goals"`
	Notes    []string  `json:"notes,omitempty"`
	// Failures lists what did not work (a system that would not start, a
	// run that errored), verbatim enough to act on.
	Failures []string `json:"failures,omitempty"`
	// Profile is `go tool pprof -top` of the tiergate engine under this
	// scenario's load, taken when a goal was not met (or -profile).
	Profile string  `json:"profile,omitempty"`
	Elapsed float64 `json:"elapsed_s"`
}

// Metric is one measured quantity for one system over the rounds.
type Metric struct {
	Name   string `json:"name"`  // e.g. "throughput", "p99"
	Group  string `json:"group"` // chart panel, e.g. "throughput", "latency @ 50% load"
	Unit   string `json:"unit"`
	Better string `json:"better"` // "higher" or "lower"
	System string `json:"system"`
	Values []num  `json:"rounds"` // one per round; null when that round failed
	Median num    `json:"median"`
	Min    num    `json:"min"`
	Max    num    `json:"max"`
	// RatioTo is Result.Baseline; Ratios are this system's value divided by
	// the baseline's, per round, and RatioMedian their median.
	RatioTo     string `json:"ratio_to,omitempty"`
	Ratios      []num  `json:"ratios,omitempty"`
	RatioMedian num    `json:"ratio_median,omitempty"`
}

// num is a float64 that encodes NaN (no data) as JSON null.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, roundSig(f, 6), 'g', -1, 64), nil
}

func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = num(f)
	return nil
}

func roundSig(f float64, digits int) float64 {
	if f == 0 {
		return 0
	}
	p, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', digits, 64), 64)
	return p
}

var nan = num(math.NaN())

func (n num) ok() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }

// metricKey names a metric independent of the system.
type metricKey struct {
	Name, Group, Unit, Better string
}

// recorder collects per-round values into a Result.
type recorder struct {
	res    *Result
	byKey  map[string]*Metric
	rounds int
}

func newRecorder(res *Result) *recorder {
	return &recorder{res: res, byKey: map[string]*Metric{}, rounds: res.Rounds}
}

func (r *recorder) metric(k metricKey, system string) *Metric {
	id := k.Group + "\x00" + k.Name + "\x00" + system
	m := r.byKey[id]
	if m == nil {
		m = &Metric{Name: k.Name, Group: k.Group, Unit: k.Unit, Better: k.Better, System: system}
		m.Values = make([]num, r.rounds)
		for i := range m.Values {
			m.Values[i] = nan
		}
		r.byKey[id] = m
		r.res.Metrics = append(r.res.Metrics, m)
	}
	return m
}

// add records system's value of metric k in round (0-based).
func (r *recorder) add(k metricKey, system string, round int, v float64) {
	r.metric(k, system).Values[round] = num(v)
}

// fail records that system's run failed in a round; the failure text goes
// to Result.Failures once per distinct message.
func (r *recorder) fail(system string, round int, err error) {
	msg := fmt.Sprintf("%s (round %d): %v", system, round+1, err)
	r.res.Failures = append(r.res.Failures, msg)
}

// finish computes medians, ranges and ratios to the baseline.
func (r *recorder) finish() {
	for _, m := range r.res.Metrics {
		m.Median, m.Min, m.Max = summarize(m.Values)
		m.RatioTo, m.Ratios, m.RatioMedian = "", nil, nan
	}
	if r.res.Baseline == "" {
		return
	}
	for _, m := range r.res.Metrics {
		base := r.find(m.Group, m.Name, r.res.Baseline)
		if base == nil || m.System == r.res.Baseline {
			continue
		}
		m.RatioTo = r.res.Baseline
		m.Ratios = ratios(m.Values, base.Values)
		m.RatioMedian, _, _ = summarize(m.Ratios)
	}
}

func (r *recorder) find(group, name, system string) *Metric {
	return r.byKey[group+"\x00"+name+"\x00"+system]
}

// ratios divides a by b round by round (NaN where either is missing).
func ratios(a, b []num) []num {
	out := make([]num, len(a))
	for i := range a {
		out[i] = nan
		if i < len(b) && a[i].ok() && b[i].ok() && b[i] != 0 {
			out[i] = a[i] / b[i]
		}
	}
	return out
}

// summarize returns the median, min and max of the values present.
func summarize(vs []num) (med, lo, hi num) {
	var xs []float64
	for _, v := range vs {
		if v.ok() {
			xs = append(xs, float64(v))
		}
	}
	if len(xs) == 0 {
		return nan, nan, nan
	}
	slices.Sort(xs)
	n := len(xs)
	m := xs[n/2]
	if n%2 == 0 {
		m = (xs[n/2-1] + xs[n/2]) / 2
	}
	return num(m), num(xs[0]), num(xs[n-1])
}

// Goal is one target from the project issue and whether it was met.
type Goal struct {
	Text string `json:"goal"`
	// Ratio is the median over rounds of System's metric divided by
	// Versus's (or by Target's unit for absolute goals); Rounds are the
	// per-round ratios.
	Ratio  num     `json:"ratio"`
	Rounds []num   `json:"rounds,omitempty"`
	Target float64 `json:"target"`
	Cmp    string  `json:"cmp"` // ">=" or "<="
	// Unit is set for absolute goals (Target in that unit; Value the
	// measured median); ratio goals have none.
	Unit   string `json:"unit,omitempty"`
	Value  num    `json:"value,omitempty"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// Goal statuses.
const (
	goalMet    = "met"
	goalNotMet = "not met"
)

// ratioGoal judges sys/versus of one metric against target, using the
// median of the per-round ratios.
func (r *recorder) ratioGoal(text, group, name, sys, versus string, cmp string, target float64) Goal {
	g := Goal{Text: text, Target: target, Cmp: cmp, Ratio: nan, Value: nan}
	a, b := r.find(group, name, sys), r.find(group, name, versus)
	switch {
	case a == nil || !a.Median.ok():
		g.Status, g.Note = goalNotMet, sys+" produced no measurement (see failures)"
	case b == nil || !b.Median.ok():
		g.Status, g.Note = goalNotMet, "not comparable: "+versus+" produced no measurement (see failures)"
	default:
		g.Rounds = ratios(a.Values, b.Values)
		g.Ratio, _, _ = summarize(g.Rounds)
		if !g.Ratio.ok() {
			g.Status, g.Note = goalNotMet, "no round measured both systems"
			break
		}
		g.Status = judge(float64(g.Ratio), cmp, target)
	}
	r.res.Goals = append(r.res.Goals, g)
	return g
}

// absGoal judges sys's metric median against an absolute target; Ratio is
// value/target.
func (r *recorder) absGoal(text, group, name, sys string, cmp string, target float64) Goal {
	g := Goal{Text: text, Target: target, Cmp: cmp, Ratio: nan, Value: nan}
	a := r.find(group, name, sys)
	if a == nil || !a.Median.ok() {
		g.Status, g.Note = goalNotMet, sys+" produced no measurement (see failures)"
	} else {
		g.Ratio = a.Median / num(target)
		for _, v := range a.Values {
			g.Rounds = append(g.Rounds, v/num(target))
		}
		g.Status = judge(float64(a.Median), cmp, target)
		g.Unit, g.Value = a.Unit, a.Median
	}
	r.res.Goals = append(r.res.Goals, g)
	return g
}

func judge(v float64, cmp string, target float64) string {
	ok := v >= target
	if cmp == "<=" {
		ok = v <= target
	}
	if ok {
		return goalMet
	}
	return goalNotMet
}

// anyGoalNotMet reports whether a goal of res was missed.
func anyGoalNotMet(res *Result) bool {
	for _, g := range res.Goals {
		if g.Status != goalMet {
			return true
		}
	}
	return false
}
