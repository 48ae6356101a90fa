package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// pgbenchSpec is one pgbench run against host:port.
type pgbenchSpec struct {
	Addr     string
	User     string
	Database string
	Builtin  string // "select-only", "tpcb-like"; or
	Script   string // a custom script file
	Protocol string // simple | extended | prepared
	Clients  int
	Jobs     int
	Duration time.Duration
	LogDir   string // when set, per-transaction latencies are logged and returned
}

// pgbenchResult is what pgbench reported.
type pgbenchResult struct {
	TPS       float64   `json:"tps"`
	Txns      int64     `json:"transactions"` // transactions actually processed
	LatencyMs float64   `json:"latency_avg_ms"`
	Failed    int64     `json:"failed"`
	Samples   histogram `json:"-"` // per-transaction latencies when LogDir was set
}

func (s pgbenchSpec) args() []string {
	host, port, _ := strings.Cut(s.Addr, ":")
	secs := max(int(s.Duration.Round(time.Second)/time.Second), 1)
	a := []string{"-h", host, "-p", port, "-U", s.User, "-n", "-T", strconv.Itoa(secs),
		"-c", strconv.Itoa(s.Clients), "-j", strconv.Itoa(max(s.Jobs, 1)), "-M", s.Protocol}
	if s.Builtin != "" {
		a = append(a, "-b", s.Builtin)
	}
	if s.Script != "" {
		a = append(a, "-f", s.Script)
	}
	if s.LogDir != "" {
		a = append(a, "-l", "--log-prefix", filepath.Join(s.LogDir, "tx"))
	}
	return append(a, s.Database)
}

// pgbench runs pgbench and parses its summary (and its transaction log
// when LogDir is set).
func (h *harness) pgbench(ctx context.Context, s pgbenchSpec) (*pgbenchResult, error) {
	if s.LogDir != "" {
		old, _ := filepath.Glob(filepath.Join(s.LogDir, "tx.*"))
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	out, err := h.procs.runTool(ctx, "pgbench", append([]string{"pgbench"}, s.args()...), []string{"PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable"})
	r, perr := parsePgbench(string(out))
	if err != nil || perr != nil {
		return r, fmt.Errorf("pgbench %s: %v %v\n%s", strings.Join(s.args(), " "), err, perr, tailLines(string(out), 12))
	}
	if s.LogDir != "" {
		files, _ := filepath.Glob(filepath.Join(s.LogDir, "tx.*"))
		for _, f := range files {
			if err := readPgbenchLog(f, &r.Samples); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

var (
	pgbTPS     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((with|without) initial connection time\)`)
	pgbLatency = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	pgbTxns    = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	pgbFailed  = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	pgbAborted = regexp.MustCompile(`(?m)(aborted in command|Run was aborted)`)
)

// parsePgbench reads pgbench's summary. A run where a client aborted (an
// error, e.g. an unknown prepared statement behind a pooler) is an error.
func parsePgbench(out string) (*pgbenchResult, error) {
	r := &pgbenchResult{}
	m := pgbTPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no tps line")
	}
	r.TPS, _ = strconv.ParseFloat(m[1], 64)
	if m := pgbLatency.FindStringSubmatch(out); m != nil {
		r.LatencyMs, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := pgbTxns.FindStringSubmatch(out); m != nil {
		r.Txns, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := pgbFailed.FindStringSubmatch(out); m != nil {
		r.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if pgbAborted.MatchString(out) {
		return r, fmt.Errorf("a client aborted: %s", firstMatchLine(out, "aborted"))
	}
	return r, nil
}

func firstMatchLine(out, sub string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) || strings.Contains(l, "ERROR") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// readPgbenchLog adds the latencies of a pgbench -l log to h. Each line is
// "client_id transaction_no time script_no time_epoch time_us", time in µs.
func readPgbenchLog(path string, h *histogram) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseFloat(fields[2], 64)
		if err != nil {
			continue // "skipped" and the like
		}
		h.record(time.Duration(us * float64(time.Microsecond)))
	}
	return sc.Err()
}
