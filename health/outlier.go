package health

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Outcome is the result of one real request to a target, as the engine saw
// it.
type Outcome uint8

// Outcomes. Every outcome but Success counts toward consecutive_errors.
const (
	// Success: the target answered (any status below 500, or a Postgres
	// reply that is not a server failure). Resets the error run.
	Success Outcome = iota
	// ConnectError: the target could not be reached or dropped the
	// connection before answering.
	ConnectError
	// Timeout: the target did not answer in time.
	Timeout
	// ServerError: the target answered with a 5xx (502, 503 and 504
	// included: gateway errors are not counted separately), or with a
	// Postgres error that means the server is unwell (e.g. admin shutdown,
	// too many connections).
	ServerError
)

var outcomeNames = [...]string{Success: "success", ConnectError: "connect error", Timeout: "timeout", ServerError: "server error"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// StatusOutcome maps an HTTP response status to Success or ServerError.
func StatusOutcome(code int) Outcome {
	if code >= 500 && code <= 599 {
		return ServerError
	}
	return Success
}

// ejecting marks a target whose ejection is being set up by one reporter.
const ejecting = -1

// outlierTarget is the per-target state. Report touches consec only, unless
// the run reaches the threshold.
type outlierTarget struct {
	id      string
	address string
	consec  atomic.Int64
	// until is the ejection end in unix nanos; 0 = not ejected; ejecting =
	// being ejected right now.
	until atomic.Int64
	// level is the multiplier of the last ejection; lastEnd (unix nanos)
	// is when the last ejection ended, for decay.
	level   atomic.Int64
	lastEnd atomic.Int64
	total   atomic.Uint64
}

// outlierSet is an immutable membership snapshot.
type outlierSet struct {
	byID map[string]*outlierTarget
	n    int64
}

// OutlierDetector ejects targets that fail real requests, per group (one
// upstream, one replica set): after consecutive_errors failures in a row a
// target is ejected for base_ejection_time × its ejection multiplier
// (1 for the first ejection, +1 for each ejection that follows while the
// previous ones have not decayed, capped at max_ejection_time), unless that
// would put more than max_ejection_percent of the group's targets out at
// once.
//
// Report, Ejected and EjectedUntil are lock-free and allocation-free: the
// request path costs a map lookup in an immutable snapshot and one or two
// atomic operations. Only the report that ejects takes the slow path (a
// short mutex, a timer and a listener call).
//
// How the engine learns about ejections: Ejected(id, now) is always exact
// (it compares the stored end with now), so an engine that checks it, or
// that copies Change.Until into balancer.Backend.Eject, needs nothing else.
// For snapshot rebuilds and status pages, a Listener gets an Ejected change
// on the reporting goroutine and a Returned change from a timer
// (Clock.AfterFunc) when the ejection ends. The detector has no goroutine of
// its own; Close stops the pending timers.
type OutlierDetector struct {
	enabled   bool
	threshold int64
	base      int64 // nanos
	maxTime   int64 // nanos
	decay     int64 // nanos
	maxPct    int64
	clock     Clock
	listener  Listener
	log       *zap.Logger

	set     atomic.Pointer[outlierSet]
	ejected atomic.Int64 // targets of the current set ejected now

	mu     sync.Mutex // guards timers, closed and Update; never on the fast path
	timers map[*outlierTarget]func() bool
	closed bool
	wg     sync.WaitGroup // expiry callbacks in progress
}

// NewOutlierDetector returns a detector configured by cfg (zero fields take
// their defaults). Call Update to set the group's targets.
func NewOutlierDetector(cfg PassiveConfig, opts Options) (*OutlierDetector, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("health: passive: %w", err)
	}
	opts = opts.withDefaults()
	d := &OutlierDetector{
		enabled:   cfg.IsEnabled(),
		threshold: int64(cfg.ConsecutiveErrors),
		base:      int64(cfg.BaseEjectionTime),
		maxTime:   int64(cfg.MaxEjectionTime),
		decay:     int64(cfg.EjectionDecay),
		maxPct:    int64(*cfg.MaxEjectionPercent),
		clock:     opts.Clock,
		listener:  opts.Listener,
		log:       opts.Logger.Named("outlier"),
		timers:    map[*outlierTarget]func() bool{},
	}
	d.set.Store(&outlierSet{byID: map[string]*outlierTarget{}})
	return d, nil
}

// Update makes targets the group: targets already known at the same address
// keep their state; new targets and targets whose address changed start
// afresh; removed targets (and the old state of a changed one) lose their
// state and free their ejection slot at once, without a Returned event.
// Duplicate IDs: the last one wins.
func (d *OutlierDetector) Update(targets []Target) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	old := d.set.Load().byID
	next := make(map[string]*outlierTarget, len(targets))
	for _, t := range targets {
		id := t.id()
		if ot, ok := old[id]; ok && ot.address == t.Address {
			next[id] = ot
			continue
		}
		next[id] = &outlierTarget{id: id, address: t.Address}
	}
	d.set.Store(&outlierSet{byID: next, n: int64(len(next))})
	for id, ot := range old {
		if next[id] != ot {
			d.releaseLocked(ot)
		}
	}
}

// releaseLocked ends ot's ejection, if any, because ot left the group.
func (d *OutlierDetector) releaseLocked(ot *outlierTarget) {
	if stop, ok := d.timers[ot]; ok {
		stop()
		delete(d.timers, ot)
	}
	if u := ot.until.Load(); u > 0 && ot.until.CompareAndSwap(u, 0) {
		d.ejected.Add(-1)
	}
	// An ejection being set up (until == ejecting) is released by schedule,
	// which sees that ot is no longer a member.
}

// Report records the outcome of one request to target id. Unknown IDs are
// ignored. It is safe for concurrent use, takes no lock and does not
// allocate, except for the report that ejects the target, which calls the
// Listener (Ejected) on this goroutine.
func (d *OutlierDetector) Report(id string, o Outcome) {
	if !d.enabled {
		return
	}
	s := d.set.Load()
	t := s.byID[id]
	if t == nil {
		return
	}
	if o == Success {
		// Load first: a healthy target's counter stays read-shared.
		if t.consec.Load() != 0 {
			t.consec.Store(0)
		}
		return
	}
	if n := t.consec.Add(1); n >= d.threshold {
		d.tryEject(s, t, o, n)
	}
}

// tryEject is the slow path of Report.
func (d *OutlierDetector) tryEject(s *outlierSet, t *outlierTarget, o Outcome, n int64) {
	if t.until.Load() != 0 {
		return // already ejected (reports from requests in flight)
	}
	// Reserve a slot within max_ejection_percent.
	for {
		e := d.ejected.Load()
		if (e+1)*100 > d.maxPct*s.n {
			if ce := d.log.Check(zap.DebugLevel, "ejection skipped: max_ejection_percent reached"); ce != nil {
				ce.Write(zap.String("target", t.id), zap.Int64("ejected", e), zap.Int64("targets", s.n))
			}
			return
		}
		if d.ejected.CompareAndSwap(e, e+1) {
			break
		}
	}
	if !t.until.CompareAndSwap(0, ejecting) {
		d.ejected.Add(-1) // another reporter won
		return
	}
	now := d.clock.Now()
	nowNs := now.UnixNano()
	level := d.decayed(t, nowNs) + 1
	dur := d.maxTime
	if level <= d.maxTime/d.base {
		dur = min(d.base*level, d.maxTime)
	}
	until := nowNs + dur
	t.level.Store(level)
	t.total.Add(1)
	t.consec.Store(0)
	t.until.Store(until)

	reason := strconv.FormatInt(n, 10) + " consecutive errors, last: " + o.String()
	d.log.Warn("target ejected", zap.String("target", t.id), zap.Duration("for", time.Duration(dur)),
		zap.Int64("level", level), zap.String("reason", reason))
	d.notify(Change{ID: t.id, Kind: Ejected, At: now, Until: time.Unix(0, until), Reason: reason})
	d.schedule(t, until, time.Duration(dur))
}

// decayed is t's ejection multiplier at now after decay: one level less
// for every EjectionDecay since the last ejection ended.
func (d *OutlierDetector) decayed(t *outlierTarget, now int64) int64 {
	level := t.level.Load()
	if end := t.lastEnd.Load(); end > 0 && now > end {
		level -= (now - end) / d.decay
	}
	return max(level, 0)
}

// schedule arms the expiry timer of an ejection that ends at until.
func (d *OutlierDetector) schedule(t *outlierTarget, until int64, dur time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if d.set.Load().byID[t.id] != t {
		// Removed by Update while being ejected: free the slot now.
		if t.until.CompareAndSwap(until, 0) {
			d.ejected.Add(-1)
		}
		return
	}
	d.timers[t] = d.clock.AfterFunc(dur, func() { d.expire(t, until) })
}

// expire ends the ejection of t that was set to end at until, unless it was
// already ended (target removed) or the detector is closed.
func (d *OutlierDetector) expire(t *outlierTarget, until int64) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	delete(d.timers, t)
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()

	if !t.until.CompareAndSwap(until, 0) {
		return
	}
	now := d.clock.Now()
	t.lastEnd.Store(now.UnixNano())
	t.consec.Store(0)
	d.ejected.Add(-1)
	if d.set.Load().byID[t.id] != t {
		return
	}
	d.log.Info("target returned from ejection", zap.String("target", t.id))
	d.notify(Change{ID: t.id, Kind: Returned, At: now, Reason: "ejection ended"})
}

func (d *OutlierDetector) notify(ch Change) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("health listener panicked", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	d.listener.HealthChanged(ch)
}

// Ejected reports whether target id is ejected at now. Lock-free, no
// allocation; unknown IDs are not ejected.
func (d *OutlierDetector) Ejected(id string, now time.Time) bool {
	t := d.set.Load().byID[id]
	return t != nil && t.until.Load() > now.UnixNano()
}

// EjectedUntil returns the end of target id's current ejection, or the zero
// time when it is not ejected (or unknown).
func (d *OutlierDetector) EjectedUntil(id string) time.Time {
	t := d.set.Load().byID[id]
	if t == nil {
		return time.Time{}
	}
	return unixTime(t.until.Load())
}

// EjectedCount returns how many of the group's targets are ejected now.
func (d *OutlierDetector) EjectedCount() int { return int(d.ejected.Load()) }

// Status returns the passive status of target id.
func (d *OutlierDetector) Status(id string) (PassiveStatus, bool) {
	t := d.set.Load().byID[id]
	if t == nil {
		return PassiveStatus{}, false
	}
	return d.status(t, d.clock.Now().UnixNano()), true
}

func (d *OutlierDetector) status(t *outlierTarget, now int64) PassiveStatus {
	st := PassiveStatus{
		ConsecutiveErrors: t.consec.Load(),
		EjectedUntil:      unixTime(t.until.Load()),
		Ejections:         t.total.Load(),
		EjectionLevel:     t.level.Load(),
	}
	if st.EjectedUntil.IsZero() {
		st.EjectionLevel = d.decayed(t, now)
	}
	return st
}

// Snapshot returns every target's passive status, sorted by ID; the active
// part of each Status is zero.
func (d *OutlierDetector) Snapshot() []Status {
	byID := d.set.Load().byID
	now := d.clock.Now().UnixNano()
	ids := slices.Sorted(maps.Keys(byID))
	out := make([]Status, len(ids))
	for i, id := range ids {
		t := byID[id]
		out[i] = Status{ID: id, Address: t.address, PassiveStatus: d.status(t, now)}
	}
	return out
}

// Close stops every pending expiry timer and waits for expiry callbacks in
// progress; afterwards no Returned event is sent, and Reports that start
// after Close ignore every target. Close is idempotent.
func (d *OutlierDetector) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for t, stop := range d.timers {
			stop()
			delete(d.timers, t)
		}
		d.set.Store(&outlierSet{byID: map[string]*outlierTarget{}})
		d.ejected.Store(0)
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func unixTime(ns int64) time.Time {
	if ns <= 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
