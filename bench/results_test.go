package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func nums(fs ...float64) []num {
	out := make([]num, len(fs))
	for i, f := range fs {
		out[i] = num(f)
	}
	return out
}

func TestSummarize(t *testing.T) {
	n := math.NaN()
	cases := []struct {
		in            []num
		med, lo, hi   float64
		wantAllMissed bool
	}{
		{nums(3, 1, 2), 2, 1, 3, false},
		{nums(4, 1, 3, 2), 2.5, 1, 4, false},
		{nums(n, 5, n), 5, 5, 5, false},
		{nums(n, n), 0, 0, 0, true},
	}
	for _, tc := range cases {
		med, lo, hi := summarize(tc.in)
		if tc.wantAllMissed {
			if med.ok() || lo.ok() || hi.ok() {
				t.Errorf("summarize(%v) = %v %v %v, want no data", tc.in, med, lo, hi)
			}
			continue
		}
		if float64(med) != tc.med || float64(lo) != tc.lo || float64(hi) != tc.hi {
			t.Errorf("summarize(%v) = %v %v %v, want %v %v %v", tc.in, med, lo, hi, tc.med, tc.lo, tc.hi)
		}
	}
}

// testResult builds a small two-system, three-round result.
func testResult(edge, haproxy []float64) (*Result, *recorder) {
	res := &Result{Scenario: "t", Title: "test", Rounds: 3, Baseline: "haproxy", Systems: []string{"edge", "haproxy"}, Date: time.Unix(0, 0).UTC()}
	rec := newRecorder(res)
	for r := range 3 {
		if !math.IsNaN(edge[r]) {
			rec.add(mThroughput, "edge", r, edge[r])
		}
		if !math.IsNaN(haproxy[r]) {
			rec.add(mThroughput, "haproxy", r, haproxy[r])
		}
	}
	rec.finish()
	return res, rec
}

func TestRatioGoal(t *testing.T) {
	n := math.NaN()
	cases := []struct {
		name          string
		edge, haproxy []float64
		cmp           string
		target        float64
		status        string
		ratio         float64
	}{
		// The per-round ratios are 1.5, 1.2, 1.44: their median is 1.44,
		// while the medians of the values (130 and 100) would give 1.3.
		{"met, median of per-round ratios", []float64{150, 120, 130}, []float64{100, 100, 90}, ">=", 1.4, goalMet, 130.0 / 90},
		{"not met", []float64{100, 100, 100}, []float64{100, 100, 100}, ">=", 1.25, goalNotMet, 1},
		{"lower is better", []float64{1, 1, 1}, []float64{2, 2, 2}, "<=", 1, goalMet, 0.5},
		{"comparison missing", []float64{100, 100, 100}, []float64{n, n, n}, ">=", 1, goalNotMet, n},
		{"ours missing", []float64{n, n, n}, []float64{100, 100, 100}, ">=", 1, goalNotMet, n},
		{"one round each, different rounds", []float64{100, n, n}, []float64{n, 100, n}, ">=", 1, goalNotMet, n},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, rec := testResult(tc.edge, tc.haproxy)
			g := rec.ratioGoal("g", mThroughput.Group, mThroughput.Name, "edge", "haproxy", tc.cmp, tc.target)
			if g.Status != tc.status {
				t.Errorf("status %q, want %q (%+v)", g.Status, tc.status, g)
			}
			if math.IsNaN(tc.ratio) != !g.Ratio.ok() || (g.Ratio.ok() && math.Abs(float64(g.Ratio)-tc.ratio) > 1e-9) {
				t.Errorf("ratio %v, want %v", g.Ratio, tc.ratio)
			}
			if len(res.Goals) != 1 {
				t.Errorf("goal not recorded")
			}
			if g.Status != goalMet && g.Note == "" && !g.Ratio.ok() {
				t.Errorf("a goal without a ratio must say why")
			}
		})
	}
}

func TestAbsGoal(t *testing.T) {
	res := &Result{Rounds: 3}
	rec := newRecorder(res)
	k := metricKey{Name: "per", Group: "g", Unit: "KiB", Better: "lower"}
	for r, v := range []float64{6, 9, 7} {
		rec.add(k, "dbproxy", r, v)
	}
	rec.finish()
	g := rec.absGoal("≤ 8 KiB", "g", "per", "dbproxy", "<=", 8)
	if g.Status != goalMet || float64(g.Value) != 7 || g.Unit != "KiB" {
		t.Errorf("got %+v", g)
	}
	if line := goalLine(g); !strings.Contains(line, "7.00 KiB (target <= 8.00 KiB") {
		t.Errorf("goal line %q", line)
	}
}

func TestResultJSONAndSVG(t *testing.T) {
	n := math.NaN()
	res, rec := testResult([]float64{150, n, 140}, []float64{100, 100, 110})
	lat := pctKeys(latencyGroup(0.5, 1000))
	for r := range 3 {
		for i, k := range lat {
			rec.add(k, "edge", r, float64(i+1)*0.5)
			rec.add(k, "haproxy", r, float64(i+1)*0.7)
		}
	}
	rec.finish()
	rec.ratioGoal("edge ≥ 1.25× <haproxy> & co", mThroughput.Group, mThroughput.Name, "edge", "haproxy", ">=", 1.25)
	res.Failures = append(res.Failures, "edge (round 2): <boom> & \"quotes\"")

	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"rounds":[150,null,140]`) {
		t.Errorf("missing round should encode as null: %s", data)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Metrics[0].Values[1].ok() {
		t.Error("null should decode as no data")
	}

	svg := renderSVG(res)
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"<polyline", "<rect", "MET", "edge ≥ 1.25× &lt;haproxy&gt; &amp; co"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
