package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// renderSVG draws a scenario's result as one self-contained SVG: a panel
// per metric group, bars (median, with a min–max whisker) for throughput-
// like groups and lines for latency percentiles, then the goals.
func renderSVG(res *Result) string {
	const (
		panelW, panelH = 480, 300
		cols           = 2
		margin         = 20
		titleH         = 56
		goalLineH      = 18
	)
	groups := groupsOf(res)
	rows := (len(groups) + cols - 1) / cols
	width := cols*panelW + (cols+1)*margin
	goalsH := goalLineH*(len(res.Goals)+len(res.Failures)) + 30
	height := titleH + rows*(panelH+margin) + goalsH + margin

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="18" font-weight="bold">%s</text>`+"\n", margin, esc(res.Scenario))
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="13" fill="#333">%s</text>`+"\n", margin+10+11*len(res.Scenario), esc(truncate(res.Title, 120)))
	sub := fmt.Sprintf("%s · %d CPU(s) · %d round(s), systems alternating; bars: median, whiskers: min–max · ratios to %s", res.Date.Format("2006-01-02 15:04 MST"), res.Machine.CPUs, res.Rounds, orDash(res.Baseline))
	if res.Smoke {
		sub += " · SMOKE RUN: numbers are not meaningful"
	}
	fmt.Fprintf(&b, `<text x="%d" y="46" fill="#555">%s</text>`+"\n", margin, esc(sub))

	colors := systemColors(res.Systems)
	for i, g := range groups {
		x := margin + (i%cols)*(panelW+margin)
		y := titleH + (i/cols)*(panelH+margin)
		ms := metricsIn(res, g)
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)">`+"\n", x, y)
		fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fafafa" stroke="#ddd"/>`+"\n", panelW, panelH)
		if isLatencyGroup(ms) {
			drawLines(&b, g, ms, res, colors, panelW, panelH)
		} else {
			drawBars(&b, g, ms, res, colors, panelW, panelH)
		}
		b.WriteString("</g>\n")
	}

	y := titleH + rows*(panelH+margin) + 16
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">Goals</text>`+"\n", margin, y)
	for _, g := range res.Goals {
		y += goalLineH
		mark, color := "✔", "#1a7f37"
		if g.Status != goalMet {
			mark, color = "✘", "#cf222e"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s %s</text>`+"\n", margin, y, color, mark, esc(strings.ToUpper(g.Status)+" · "+goalLine(g)))
	}
	for _, f := range res.Failures {
		y += goalLineH
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#9a6700">⚠ %s</text>`+"\n", margin, y, esc(truncate(failureSummary(f), 150)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// failureSummary shortens a failure to "who: what went wrong", dropping
// the command line when the message carries a server error.
func failureSummary(f string) string {
	line := firstLine(f)
	who, _, _ := strings.Cut(line, ":")
	if i := strings.Index(line, "ERROR:"); i >= 0 {
		return who + ": " + strings.TrimSpace(line[i:])
	}
	return line
}

// isLatencyGroup: a group of percentile metrics is drawn as lines.
func isLatencyGroup(ms []*Metric) bool {
	for _, m := range ms {
		if !strings.HasPrefix(m.Name, "p") || len(m.Name) < 3 || m.Name[1] < '0' || m.Name[1] > '9' {
			return false
		}
	}
	return len(ms) > 0 && distinctNames(ms) > 1
}

// plot area inside a panel.
const (
	plotL, plotR, plotT, plotB = 64, 16, 40, 58
)

func drawBars(b *strings.Builder, title string, ms []*Metric, res *Result, colors map[string]string, w, h int) {
	unit := ms[0].Unit
	fmt.Fprintf(b, `<text x="10" y="20" font-weight="bold">%s</text>`+"\n", esc(title))
	fmt.Fprintf(b, `<text x="10" y="34" fill="#555" font-size="11">%s, %s is better</text>`+"\n", esc(unit), esc(ms[0].Better))
	top := 0.0
	for _, m := range ms {
		for _, v := range []num{m.Max, m.Median} {
			if v.ok() {
				top = math.Max(top, float64(v))
			}
		}
	}
	if distinctNames(ms) == 1 {
		ms = withMissing(ms, res.Systems)
	}
	ticks, top := niceTicks(0, top)
	pw, ph := float64(w-plotL-plotR), float64(h-plotT-plotB)
	ypos := func(v float64) float64 { return float64(plotT) + ph - v/top*ph }
	drawYAxis(b, ticks, ypos, w, false)
	n := len(ms)
	slot := pw / float64(max(n, 1))
	barW := math.Min(slot*0.6, 60)
	for i, m := range ms {
		cx := float64(plotL) + slot*(float64(i)+0.5)
		label := m.System
		if names := distinctNames(ms); names > 1 {
			label = m.System + " " + m.Name
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="end" transform="rotate(-30 %.1f %d)" font-size="11">%s</text>`+"\n", cx+4, h-plotB+14, cx+4, h-plotB+14, esc(truncate(label, 17)))
		if !m.Median.ok() {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#cf222e">no data</text>`+"\n", cx, ypos(0)-6)
			continue
		}
		y := ypos(float64(m.Median))
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			cx-barW/2, y, barW, ypos(0)-y, colors[m.System], esc(fmt.Sprintf("%s %s: median %s %s (min %s, max %s)", m.System, m.Name, fmtNum(m.Median), m.Unit, fmtNum(m.Min), fmtNum(m.Max))))
		if m.Min.ok() && m.Max.ok() && m.Max > m.Min {
			y1, y2 := ypos(float64(m.Min)), ypos(float64(m.Max))
			fmt.Fprintf(b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#222" fill="none"/>`+"\n",
				cx, y1, y2, cx-5, y1, cx+5, cx-5, y2, cx+5)
		}
		lbl := fmtNum(m.Median)
		if m.RatioMedian.ok() {
			lbl += fmt.Sprintf(" (%.2f×)", float64(m.RatioMedian))
		}
		ly := math.Max(math.Min(y, ypos(float64(m.Max)))-4, float64(plotT)+8)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", cx, ly, esc(lbl))
	}
}

func drawLines(b *strings.Builder, title string, ms []*Metric, res *Result, colors map[string]string, w, h int) {
	fmt.Fprintf(b, `<text x="10" y="20" font-weight="bold">%s</text>`+"\n", esc(title))
	fmt.Fprintf(b, `<text x="10" y="34" fill="#555" font-size="11">%s (log scale), lower is better</text>`+"\n", esc(ms[0].Unit))
	var names, systems []string
	for _, m := range ms {
		if !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
		if !slices.Contains(systems, m.System) {
			systems = append(systems, m.System)
		}
	}
	lo, hi := math.Inf(1), 0.0
	for _, m := range ms {
		if m.Median.ok() && m.Median > 0 {
			lo = math.Min(lo, float64(m.Median))
			hi = math.Max(hi, float64(m.Median))
		}
	}
	if hi == 0 {
		lo, hi = 0.1, 1
	}
	llo, lhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if lhi <= llo {
		lhi = llo + 1
	}
	pw, ph := float64(w-plotL-plotR-90), float64(h-plotT-plotB)
	ypos := func(v float64) float64 {
		return float64(plotT) + ph - (math.Log10(v)-llo)/(lhi-llo)*ph
	}
	var ticks []float64
	for e := llo; e <= lhi; e++ {
		ticks = append(ticks, math.Pow(10, e))
	}
	drawYAxis(b, ticks, ypos, w-90, true)
	xpos := func(i int) float64 {
		if len(names) == 1 {
			return float64(plotL) + pw/2
		}
		return float64(plotL) + 20 + (pw-40)*float64(i)/float64(len(names)-1)
	}
	for i, n := range names {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xpos(i), h-plotB+18, esc(n))
	}
	for si, s := range systems {
		var pts []string
		for i, n := range names {
			for _, m := range ms {
				if m.System == s && m.Name == n && m.Median.ok() && m.Median > 0 {
					x, y := xpos(i), ypos(float64(m.Median))
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
					fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s</title></circle>`+"\n", x, y, colors[s],
						esc(fmt.Sprintf("%s %s: median %s %s (min %s, max %s)", s, n, fmtNum(m.Median), m.Unit, fmtNum(m.Min), fmtNum(m.Max))))
				}
			}
		}
		if len(pts) > 1 {
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colors[s])
		}
		ly := plotT + 14*si
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>`+"\n", w-96, ly, colors[s], w-82, ly+9, esc(truncate(s, 14)))
	}
}

func drawYAxis(b *strings.Builder, ticks []float64, ypos func(float64) float64, w int, logScale bool) {
	for _, t := range ticks {
		y := ypos(t)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e4e4e4"/>`+"\n", plotL, y, w-plotR, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" font-size="10" fill="#444">%s</text>`+"\n", plotL-6, y+3, esc(tickLabel(t)))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888"/>`+"\n", plotL, ypos(ticks[0]), w-plotR, ypos(ticks[0]))
}

// niceTicks returns about five round tick values from lo to at least hi.
func niceTicks(lo, hi float64) ([]float64, float64) {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	top := math.Ceil(hi/step) * step
	var ticks []float64
	for v := lo; v <= top+step/2; v += step {
		ticks = append(ticks, v)
	}
	return ticks, top
}

func tickLabel(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case a >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a >= 1 || a == 0:
		return trimZero(fmt.Sprintf("%.1f", v))
	default:
		return trimZero(fmt.Sprintf("%.3f", v))
	}
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// systemColors gives each system a fixed color, in Result.Systems order.
func systemColors(systems []string) map[string]string {
	palette := []string{"#8c8c8c", "#bf8b2e", "#2f6fdb", "#d9534f", "#4caf50", "#8e44ad", "#16a085", "#e67e22"}
	m := map[string]string{}
	for i, s := range systems {
		m[s] = palette[i%len(palette)]
	}
	return m
}

// withMissing adds an empty metric for each system that has none in this
// single-metric group, so a failed system shows as "no data".
func withMissing(ms []*Metric, systems []string) []*Metric {
	have := map[string]*Metric{}
	for _, m := range ms {
		have[m.System] = m
	}
	var out []*Metric
	for _, s := range systems {
		if m := have[s]; m != nil {
			out = append(out, m)
			delete(have, s)
		} else {
			out = append(out, &Metric{Name: ms[0].Name, Unit: ms[0].Unit, System: s, Median: nan, Min: nan, Max: nan, RatioMedian: nan})
		}
	}
	for _, m := range ms {
		if have[m.System] != nil {
			out = append(out, m)
		}
	}
	return out
}

func distinctNames(ms []*Metric) int {
	var names []string
	for _, m := range ms {
		if !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	return len(names)
}

func esc(s string) string { return html.EscapeString(s) }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
