package failover

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/cluster"
)

// The timeline of a shard's last change of primary. The leader writes down
// each step it performs (detection, fence, freeze, choice, promotion,
// epoch, decision, repointing) and carries them in the shard's committed
// state (cluster.ChangeLog), so every proxy sees them once committed. Each
// proxy also keeps the events it saw itself (its probe of the primary
// failing, the states it applied, its fence closing and reopening); Status
// merges both into one FailoverTimeline per shard.

// postCommitWindow is how long after a decision the leader still records
// repointed and streaming replicas in the committed log (each batch is
// one extra Raft entry).
const postCommitWindow = 2 * time.Minute

// maxPre bounds the events a proxy keeps while no change is known.
const maxPre = 8

// FailoverTimeline is a shard's last change of primary (or the last
// automatic failover the leader refused) as this proxy knows it: the
// leader's committed steps merged with this proxy's own events, sorted by
// time.
type FailoverTimeline struct {
	Shard string
	Term  uint64 // the term the change decides (or would have)
	Kind  string // failover, forced or switchover
	From  string
	To    string // the decided primary ("" until decided)
	// Outcome is the leader's short result ("failover: promoted db-b (lag
	// 0 bytes)", "automatic failover refused: ...", "abandoned: ...").
	Outcome    string
	Refused    bool // automatic failover was refused (see Outcome)
	InProgress bool // under way: not decided, not refused
	// Started is the first event; Finished is when the leader committed
	// the outcome (zero while under way or refused).
	Started  time.Time
	Finished time.Time
	// Duration is Finished-Started (until now while not finished); Took is
	// the same, formatted ("4.21s").
	Duration time.Duration
	Took     string
	// Omitted counts leader events dropped to keep the committed state
	// small (cluster.MaxEvents).
	Omitted int
	Events  []TimelineEvent
}

// TimelineEvent is one step of a FailoverTimeline.
type TimelineEvent struct {
	At     time.Time
	Offset string // since the timeline's Started: "+1.23s"
	Proxy  string // who performed or saw it
	What   string
	// Local is true for this proxy's own events (not in the committed
	// state, so other proxies do not show them).
	Local bool
}

// LastFailovers returns the shards' timelines that exist, in shard order
// (for a status document listing them apart from the shards).
func (s Status) LastFailovers() []*FailoverTimeline {
	var out []*FailoverTimeline
	for _, sh := range s.Shards {
		if sh.LastFailover != nil {
			out = append(out, sh.LastFailover)
		}
	}
	return out
}

// buildTimeline merges the committed log with this proxy's events for the
// same change. nil when nothing was committed yet.
func buildTimeline(shard string, lc *cluster.ChangeLog, local []cluster.Event, now time.Time) *FailoverTimeline {
	if lc == nil {
		return nil
	}
	tl := &FailoverTimeline{Shard: shard, Term: lc.Term, Kind: lc.Kind, From: lc.From, To: lc.To, Outcome: lc.Outcome,
		Refused: lc.Refused, InProgress: lc.Finished.IsZero() && !lc.Refused, Started: lc.Started, Finished: lc.Finished, Omitted: lc.Omitted}
	tl.Events = make([]TimelineEvent, 0, len(lc.Events)+len(local))
	for _, e := range lc.Events {
		tl.Events = append(tl.Events, TimelineEvent{At: e.At, Proxy: e.Proxy, What: e.What})
	}
	for _, e := range local {
		if !hasEvent(lc.Events, e) {
			tl.Events = append(tl.Events, TimelineEvent{At: e.At, Proxy: e.Proxy, What: e.What, Local: true})
		}
	}
	sort.SliceStable(tl.Events, func(i, j int) bool { return tl.Events[i].At.Before(tl.Events[j].At) })
	if len(tl.Events) > 0 && (tl.Started.IsZero() || tl.Events[0].At.Before(tl.Started)) {
		tl.Started = tl.Events[0].At
	}
	for i := range tl.Events {
		tl.Events[i].Offset = "+" + formatSpan(tl.Events[i].At.Sub(tl.Started))
	}
	end := tl.Finished
	if end.IsZero() {
		end = now
	}
	tl.Duration = max(end.Sub(tl.Started), 0)
	tl.Took = formatSpan(tl.Duration)
	return tl
}

// hasEvent reports whether evs holds e (the same step recorded both in the
// committed log and locally, e.g. the leader's own detection).
func hasEvent(evs []cluster.Event, e cluster.Event) bool {
	for _, c := range evs {
		if c.At.Equal(e.At) && c.Proxy == e.Proxy && c.What == e.What {
			return true
		}
	}
	return false
}

// formatSpan prints a non-negative span for people: "0.35s", "4.21s",
// "2m03.5s".
func formatSpan(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	m := int(d / time.Minute)
	return fmt.Sprintf("%dm%04.1fs", m, (d - time.Duration(m)*time.Minute).Seconds())
}

// shortErr keeps the informative tail of a driver error ("connect:
// connection refused") for an event.
func shortErr(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ": ")
	if len(parts) > 2 {
		s = strings.Join(parts[len(parts)-2:], ": ")
	}
	return shorten(s, 100)
}

// changeKey identifies a change: its term and when the leader started it.
type changeKey struct {
	term    uint64
	started time.Time
}

func keyOf(c *cluster.ChangeLog) changeKey {
	return changeKey{term: c.Term, started: c.Started}
}

func (k changeKey) equal(o changeKey) bool { return k.term == o.term && k.started.Equal(o.started) }

// localTrail is what this proxy saw of a shard's last change. It is not on
// the write path; a mutex guards it.
type localTrail struct {
	mu      sync.Mutex
	key     changeKey // the change events belong to (zero: none)
	open    bool      // new events still belong to that change
	events  []cluster.Event
	omitted int
	// pre holds the events since the shard was last healthy here, before
	// any change was known (the primary's probe failing, the fence
	// closing); the next change takes them.
	pre []cluster.Event
}

// record adds an event to the open change, or to pre.
func (l *localTrail) record(e cluster.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(e)
}

func (l *localTrail) add(e cluster.Event) {
	if l.open {
		var dropped int
		l.events, dropped = cluster.BoundEvents(append(l.events, e), cluster.MaxEvents)
		l.omitted += dropped
		return
	}
	l.pre = append(l.pre, e)
	if len(l.pre) > maxPre {
		l.pre = append(l.pre[:0], l.pre[len(l.pre)-maxPre:]...)
	}
}

// begin ties the following events to change k (no-op when already tied).
// A change this proxy witnesses takes the pre events; one it only learns
// about (it started after the change) stays closed.
func (l *localTrail) begin(k changeKey, witnessed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.key.equal(k) {
		return
	}
	l.key, l.events, l.omitted, l.open = k, nil, 0, witnessed
	if witnessed {
		l.events, l.pre = l.pre, nil
	}
}

// healthy records e and ends the episode: when the change is over
// (finished set), it is closed; with no change open, pre is forgotten.
func (l *localTrail) healthy(e cluster.Event, st cluster.ShardState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(e)
	l.settleLocked(st)
	if !l.open {
		l.pre = nil
	}
}

// settle closes the change once it is over here: decided (or abandoned)
// and writes open.
func (l *localTrail) settle(st cluster.ShardState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.settleLocked(st)
}

func (l *localTrail) settleLocked(st cluster.ShardState) {
	lc := st.LastChange
	if l.open && lc != nil && l.key.equal(keyOf(lc)) && st.Pending == nil && !lc.Finished.IsZero() {
		l.open = false
	}
}

// eventsFor returns a copy of the events tied to change k.
func (l *localTrail) eventsFor(k changeKey) []cluster.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.key.equal(k) {
		return nil
	}
	return append([]cluster.Event(nil), l.events...)
}

// event stamps a step of this proxy now.
func (m *Manager) event(format string, args ...any) cluster.Event {
	return cluster.Event{At: time.Now(), Proxy: m.coord.Name(), What: fmt.Sprintf(format, args...)}
}

// step records a leader step of the change deciding term; the next
// proposal carrying that change commits it. Caller holds sc.mu.
func (m *Manager) step(sc *shardCtl, term uint64, format string, args ...any) {
	m.stepAt(sc, term, time.Now(), fmt.Sprintf(format, args...))
}

func (m *Manager) stepAt(sc *shardCtl, term uint64, at time.Time, what string) {
	for t := range sc.draft {
		if t+1 < term { // a draft two terms behind can no longer be proposed
			delete(sc.draft, t)
		}
	}
	evs, _ := cluster.BoundEvents(append(sc.draft[term], cluster.Event{At: at, Proxy: m.coord.Name(), What: what}), cluster.MaxEvents)
	sc.draft[term] = evs
}

// lastStep is the text of the latest uncommitted step for term ("" if
// none), to avoid recording the same remark every round.
func (sc *shardCtl) lastStep(term uint64) string {
	if d := sc.draft[term]; len(d) > 0 {
		return d[len(d)-1].What
	}
	return ""
}

// propose commits next (compare-and-set on st.Version) with the leader's
// uncommitted steps of next's change appended to its log. Caller holds
// sc.mu.
func (m *Manager) propose(ctx context.Context, sc *shardCtl, st, next cluster.ShardState) error {
	lc := next.LastChange
	var steps []cluster.Event
	if lc != nil {
		steps = sc.draft[lc.Term]
		if len(steps) > 0 {
			if lc == st.LastChange { // never modify the published state
				lc = lc.Clone()
				next.LastChange = lc
			}
			for _, e := range steps {
				lc.Add(e)
			}
		}
	}
	if err := m.coord.Propose(ctx, st.Version, next); err != nil {
		return err
	}
	if len(steps) > 0 {
		delete(sc.draft, lc.Term)
	}
	return nil
}

// openLog starts the log of a change from st: it continues an automatic
// failover refused for the same term and primary (the operator's FAILOVER
// TO), or starts a new one at the first uncommitted step.
func (m *Manager) openLog(sc *shardCtl, st cluster.ShardState, kind string) *cluster.ChangeLog {
	term := st.Term + 1
	if lc := st.LastChange; lc != nil && lc.Refused && lc.Finished.IsZero() && lc.Term == term && lc.From == st.Primary {
		c := lc.Clone()
		c.Kind, c.Refused, c.Outcome = kind, false, ""
		return c
	}
	started := time.Now()
	if d := sc.draft[term]; len(d) > 0 && d[0].At.Before(started) {
		started = d[0].At
	}
	return &cluster.ChangeLog{Term: term, Kind: kind, From: st.Primary, Started: started}
}

// tracking reports whether the leader still records steps of st's decided
// change (repointing, streaming) after its commit.
func tracking(st cluster.ShardState) bool {
	lc := st.LastChange
	return st.Pending == nil && lc != nil && lc.Term == st.Term && !lc.Finished.IsZero() && time.Since(lc.Finished) < postCommitWindow
}

// flushSteps commits the leader's steps recorded after a decision (one
// extra Raft entry), so followers show them too. Caller holds sc.mu.
func (m *Manager) flushSteps(ctx context.Context, sc *shardCtl) {
	st, ok := m.coord.State().Shard(sc.cfg.Name)
	if !ok || !tracking(st) || len(sc.draft[st.Term]) == 0 {
		return
	}
	if err := m.propose(ctx, sc, st, st.Clone()); err != nil {
		m.log.Debug("record post-commit steps", zap.String("shard", sc.cfg.Name), zap.Error(err))
	}
}

// trackApplied records this proxy's view of an applied change of the
// decided state (called by the state watcher, once per new version).
func (m *Manager) trackApplied(sc *shardCtl, prev, cur cluster.ShardState, had bool, at time.Time) {
	if cur.LastChange != nil {
		// A change this proxy applies while running is witnessed; one it
		// finds at start (or in the first state it applies) is history.
		m.trackBegin(sc, cur.LastChange, had)
	}
	if had {
		e := cluster.Event{At: at, Proxy: m.coord.Name()}
		switch {
		case cur.Pending != nil && (prev.Pending == nil || prev.Term != cur.Term):
			e.What = fmt.Sprintf("applied term %d pending (%s from %s)", cur.Term, cur.Pending.Kind, cur.Pending.From)
		case cur.Pending == nil && (prev.Pending != nil || prev.Term != cur.Term || prev.Primary != cur.Primary):
			e.What = fmt.Sprintf("applied term %d: primary %s", cur.Term, cur.Primary)
		}
		if e.What != "" {
			sc.local.record(e)
		}
	}
	if r := (*m.routes.Load())[sc.cfg.Name]; r != nil && r.closed == nil {
		sc.local.settle(cur)
	}
}

func (m *Manager) trackBegin(sc *shardCtl, lc *cluster.ChangeLog, witnessed bool) {
	sc.local.begin(keyOf(lc), witnessed)
}

// trackFence records this proxy's fence closing or reopening for a shard
// (called with the routes being replaced).
func (m *Manager) trackFence(sc *shardCtl, old, cur *route, st *cluster.State) {
	if old == nil || (old.closed == nil) == (cur.closed == nil) {
		return
	}
	s, _ := st.Shard(sc.cfg.Name)
	if cur.closed == nil {
		sc.local.healthy(m.event("writes reopened: primary %s verified for term %d", cur.target.Node, cur.target.Term), s)
		return
	}
	what := "writes fenced: " + cur.closed.Reason
	if cur.closed.Detail != "" {
		what += " (" + cur.closed.Detail + ")"
	}
	sc.local.record(m.event("%s", what))
}

// trackProbe records the decided primary becoming unreachable or
// answering again in this proxy's probes.
func (m *Manager) trackProbe(sc *shardCtl, st cluster.ShardState, node string, old, cur nodeView, started time.Time) {
	if st.Pending != nil || node != st.Primary {
		return
	}
	switch {
	case !cur.obs.Up && old.downSince.IsZero():
		sc.local.record(cluster.Event{At: started, Proxy: m.coord.Name(), What: downWhat(node, cur.downErr)})
	case cur.obs.Up && !old.downSince.IsZero():
		sc.local.healthy(m.event("primary %s answers again", node), st)
	}
}

// downWhat is the text of "primary seen unreachable", the same on the
// proxy's own trail and in the leader's committed steps (so the merge
// shows it once).
func downWhat(node, err string) string {
	return fmt.Sprintf("primary %s unreachable: %s", node, shortErr(err))
}

// describeCandidates summarizes the candidates other than the choice:
// "db-c at 0/3000060, db-a unreachable".
func describeCandidates(cands []candidate, chosen, from string) string {
	var parts []string
	for _, c := range cands {
		if c.Name == chosen {
			continue
		}
		var s string
		switch {
		case c.Name == from && !c.Reachable:
			s = "old primary unreachable"
		case c.Name == from:
			s = "old primary"
		case c.Stale:
			s = "stale"
		case !c.Reachable:
			s = "unreachable"
		case !c.InRecovery:
			s = "not in recovery"
		case c.NoFailover:
			s = "no_failover at " + formatLSN(c.LSN)
		default:
			s = "at " + formatLSN(c.LSN)
		}
		parts = append(parts, c.Name+" "+s)
	}
	if len(parts) == 0 {
		return "no other node"
	}
	return strings.Join(parts, ", ")
}
