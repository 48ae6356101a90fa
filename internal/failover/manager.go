package failover

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/cluster"
)

// Coordinator is what the Manager needs from the coordination cluster;
// *cluster.Node implements it. Every method must be safe for concurrent
// use; LeaseValid and State are called on the write path and must not
// block.
type Coordinator interface {
	// Name is this proxy's name.
	Name() string
	// Quorum is a majority of the configured proxies.
	Quorum() int
	// IsLeader reports whether this proxy may decide (the Raft leader).
	IsLeader() bool
	// Leader names the current leader ("" when unknown).
	Leader() string
	// LeaseValid reports whether this proxy may forward writes at all.
	LeaseValid() bool
	// LeaseDuration is the configured lease; a change of primary waits
	// at least this long after fencing before promoting.
	LeaseDuration() time.Duration
	// State is the applied decided state, never nil.
	State() *cluster.State
	// Watch signals applied changes of the decided state.
	Watch() (<-chan struct{}, func())
	// Propose commits a shard's next state (leader only, compare-and-set
	// on Version).
	Propose(ctx context.Context, expect uint64, s cluster.ShardState) error
	// Publish shares this proxy's observations with the others.
	Publish(*cluster.Observations)
	// PeerObservations are the other proxies' latest observations.
	PeerObservations() map[string]cluster.PeerObservations
}

var _ Coordinator = (*cluster.Node)(nil)

// Change tells the proxy that a shard's decided state changed. Writes are
// already fenced accordingly when the callback runs.
type Change struct {
	Shard       string
	Term        uint64
	Primary     NodeConfig
	PrevTerm    uint64
	PrevPrimary NodeConfig
	// Changing is true while a change of primary is in progress.
	Changing bool
	// Demoted are nodes that must lose every pooled server connection now:
	// the previous primary when the primary changed, and nodes that became
	// stale.
	Demoted []NodeConfig
}

// Options are a Manager's collaborators; the zero value works.
type Options struct {
	// Logger receives the manager's logs. Default: none.
	Logger *zap.Logger
	// Registerer exports the failover metrics. Default: none.
	Registerer prometheus.Registerer
	// OnChange is called, in order and from one goroutine, after each
	// change of a shard's decided state (term, primary, change in progress,
	// stale nodes). It should close pooled connections to Change.Demoted
	// and must not block for long.
	OnChange func(Change)
	// Rewinder turns a stale node back into a replica for Rejoin. Default:
	// a CommandRewinder running rejoin_command, if configured.
	Rewinder Rewinder
}

// Manager watches every node of every shard, shares what it sees with the
// other proxies, fences writes, and — on the Raft leader — detects a dead
// primary, promotes a replica, repoints the others and runs the operator's
// commands. See the package documentation for the protocol.
type Manager struct {
	cfg      Config
	coord    Coordinator
	log      *zap.Logger
	onChange func(Change)
	rewinder Rewinder
	pg       pgConfigs
	met      *metrics
	shards   []*shardCtl
	byName   map[string]*shardCtl

	routes  atomic.Pointer[map[string]*route]
	routeMu sync.Mutex

	view atomic.Pointer[view]
	kick chan struct{}
}

// shardCtl is one shard's control state.
type shardCtl struct {
	cfg      ShardConfig
	verified atomic.Pointer[verification]
	note     atomic.Pointer[string]       // the leader's latest remark (veto, waiting, ...)
	last     atomic.Pointer[ChangeRecord] // last change this proxy completed as leader
	votes    atomic.Pointer[[]string]     // proxies that see the primary down (leader's view)
	local    localTrail                   // this proxy's own events of the last change
	// changed is when this proxy applied the last change of the shard's
	// term or primary (unix ns); probe rounds started earlier cannot judge
	// the new primary.
	changed atomic.Int64

	mu          sync.Mutex // serializes leader actions on the shard
	pendingSeen map[uint64]time.Time
	repointed   map[string]time.Time
	softFenced  map[string]uint64
	lastNote    string
	// draft holds the leader's steps not yet carried by a proposal, by
	// the term of the change they belong to.
	draft map[uint64][]cluster.Event
	// streamNoted are the repointed replicas already recorded streaming
	// from the primary decided last.
	streamNoted map[string]bool
}

// ChangeRecord describes a completed change of primary.
type ChangeRecord struct {
	Term     uint64
	Kind     string
	From, To string
	Started  time.Time
	Decided  time.Time
}

// view is this proxy's latest probe round.
type view struct {
	at    time.Time
	nodes map[string]nodeView // key: shard + "\x00" + node
}

type nodeView struct {
	obs       cluster.NodeObservation
	downSince time.Time // zero while up
	downErr   string    // the first failed probe's error while down
	lastSync  string    // last synchronous_standby_names seen while writable
}

func viewKey(shard, node string) string { return shard + "\x00" + node }

func (v *view) get(shard, node string) (nodeView, bool) {
	if v == nil {
		return nodeView{}, false
	}
	nv, ok := v.nodes[viewKey(shard, node)]
	return nv, ok
}

// New checks cfg (which must have had SetDefaults called) and returns a
// Manager; call Run to start it.
func New(cfg Config, coord Coordinator, opts Options) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	pg, err := newPGConfigs(&cfg)
	if err != nil {
		return nil, err
	}
	z := opts.Logger
	if z == nil {
		z = zap.NewNop()
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, coord: coord, log: z.With(zap.String("proxy", coord.Name())),
		onChange: opts.OnChange, rewinder: opts.Rewinder, pg: pg, met: met,
		byName: map[string]*shardCtl{}, kick: make(chan struct{}, 1),
	}
	if m.rewinder == nil && len(cfg.RejoinCommand) > 0 {
		m.rewinder = &CommandRewinder{Command: cfg.RejoinCommand}
	}
	for _, s := range cfg.Shards {
		sc := &shardCtl{cfg: s, pendingSeen: map[uint64]time.Time{}, repointed: map[string]time.Time{}, softFenced: map[string]uint64{},
			draft: map[uint64][]cluster.Event{}, streamNoted: map[string]bool{}}
		m.shards = append(m.shards, sc)
		m.byName[s.Name] = sc
	}
	m.rebuildRoutes()
	return m, nil
}

// Run probes the nodes, keeps the fence up to date, and leads failovers
// while this proxy is the Raft leader, until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){m.probeLoop, m.watchLoop, m.leadLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.guard(ctx, loop)
		}()
	}
	wg.Wait()
	return nil
}

// guard runs loop until ctx ends, restarting it (after a second) when it
// panics.
func (m *Manager) guard(ctx context.Context, loop func(context.Context)) {
	for ctx.Err() == nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					m.log.Error("failover loop panicked; restarting", zap.Any("panic", r), zap.Stack("stack"))
				}
			}()
			loop(ctx)
		}()
		_ = sleepUntil(ctx, time.Now().Add(time.Second))
	}
}

// kickProbe asks the prober for a round now.
func (m *Manager) kickProbe() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// probeLoop probes every node each CheckInterval (or when kicked),
// publishes the observations and updates the verifications.
func (m *Manager) probeLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	prev := map[string]nodeView{}
	for {
		prev = m.probeRound(ctx, prev)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
	}
}

func (m *Manager) probeRound(ctx context.Context, prev map[string]nodeView) map[string]nodeView {
	started := time.Now()
	type res struct {
		key   string
		obs   cluster.NodeObservation
		start time.Time
	}
	var all []res
	st := m.coord.State()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sc := range m.shards {
		for _, n := range sc.cfg.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				o := m.probe(ctx, sc.cfg.Name, n)
				mu.Lock()
				all = append(all, res{viewKey(sc.cfg.Name, n.Name), o, start})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return prev
	}
	now := time.Now()
	next := make(map[string]nodeView, len(all))
	obs := &cluster.Observations{}
	for _, r := range all {
		old := prev[r.key]
		nv := nodeView{obs: r.obs, lastSync: old.lastSync}
		o := &nv.obs
		if o.Up {
			if !o.InRecovery {
				nv.lastSync = o.SyncStandbys
			}
		} else {
			nv.downSince, nv.downErr = old.downSince, old.downErr
			if nv.downSince.IsZero() {
				nv.downSince, nv.downErr = r.start, o.Err
			}
			o.DownFor = now.Sub(nv.downSince)
		}
		if sc := m.byName[o.Shard]; sc != nil {
			if s, ok := st.Shard(o.Shard); ok {
				m.trackProbe(sc, s, o.Node, old, nv, r.start)
			}
		}
		// The last position seen while writable survives the node going down.
		o.LastWritableLSN = old.obs.LastWritableLSN
		if o.Up && !o.InRecovery {
			o.LastWritableLSN = max(o.LastWritableLSN, o.CurrentLSN)
		}
		next[r.key] = nv
		obs.Nodes = append(obs.Nodes, *o)
	}
	m.coord.Publish(obs)
	m.view.Store(&view{at: now, nodes: next})
	m.updateVerifications(started)
	m.met.observe(m, next)
	return next
}

// updateVerifications checks each shard's decided primary against this
// proxy's latest probe: writable, with the current term's epoch row. An
// unreachable primary keeps its earlier verification (writes then fail
// with connection errors, which pgproxy reports itself). A round that
// started before the last change of the shard only counts if it verifies.
func (m *Manager) updateVerifications(started time.Time) {
	st := m.coord.State()
	v := m.view.Load()
	changed := false
	for _, sc := range m.shards {
		s, ok := st.Shard(sc.cfg.Name)
		if !ok || s.Pending != nil {
			continue
		}
		nv, ok := v.get(sc.cfg.Name, s.Primary)
		if !ok {
			continue
		}
		old := sc.verified.Load()
		var next *verification
		switch o := nv.obs; {
		case !o.Up:
			if old != nil && old.term == s.Term && old.node == s.Primary {
				continue
			}
			next = &verification{term: s.Term, node: s.Primary, detail: "primary unreachable: " + o.Err}
		case o.InRecovery:
			next = &verification{term: s.Term, node: s.Primary, detail: "primary is in recovery"}
		case o.Epoch != s.Term:
			next = &verification{term: s.Term, node: s.Primary, detail: fmt.Sprintf("epoch row on the primary is term %d", o.Epoch)}
		default:
			next = &verification{term: s.Term, node: s.Primary, ok: true}
		}
		if !next.ok && started.UnixNano() < sc.changed.Load() {
			continue // the probe predates the change; the next round decides
		}
		if old == nil || *old != *next {
			sc.verified.Store(next)
			changed = true
			if next.ok {
				m.log.Info("primary verified", zap.String("shard", sc.cfg.Name), zap.String("primary", s.Primary), zap.Uint64("term", s.Term))
			} else {
				m.log.Warn("primary not verified; writes fenced", zap.String("shard", sc.cfg.Name), zap.String("primary", s.Primary),
					zap.Uint64("term", s.Term), zap.String("detail", next.detail))
			}
		}
	}
	if changed {
		m.rebuildRoutes()
	}
}

// watchLoop rebuilds the fence on every applied change of the decided
// state, asks for a probe round (to verify a new primary at once) and
// calls OnChange.
func (m *Manager) watchLoop(ctx context.Context) {
	ch, stop := m.coord.Watch()
	defer stop()
	last := map[string]cluster.ShardState{}
	for {
		st := m.coord.State()
		appliedAt := time.Now()
		m.rebuildRoutes()
		for _, sc := range m.shards {
			cur, ok := st.Shard(sc.cfg.Name)
			if !ok {
				continue
			}
			prev, had := last[sc.cfg.Name]
			if had && prev.Version == cur.Version {
				continue
			}
			last[sc.cfg.Name] = cur
			m.trackApplied(sc, prev, cur, had, appliedAt)
			m.met.term.WithLabelValues(sc.cfg.Name).Set(float64(cur.Term))
			m.met.blocked.WithLabelValues(sc.cfg.Name).Set(b2f(cur.Blocked != ""))
			if had && prev.Term == cur.Term && prev.Primary == cur.Primary && (prev.Pending == nil) == (cur.Pending == nil) && slices.Equal(prev.Stale, cur.Stale) {
				continue
			}
			if !had || prev.Term != cur.Term || prev.Primary != cur.Primary {
				sc.changed.Store(time.Now().UnixNano())
			}
			m.kickProbe()
			m.logChange(sc, prev, cur, had)
			m.notify(sc, prev, cur)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

func (m *Manager) logChange(sc *shardCtl, prev, cur cluster.ShardState, had bool) {
	f := []zap.Field{zap.String("shard", sc.cfg.Name), zap.Uint64("term", cur.Term), zap.String("primary", cur.Primary), zap.Strings("stale", cur.Stale)}
	switch {
	case cur.Pending != nil:
		m.log.Warn("primary change in progress; writes fenced", append(f, zap.String("kind", cur.Pending.Kind), zap.String("from", cur.Pending.From), zap.String("candidate", cur.Pending.Candidate))...)
	case had && prev.Primary != cur.Primary:
		m.log.Warn("new primary decided", append(f, zap.String("previous", prev.Primary), zap.Uint64("previous_term", prev.Term), zap.String("reason", cur.Reason))...)
	default:
		m.log.Info("shard state", append(f, zap.String("reason", cur.Reason))...)
	}
}

// notify calls OnChange for a change of sc's decided state.
func (m *Manager) notify(sc *shardCtl, prev, cur cluster.ShardState) {
	if m.onChange == nil {
		return
	}
	c := Change{Shard: sc.cfg.Name, Term: cur.Term, PrevTerm: prev.Term, Changing: cur.Pending != nil}
	c.Primary, _ = sc.cfg.node(cur.Primary)
	c.PrevPrimary, _ = sc.cfg.node(prev.Primary)
	if prev.Primary != "" && prev.Primary != cur.Primary {
		c.Demoted = append(c.Demoted, c.PrevPrimary)
	}
	for _, s := range cur.Stale {
		if !slices.Contains(prev.Stale, s) && s != prev.Primary {
			if n, ok := sc.cfg.node(s); ok {
				c.Demoted = append(c.Demoted, n)
			}
		}
	}
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("OnChange panicked", zap.Any("panic", r))
		}
	}()
	m.onChange(c)
}

// leadLoop runs each shard's reconciliation every CheckInterval while this
// proxy is the Raft leader.
func (m *Manager) leadLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !m.coord.IsLeader() {
			continue
		}
		for _, sc := range m.shards {
			if !sc.mu.TryLock() {
				continue // still busy with the previous round or an admin command
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer sc.mu.Unlock()
				defer func() {
					if r := recover(); r != nil {
						m.log.Error("reconcile panicked", zap.String("shard", sc.cfg.Name), zap.Any("panic", r), zap.Stack("stack"))
					}
				}()
				if err := m.reconcile(ctx, sc); err != nil && ctx.Err() == nil {
					m.log.Warn("reconcile", zap.String("shard", sc.cfg.Name), zap.Error(err))
				}
			}()
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
