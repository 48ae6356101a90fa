package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
)

// machineInfo describes where a result was measured.
type machineInfo struct {
	CPUs       int               `json:"cpus"`
	CPUModel   string            `json:"cpu_model"`
	MemoryMiB  int               `json:"memory_mib"`
	Kernel     string            `json:"kernel"`
	Go         string            `json:"go"`
	LoadBefore string            `json:"loadavg_before"`
	LoadAfter  string            `json:"loadavg_after"`
	Tools      map[string]string `json:"tools"`
}

func readMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), Tools: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryMiB = kb / 1024
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadBefore = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// toolVersion returns the first line a tool prints about its version.
func toolVersion(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// writeResult writes <dir>/<scenario>.json and .svg.
func writeResult(dir string, res *Result) (jsonPath, svgPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, res.Scenario+".json")
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return "", "", err
	}
	svgPath = filepath.Join(dir, res.Scenario+".svg")
	if err := os.WriteFile(svgPath, []byte(renderSVG(res)), 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, svgPath, nil
}

// printResult prints a scenario's tables and goals.
func printResult(w io.Writer, res *Result) {
	fmt.Fprintf(w, "\n== %s: %s (%d round(s)%s) ==\n", res.Scenario, res.Title, res.Rounds, smokeTag(res.Smoke))
	for _, group := range groupsOf(res) {
		ms := metricsIn(res, group)
		if len(ms) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", group)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		ratioHdr := ""
		if res.Baseline != "" {
			ratioHdr = "×" + res.Baseline + "\t"
		}
		fmt.Fprintf(tw, "system\tmetric\tmedian\tmin\tmax\t%srounds\t\n", ratioHdr)
		for _, m := range ms {
			ratio := ""
			if res.Baseline != "" {
				switch {
				case m.System == res.Baseline:
					ratio = "1.00×\t"
				case m.RatioTo != "" && m.RatioMedian.ok():
					ratio = fmt.Sprintf("%.2f×\t", float64(m.RatioMedian))
				default:
					ratio = "-\t"
				}
			}
			var rounds []string
			for _, v := range m.Values {
				rounds = append(rounds, fmtNum(v))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\t\n", m.System, m.Name+" ("+m.Unit+")",
				fmtNum(m.Median), fmtNum(m.Min), fmtNum(m.Max), ratio, strings.Join(rounds, " "))
		}
		_ = tw.Flush()
	}
	if len(res.Goals) > 0 {
		fmt.Fprintf(w, "\ngoals\n")
		for _, g := range res.Goals {
			fmt.Fprintf(w, "  %-9s %s\n", "["+strings.ToUpper(g.Status)+"]", goalLine(g))
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, f := range res.Failures {
		fmt.Fprintf(w, "FAILED: %s\n", firstLine(f))
	}
}

// goalLine is a goal's one-line verdict.
func goalLine(g Goal) string {
	s := g.Text + ": "
	if g.Unit != "" && g.Value.ok() {
		s += fmt.Sprintf("%s %s (target %s %s %s", fmtNum(g.Value), g.Unit, g.Cmp, fmtNum(num(g.Target)), g.Unit)
		if len(g.Rounds) > 0 {
			var rs []string
			for _, r := range g.Rounds {
				rs = append(rs, fmtNum(r*num(g.Target)))
			}
			s += "; rounds " + strings.Join(rs, " ")
		}
		s += ")"
	} else if g.Ratio.ok() {
		s += fmt.Sprintf("%.2f× (target %s %.2f×", float64(g.Ratio), g.Cmp, g.Target)
		if len(g.Rounds) > 0 {
			var rs []string
			for _, r := range g.Rounds {
				rs = append(rs, fmtNum(r))
			}
			s += "; rounds " + strings.Join(rs, " ")
		}
		s += ")"
	} else {
		s += "no ratio"
	}
	if g.Note != "" {
		s += "; " + g.Note
	}
	return s
}

func smokeTag(smoke bool) string {
	if smoke {
		return ", SMOKE: numbers are not meaningful"
	}
	return ""
}

// groupsOf lists metric groups in first-seen order.
func groupsOf(res *Result) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range res.Metrics {
		if !seen[m.Group] {
			seen[m.Group] = true
			out = append(out, m.Group)
		}
	}
	return out
}

func metricsIn(res *Result, group string) []*Metric {
	var out []*Metric
	for _, m := range res.Metrics {
		if m.Group == group {
			out = append(out, m)
		}
	}
	return out
}

// fmtNum prints a value with about four significant digits.
func fmtNum(v num) string {
	if !v.ok() {
		return "-"
	}
	f := float64(v)
	switch a := abs(f); {
	case a >= 10000:
		return fmt.Sprintf("%.0f", f)
	case a >= 100:
		return fmt.Sprintf("%.1f", f)
	case a >= 1:
		return fmt.Sprintf("%.2f", f)
	default:
		return fmt.Sprintf("%.3g", f)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
