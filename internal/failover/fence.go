package failover

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiergate/tiergate/internal/cluster"
)

// Target is where a shard's writes go now.
type Target struct {
	Shard string
	Node  string // node name
	Addr  string // host:port
	// Term is the decided term the target was verified for. Tag every
	// pooled server connection with the Term it was opened (or checked
	// out) under, and never use one whose Term differs from the Target's
	// for a write.
	Term uint64
}

// Topology is a shard's decided layout, for routing reads and for status.
// Its slices are shared: do not modify them.
type Topology struct {
	Shard   string
	Term    uint64
	Primary NodeConfig
	// Changing is true while a change of primary is in progress (writes
	// are fenced; Primary is still the previous primary).
	Changing bool
	// Replicas may serve reads: every node but the primary and the stale.
	Replicas []NodeConfig
	// Stale nodes must get no traffic at all until rejoined.
	Stale []NodeConfig
}

// route is one shard's immutable fence state; the whole map is replaced
// when the decided state or a verification changes.
type route struct {
	target  Target
	topo    Topology
	closed  *FencedError // non-nil: writes refused whatever the lease
	noLease *FencedError
	fenced  prometheus.Counter
}

// CheckWrite is the write fence. pgproxy calls it before forwarding every
// unit of work that goes to the primary (and before handing out a primary
// connection in transaction pooling) and routes the write to the returned
// Target. It returns a *FencedError (errors.Is ErrFenced, SafeToRetry)
// when this proxy holds no lease from the Raft leader, when a change of
// primary is in progress, or when the decided primary was not verified
// writable with the current term's epoch row. Never queue a fenced write:
// answer the client with a retryable SQLSTATE.
//
// Lock-free and allocation-free: one atomic load of the routes, a map
// lookup, and the lease check (an atomic load and a monotonic clock read).
func (m *Manager) CheckWrite(shard string) (Target, error) {
	r := (*m.routes.Load())[shard]
	if r == nil {
		return Target{}, ErrUnknownShard
	}
	if fe := m.fence(r); fe != nil {
		r.fenced.Inc()
		return Target{}, fe
	}
	return r.target, nil
}

// fence returns why writes through r are refused, or nil.
func (m *Manager) fence(r *route) *FencedError {
	if r.closed != nil {
		return r.closed
	}
	if !m.coord.LeaseValid() {
		return r.noLease
	}
	return nil
}

// Primary returns the decided primary of shard without checking the fence
// (for reads that must see the primary, and for status). ok is false for
// an unknown shard or before anything was decided.
func (m *Manager) Primary(shard string) (Target, bool) {
	r := (*m.routes.Load())[shard]
	if r == nil || r.topo.Term == 0 {
		return Target{}, false
	}
	return Target{Shard: shard, Node: r.topo.Primary.Name, Addr: r.topo.Primary.Address, Term: r.topo.Term}, true
}

// Topology returns shard's decided layout. ok is false for an unknown shard
// or before anything was decided. Lock-free.
func (m *Manager) Topology(shard string) (Topology, bool) {
	r := (*m.routes.Load())[shard]
	if r == nil || r.topo.Term == 0 {
		return Topology{}, false
	}
	return r.topo, true
}

// verification is this proxy's latest check of a shard's decided primary.
type verification struct {
	term   uint64
	node   string
	ok     bool
	detail string
}

// rebuildRoutes publishes a new route map from the decided state and the
// verifications. Called by the state watcher and the prober.
func (m *Manager) rebuildRoutes() {
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	st := m.coord.State()
	var old map[string]*route
	if p := m.routes.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*route, len(m.shards))
	for _, sc := range m.shards {
		r := m.buildRoute(sc, st)
		next[sc.cfg.Name] = r
		m.trackFence(sc, old[sc.cfg.Name], r, st)
	}
	m.routes.Store(&next)
}

func (m *Manager) buildRoute(sc *shardCtl, all *cluster.State) *route {
	name := sc.cfg.Name
	r := &route{fenced: m.met.fenced.WithLabelValues(name)}
	st, ok := all.Shard(name)
	if !ok {
		r.closed = &FencedError{Shard: name, Reason: ReasonNoState}
		r.noLease = r.closed
		return r
	}
	primary, _ := sc.cfg.node(st.Primary)
	r.topo = Topology{Shard: name, Term: st.Term, Primary: primary, Changing: st.Pending != nil}
	for _, n := range sc.cfg.Nodes {
		switch {
		case slices.Contains(st.Stale, n.Name):
			r.topo.Stale = append(r.topo.Stale, n)
		case n.Name != st.Primary:
			r.topo.Replicas = append(r.topo.Replicas, n)
		}
	}
	r.target = Target{Shard: name, Node: primary.Name, Addr: primary.Address, Term: st.Term}
	r.noLease = &FencedError{Shard: name, Term: st.Term, Reason: ReasonNoLease}
	v := sc.verified.Load()
	switch {
	case st.Pending != nil:
		r.closed = &FencedError{Shard: name, Term: st.Term, Reason: ReasonChanging,
			Detail: st.Pending.Kind + " from " + st.Pending.From}
	case v == nil || v.term != st.Term || v.node != st.Primary || !v.ok:
		d := "not checked yet"
		if v != nil && v.term == st.Term && v.node == st.Primary {
			d = v.detail
		}
		r.closed = &FencedError{Shard: name, Term: st.Term, Reason: ReasonUnverified, Detail: d}
	}
	return r
}
