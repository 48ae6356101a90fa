package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// writeMarkdown prints a Markdown summary of every results/*.json in dir:
// per scenario the date, command, load and a goal table (what
// bench/README.md quotes).
func writeMarkdown(w io.Writer, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	order := map[string]int{}
	for i, s := range allScenarios() {
		order[s.name] = i
	}
	var results []*Result
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		results = append(results, &r)
	}
	sort.Slice(results, func(i, j int) bool { return order[results[i].Scenario] < order[results[j].Scenario] })
	fmt.Fprintln(w, "| scenario | goal | result | status |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range results {
		for _, g := range r.Goals {
			fmt.Fprintf(w, "| %s | %s | %s | **%s** |\n", r.Scenario, g.Text, mdCell(strings.TrimPrefix(goalLine(g), g.Text+": ")), g.Status)
		}
	}
	for _, r := range results {
		fmt.Fprintf(w, "\n### %s\n\n%s. %s, %d round(s), %.0f s, load average %s → %s.\n\n", r.Scenario, r.Title, r.Date.Format("2006-01-02 15:04 MST"), r.Rounds, r.Elapsed, r.Machine.LoadBefore, r.Machine.LoadAfter)
		fmt.Fprintln(w, "| group | system | median | min | max | ratio |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, m := range r.Metrics {
			ratio := "-"
			if m.RatioTo != "" && m.RatioMedian.ok() {
				ratio = fmt.Sprintf("%.2f× %s", float64(m.RatioMedian), m.RatioTo)
			}
			fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s | %s |\n", mdCell(m.Group+" · "+m.Name), m.System, fmtNum(m.Median), m.Unit, fmtNum(m.Min), fmtNum(m.Max), ratio)
		}
	}
	return nil
}

// renderAll rewrites the SVG of every results/*.json in dir (after a
// change to the charts, without measuring again).
func renderAll(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := os.WriteFile(strings.TrimSuffix(f, ".json")+".svg", []byte(renderSVG(&r)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
