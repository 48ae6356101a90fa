package failover

import (
	"slices"
	"sort"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
)

// Status is this proxy's view of the failover state, for the admin console
// (SHOW NODES) and the admin HTTP API.
type Status struct {
	Proxy    string
	Leader   string
	IsLeader bool
	Lease    bool // this proxy holds a write lease
	Shards   []ShardStatus
}

// ShardStatus is one shard.
type ShardStatus struct {
	Shard    string
	Term     uint64
	Primary  string
	Timeline int
	// Pending is the change in progress, if any.
	Pending *cluster.Pending
	Stale   []string
	// Blocked says why automatic failover is refused; an operator must
	// act (FAILOVER TO, or bring a replica back). Shown on every proxy.
	Blocked string
	// Note is the leader's latest remark (a veto, a bootstrap wait); only
	// on the leader.
	Note string
	// WritesOpen is whether CheckWrite lets writes through on this proxy;
	// FenceReason says why not.
	WritesOpen  bool
	FenceReason string
	// DownVotes are the proxies that see the primary unreachable for
	// failover_after (leader only).
	DownVotes []string
	// LastChange is the last change of primary this proxy led.
	LastChange *ChangeRecord
	// LastFailover is the last change of primary (or the last refused
	// automatic failover) with its timeline: the leader's committed steps
	// and this proxy's own events. Shown on every proxy; nil before the
	// first change.
	LastFailover *FailoverTimeline
	Reason       string // the decided state's note on its last change
	Nodes        []NodeStatus
}

// NodeStatus is one node as this proxy last probed it.
type NodeStatus struct {
	Name    string
	Address string
	// Role is primary, replica, stale or unknown (the decided role; a
	// replica that is not streaming from the primary says so in Streaming).
	Role       string
	Up         bool
	InRecovery bool
	Timeline   int
	// LSN is the current position of a writable node, the received (or
	// replayed) position of a replica.
	LSN        uint64
	LagBytes   uint64 // behind the primary's current position
	Streaming  bool   // a replica streaming from the decided primary
	Sender     string
	NoFailover bool
	DownFor    time.Duration
	Err        string
}

// Status returns the current status. It takes no lock on the write path.
func (m *Manager) Status() Status {
	out := Status{Proxy: m.coord.Name(), Leader: m.coord.Leader(), IsLeader: m.coord.IsLeader(), Lease: m.coord.LeaseValid()}
	st := m.coord.State()
	v := m.view.Load()
	now := time.Now()
	for _, sc := range m.shards {
		s, _ := st.Shard(sc.cfg.Name)
		ss := ShardStatus{Shard: sc.cfg.Name, Term: s.Term, Primary: s.Primary, Timeline: s.Timeline, Pending: s.Pending,
			Stale: s.Stale, Blocked: s.Blocked, Reason: s.Reason, LastChange: sc.last.Load()}
		if lc := s.LastChange; lc != nil {
			ss.LastFailover = buildTimeline(sc.cfg.Name, lc, sc.local.eventsFor(keyOf(lc)), now)
		}
		if n := sc.note.Load(); n != nil && out.IsLeader {
			ss.Note = *n
		}
		if vs := sc.votes.Load(); vs != nil && out.IsLeader {
			ss.DownVotes = *vs
		}
		if fe := m.fence((*m.routes.Load())[sc.cfg.Name]); fe == nil {
			ss.WritesOpen = true
		} else {
			ss.FenceReason = fe.Error()
		}
		var primaryLSN uint64
		if nv, ok := v.get(sc.cfg.Name, s.Primary); ok && nv.obs.Up && !nv.obs.InRecovery {
			primaryLSN = nv.obs.CurrentLSN
		}
		for _, n := range sc.cfg.Nodes {
			ns := NodeStatus{Name: n.Name, Address: n.Address, Role: "unknown", NoFailover: slices.Contains(m.cfg.NoFailover, n.Name)}
			switch {
			case s.Term == 0:
			case n.Name == s.Primary:
				ns.Role = "primary"
			case s.IsStale(n.Name):
				ns.Role = "stale"
			default:
				ns.Role = "replica"
			}
			if nv, ok := v.get(sc.cfg.Name, n.Name); ok {
				o := nv.obs
				ns.Up, ns.InRecovery, ns.Timeline, ns.Sender, ns.Err, ns.DownFor = o.Up, o.InRecovery, o.Timeline, o.Sender, o.Err, o.DownFor
				if o.InRecovery {
					ns.LSN = max(o.ReceiveLSN, o.ReplayLSN)
					if primary, ok := sc.cfg.node(s.Primary); ok {
						ns.Streaming = o.Receiver == "streaming" && o.Sender == primary.Address
					}
					if primaryLSN > ns.LSN {
						ns.LagBytes = primaryLSN - ns.LSN
					}
				} else {
					ns.LSN = o.CurrentLSN
				}
			}
			ss.Nodes = append(ss.Nodes, ns)
		}
		out.Shards = append(out.Shards, ss)
	}
	sort.Slice(out.Shards, func(i, j int) bool { return out.Shards[i].Shard < out.Shards[j].Shard })
	return out
}
