package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// openLoop runs the open-loop load generator as a child process (never in
// the process of a system under test) and returns what it measured.
func (h *harness) openLoop(ctx context.Context, addr string, rate float64, d time.Duration, conns int) (loadResult, error) {
	argv := []string{h.self, "-loadgen", "-addr", addr, "-rate", strconv.FormatFloat(rate, 'f', 0, 64),
		"-duration", d.String(), "-conns", strconv.Itoa(conns), "-timeout", "2s"}
	out, err := h.procs.runTool(ctx, "loadgen", argv, nil)
	if err != nil {
		return loadResult{}, fmt.Errorf("%w: %s", err, tailLines(string(out), 5))
	}
	var res loadResult
	if err := json.Unmarshal(lastJSONLine(out), &res); err != nil {
		return res, fmt.Errorf("loadgen output: %w: %s", err, tailLines(string(out), 5))
	}
	return res, nil
}

// lastJSONLine finds the JSON object a child printed last.
func lastJSONLine(out []byte) []byte {
	end := len(out)
	for end > 0 && (out[end-1] == '\n' || out[end-1] == ' ') {
		end--
	}
	start := end
	for start > 0 && out[start-1] != '\n' {
		start--
	}
	return out[start:end]
}

// loadLevels are the open-loop rates, as fractions of the slowest system's
// saturation throughput.
func loadLevels() []float64 { return []float64{0.25, 0.50, 0.75} }

// latencyGroup names the chart panel of one load level.
func latencyGroup(level, rate float64) string {
	return fmt.Sprintf("open-loop latency @ %.0f%% load (%.0f req/s)", level*100, rate)
}
