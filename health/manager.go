package health

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// ErrAlreadyRun is returned by a second call to Manager.Run.
var ErrAlreadyRun = errors.New("health: manager already ran")

// Manager owns the active checkers of a set of targets: one goroutine per
// target, started by Run and reconciled by Update.
//
// Status, Healthy and Snapshot are lock-free and safe to call from any
// goroutine. Update and Run may be called from any goroutine, but not from a
// Listener.
type Manager struct {
	cfg    CheckConfig
	probes ProbeFactory
	opts   Options
	log    *zap.Logger

	// view is the current target set for lock-free reads; replaced (never
	// mutated) under mu.
	view atomic.Pointer[map[string]*checker]

	mu       sync.Mutex
	checkers map[string]*checker
	ctx      context.Context // of Run while it runs; nil before and after
	ran      bool
	wg       sync.WaitGroup // checker goroutines
	running  atomic.Int64   // checker goroutines alive, for tests and metrics
}

// NewManager returns a Manager that checks targets with the probes made by
// probes, on the schedule and thresholds of cfg (zero fields take their
// defaults). Call Update to set the targets and Run to start checking.
func NewManager(cfg CheckConfig, probes ProbeFactory, opts Options) (*Manager, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	if probes == nil {
		return nil, errors.New("health: NewManager: nil ProbeFactory")
	}
	opts = opts.withDefaults()
	m := &Manager{
		cfg:      cfg,
		probes:   probes,
		opts:     opts,
		log:      opts.Logger.Named("active"),
		checkers: map[string]*checker{},
	}
	m.opts.Logger = m.log
	m.view.Store(&map[string]*checker{})
	return m, nil
}

// NewHTTPManager is NewManager with HTTP probes built from cfg.
func NewHTTPManager(cfg ActiveConfig, opts Options) (*Manager, error) {
	probes, err := HTTPProbes(cfg)
	if err != nil {
		return nil, err
	}
	return NewManager(cfg.CheckConfig, probes, opts)
}

// Run checks every target until ctx is done, then stops every checker,
// waits for their goroutines (a probe in flight finishes within the check
// timeout) and returns ctx.Err(). It may be called once; targets set by
// Update before Run start when it does.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.ran {
		m.mu.Unlock()
		return ErrAlreadyRun
	}
	m.ran = true
	m.ctx = ctx
	for _, c := range m.checkers {
		m.startLocked(c)
	}
	m.mu.Unlock()

	<-ctx.Done()

	m.mu.Lock()
	m.ctx = nil
	for _, c := range m.checkers {
		c.stop()
	}
	m.mu.Unlock()
	m.wg.Wait()
	return ctx.Err()
}

func (m *Manager) startLocked(c *checker) {
	m.wg.Add(1)
	m.running.Add(1)
	c.start(m.ctx, func() {
		m.running.Add(-1)
		m.wg.Done()
	})
}

// Update makes targets the checked set: targets already checked at the same
// address keep their state and goroutine; new targets and targets whose
// address changed start afresh from the initial state; removed targets are
// stopped (no listener call for them starts after Update returns). IDs
// (Target.ID, or Address when empty) must be unique. On error nothing
// changes.
func (m *Manager) Update(targets []Target) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	next := make(map[string]*checker, len(targets))
	var fresh []*checker
	for i, t := range targets {
		id := t.id()
		if id == "" {
			return fmt.Errorf("health: target %d has no ID and no address", i)
		}
		if _, dup := next[id]; dup {
			return fmt.Errorf("health: duplicate target ID %q", id)
		}
		if old, ok := m.checkers[id]; ok && old.target.Address == t.Address {
			next[id] = old
			continue
		}
		probe, err := m.probes(t)
		if err != nil {
			return fmt.Errorf("health: target %q: %w", id, err)
		}
		c := newChecker(t, probe, &m.cfg, &m.opts)
		next[id] = c
		fresh = append(fresh, c)
	}

	for id, old := range m.checkers {
		if next[id] != old {
			old.stop()
		}
	}
	m.checkers = next
	if m.ctx != nil {
		for _, c := range fresh {
			m.startLocked(c)
		}
	}
	view := maps.Clone(next)
	m.view.Store(&view)
	return nil
}

// Status returns the active status of target id.
func (m *Manager) Status(id string) (ActiveStatus, bool) {
	c := (*m.view.Load())[id]
	if c == nil {
		return ActiveStatus{}, false
	}
	return *c.state.Load(), true
}

// Healthy reports the current verdict for id (false when unknown).
func (m *Manager) Healthy(id string) bool {
	c := (*m.view.Load())[id]
	return c != nil && c.state.Load().Healthy
}

// Snapshot returns every target's status, sorted by ID.
func (m *Manager) Snapshot() []Status {
	view := *m.view.Load()
	ids := slices.Sorted(maps.Keys(view))
	out := make([]Status, len(ids))
	for i, id := range ids {
		c := view[id]
		out[i] = Status{ID: id, Address: c.target.Address, ActiveStatus: *c.state.Load()}
	}
	return out
}
