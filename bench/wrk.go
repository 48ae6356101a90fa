package main

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkSpec is one closed-loop run of wrk.
type wrkSpec struct {
	URL      string
	Threads  int
	Conns    int
	Duration time.Duration
	Script   string // optional Lua script
}

// wrkResult is what wrk printed.
type wrkResult struct {
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"` // socket errors + non-2xx/3xx
	P50      float64 `json:"p50_ms"` // closed-loop latencies (coordinated omission applies)
	P99      float64 `json:"p99_ms"`
}

func (s wrkSpec) args() []string {
	secs := max(int(s.Duration.Round(time.Second)/time.Second), 1)
	a := []string{"-t" + strconv.Itoa(s.Threads), "-c" + strconv.Itoa(s.Conns), "-d" + strconv.Itoa(secs) + "s", "--latency", "--timeout", "5s"}
	if s.Script != "" {
		a = append(a, "-s", s.Script)
	}
	return append(a, s.URL)
}

// wrk runs wrk in its own process (so the load generator never shares a
// process with a system under test) and parses its report.
func (h *harness) wrk(ctx context.Context, s wrkSpec) (wrkResult, error) {
	out, err := h.procs.runTool(ctx, "wrk", append([]string{"wrk"}, s.args()...), nil)
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(s.args(), " "), err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return r, nil
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkPct      = regexp.MustCompile(`^\s*(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// parseWrk reads wrk's text report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkRequests.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.Errors += n
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := wrkPct.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.P50 = v
		} else {
			r.P99 = v
		}
	}
	return r, nil
}
