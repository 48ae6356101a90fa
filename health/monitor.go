package health

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"time"
)

// Monitor is the health of one group of targets (an upstream, a replica
// set): active checks, when configured, and outlier detection, with one
// Status per target. It is a thin composition of Manager and
// OutlierDetector; use those directly for other mixes.
type Monitor struct {
	active  *Manager // nil: no active checks
	passive *OutlierDetector
	clock   Clock
	targets atomic.Pointer[map[string]Target]
}

// NewMonitor builds the Monitor for cfg (zero fields take their defaults)
// with HTTP probes. For another protocol, pass its ProbeFactory to
// NewMonitorWithProbes.
func NewMonitor(cfg Config, opts Options) (*Monitor, error) {
	var probes ProbeFactory
	var check CheckConfig
	if cfg.Active != nil {
		var err error
		if probes, err = HTTPProbes(*cfg.Active); err != nil {
			return nil, err
		}
		check = cfg.Active.CheckConfig
	}
	return NewMonitorWithProbes(check, probes, cfg.Passive, opts)
}

// NewMonitorWithProbes builds a Monitor whose active checks use probes on
// the schedule of check; a nil probes means no active checks (check is then
// ignored).
func NewMonitorWithProbes(check CheckConfig, probes ProbeFactory, passive PassiveConfig, opts Options) (*Monitor, error) {
	opts = opts.withDefaults()
	m := &Monitor{clock: opts.Clock}
	if probes != nil {
		var err error
		if m.active, err = NewManager(check, probes, opts); err != nil {
			return nil, err
		}
	}
	var err error
	if m.passive, err = NewOutlierDetector(passive, opts); err != nil {
		return nil, err
	}
	m.targets.Store(&map[string]Target{})
	return m, nil
}

// Update sets the group's targets (see Manager.Update and
// OutlierDetector.Update). On error nothing changes.
func (m *Monitor) Update(targets []Target) error {
	if m.active != nil {
		if err := m.active.Update(targets); err != nil {
			return err
		}
	}
	m.passive.Update(targets)
	byID := make(map[string]Target, len(targets))
	for _, t := range targets {
		byID[t.id()] = t
	}
	m.targets.Store(&byID)
	return nil
}

// Run runs the active checks until ctx is done, then closes the outlier
// detector, and returns ctx.Err() once every goroutine has stopped.
func (m *Monitor) Run(ctx context.Context) error {
	defer m.passive.Close()
	if m.active != nil {
		return m.active.Run(ctx)
	}
	<-ctx.Done()
	return ctx.Err()
}

// Report records the outcome of one request (OutlierDetector.Report).
func (m *Monitor) Report(id string, o Outcome) { m.passive.Report(id, o) }

// Passive returns the outlier detector, e.g. to hand its Report to a
// hot path without the Monitor.
func (m *Monitor) Passive() *OutlierDetector { return m.passive }

// Active returns the active-check manager, or nil when there are no active
// checks.
func (m *Monitor) Active() *Manager { return m.active }

// Usable reports whether target id should take traffic at now: healthy by
// active checks (always, without them) and not ejected. Unknown IDs are not
// usable.
func (m *Monitor) Usable(id string, now time.Time) bool {
	if _, ok := (*m.targets.Load())[id]; !ok {
		return false
	}
	if m.active != nil && !m.active.Healthy(id) {
		return false
	}
	return !m.passive.Ejected(id, now)
}

// Status returns everything known about target id.
func (m *Monitor) Status(id string) (Status, bool) {
	t, ok := (*m.targets.Load())[id]
	if !ok {
		return Status{}, false
	}
	st := Status{ID: id, Address: t.Address, ActiveStatus: ActiveStatus{Healthy: true}}
	if m.active != nil {
		if a, ok := m.active.Status(id); ok {
			st.ActiveStatus = a
		}
	}
	if p, ok := m.passive.Status(id); ok {
		st.PassiveStatus = p
	}
	return st, true
}

// Snapshot returns every target's Status, sorted by ID.
func (m *Monitor) Snapshot() []Status {
	byID := *m.targets.Load()
	ids := slices.Sorted(maps.Keys(byID))
	out := make([]Status, 0, len(ids))
	for _, id := range ids {
		if st, ok := m.Status(id); ok {
			out = append(out, st)
		}
	}
	return out
}
