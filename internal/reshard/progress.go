package reshard

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Progress is a snapshot of a job, passed to Options.Progress.
type Progress struct {
	// Phase is the phase being worked on.
	Phase Phase
	// Tables has one entry per moving table, in plan order.
	Tables []TableProgress
	// Rows is the source rows scanned in this phase (copy or delete), over
	// every run; Total estimates how many there are (0: unknown).
	Rows, Total int64
	// Moved is the rows written to targets (copy) or deleted (delete);
	// Bytes the binary COPY bytes written (copy).
	Moved, Bytes int64
	// Rate is rows scanned per second in this run's phase; ETA estimates
	// the rest of the phase (negative: unknown).
	Rate float64
	ETA  time.Duration
	// Replayed is the change-log entries applied in this run; Backlog is
	// the entries waiting at the last measure (catch-up and cutover).
	Replayed, Backlog int64
	// Elapsed is the time since this run's phase started.
	Elapsed time.Duration
}

// TableProgress is one table's part of a Progress.
type TableProgress struct {
	Table        string
	Rows, Total  int64
	Moved, Bytes int64
	Rate         float64
	ETA          time.Duration
	Done         bool
}

// Percent is Rows over Total in percent, 0 when Total is unknown.
func (p Progress) Percent() float64 {
	if p.Total <= 0 {
		return 0
	}
	return min(100, 100*float64(p.Rows)/float64(p.Total))
}

// tracker turns the job's state into Progress reports.
type tracker struct {
	r *Resharder

	mu       sync.Mutex
	phase    Phase
	start    time.Time
	last     time.Time
	totals   map[string]int64 // source key → estimated rows to scan this phase
	base     map[string]int64 // source key → rows scanned before this run's phase
	done     map[string]bool
	replayed int64
	mark     int64 // see markReplayed
	backlog  int64
}

func newTracker(r *Resharder) *tracker {
	return &tracker{r: r, totals: map[string]int64{}, base: map[string]int64{}, done: map[string]bool{}}
}

// startPhase resets the per-phase figures.
func (t *tracker) startPhase(p Phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase, t.start = p, t.r.now()
	t.totals, t.base, t.done = map[string]int64{}, map[string]int64{}, map[string]bool{}
	t.replayed, t.backlog = 0, 0
}

// estimate records how many rows the unit key will scan on c: the
// planner's estimate, or an exact count when the table was never analyzed
// or a predicate filters it.
func (t *tracker) estimate(ctx context.Context, c *pgx.Conn, tp *TablePlan, key, pred string) error {
	var n int64
	if pred == "" {
		if err := c.QueryRow(ctx, `SELECT coalesce(reltuples, -1)::bigint FROM pg_class WHERE oid = to_regclass($1)`, quoteTable(tp.Name)).Scan(&n); err != nil {
			return fmt.Errorf("reshard: estimate %s: %w", tp.Name, err)
		}
	}
	if n <= 0 {
		where, err := rangeWhere(tp, nil, nil, pred)
		if err != nil {
			return err
		}
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+quoteTable(tp.Name)+where).Scan(&n); err != nil {
			return fmt.Errorf("reshard: count %s: %w", tp.Name, err)
		}
	}
	scanned := t.scanned(key)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.totals[key] = max(n, scanned)
	t.base[key] = scanned
	return nil
}

// scanned is the rows unit key has scanned in the current phase.
func (t *tracker) scanned(key string) int64 {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	ss := t.r.state.Sources[key]
	if ss == nil {
		return 0
	}
	if t.r.state.Phase == PhaseDelete {
		return ss.DeleteScanned
	}
	return ss.Scanned
}

// finish marks unit key complete: its total becomes what it scanned.
func (t *tracker) finish(key string) {
	n := t.scanned(key)
	t.mu.Lock()
	t.totals[key] = n
	t.done[key] = true
	t.mu.Unlock()
	t.report(false)
}

func (t *tracker) addReplayed(n int64) {
	t.mu.Lock()
	t.replayed += n
	t.mu.Unlock()
	t.report(false)
}

// markReplayed remembers the replayed count; replayedSince returns what
// was replayed after the mark.
func (t *tracker) markReplayed() {
	t.mu.Lock()
	t.mark = t.replayed
	t.mu.Unlock()
}

func (t *tracker) replayedSince() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.replayed - t.mark
}

func (t *tracker) setBacklog(n int64) {
	t.mu.Lock()
	t.backlog = n
	t.mu.Unlock()
}

// report sends a Progress when the interval has passed, or always with
// force. Reports are serialized.
func (t *tracker) report(force bool) {
	fn := t.r.opts.Progress
	if fn == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.r.now()
	if !force && now.Sub(t.last) < t.r.cfg.ProgressInterval {
		return
	}
	t.last = now
	fn(t.snapshotLocked(now))
}

// snapshotLocked builds a Progress; t.mu is held.
func (t *tracker) snapshotLocked(now time.Time) Progress {
	p := Progress{Phase: t.phase, Replayed: t.replayed, Backlog: t.backlog, Elapsed: now.Sub(t.start), ETA: -1}
	if p.Phase == "" {
		p.Phase = t.r.Phase()
	}
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	secs := p.Elapsed.Seconds()
	var runRows int64
	for _, tp := range t.r.plan.Tables {
		tpr := TableProgress{Table: tp.Name, ETA: -1, Done: true}
		var run int64
		for _, sp := range tp.Sources {
			key := sourceKey(tp.Name, sp.Shard)
			ss := t.r.state.Sources[key]
			rows, moved := ss.Scanned, ss.Copied
			if t.phase == PhaseDelete {
				rows, moved = ss.DeleteScanned, ss.Deleted
			}
			tpr.Rows += rows
			tpr.Moved += moved
			if t.phase != PhaseDelete {
				tpr.Bytes += ss.Bytes
			}
			total, known := t.totals[key]
			if !known {
				total = rows
			}
			tpr.Total += max(total, rows)
			run += rows - t.base[key]
			if !t.done[key] && !(t.phase == PhaseCopy && ss.CopyDone) && !(t.phase == PhaseDelete && ss.DeleteDone) {
				tpr.Done = false
			}
		}
		if secs > 0 {
			tpr.Rate = float64(run) / secs
		}
		tpr.ETA = eta(tpr.Total-tpr.Rows, tpr.Rate, tpr.Done)
		runRows += run
		p.Tables = append(p.Tables, tpr)
		p.Rows += tpr.Rows
		p.Total += tpr.Total
		p.Moved += tpr.Moved
		p.Bytes += tpr.Bytes
	}
	if secs > 0 {
		p.Rate = float64(runRows) / secs
	}
	p.ETA = eta(p.Total-p.Rows, p.Rate, p.Rows >= p.Total && p.Total > 0)
	return p
}

func eta(left int64, rate float64, done bool) time.Duration {
	switch {
	case done || left <= 0:
		return 0
	case rate <= 0:
		return -1
	}
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second)
}
