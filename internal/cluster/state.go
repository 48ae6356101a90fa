package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/raft"
)

// Pending kinds: why a shard's primary is being changed.
const (
	KindFailover   = "failover"   // automatic, after a quorum saw the primary down
	KindForced     = "forced"     // an operator's FailoverTo
	KindSwitchover = "switchover" // an operator's planned SwitchoverTo
)

// ErrConflict is returned by Propose when the shard changed since the
// version the proposal expected (someone else decided first).
var ErrConflict = errors.New("cluster: shard state changed concurrently")

// ErrInvalidChange is returned by Propose for a change the state machine
// refuses whatever the order: a lower term, or a different primary in a
// term that was already decided.
var ErrInvalidChange = errors.New("cluster: invalid shard state change")

// ShardState is the decided state of one shard (a primary and its
// replicas), committed through Raft. Values are immutable once published.
type ShardState struct {
	Shard string `json:"shard"`
	// Term increases by one with every change of primary (and with every
	// aborted attempt). The same number is written to tiergate.ha_epoch on
	// the primary of that term.
	Term uint64 `json:"term"`
	// Primary is the node that takes writes in Term. While Pending is set
	// it is still the previous term's primary, and writes are fenced.
	Primary string `json:"primary"`
	// Timeline is the primary's timeline when the term was decided.
	Timeline int `json:"timeline"`
	// Pending is set while a change of primary for Term is under way.
	Pending *Pending `json:"pending,omitempty"`
	// Stale nodes are never routed to again (a former primary), until an
	// operator rejoins them as replicas.
	Stale []string `json:"stale,omitempty"`
	// Blocked says why automatic failover is refused (for operators); it
	// does not fence anything by itself.
	Blocked string `json:"blocked,omitempty"`
	// DecidedBy is the proxy that committed this state, DecidedAt when.
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
	// Reason is a human readable note on the last change.
	Reason string `json:"reason,omitempty"`
	// Version is the Raft index of the last change; Propose compares it.
	Version uint64 `json:"version"`
	// LastChange is the leader's record of the shard's last change of
	// primary (or of the last refused attempt), step by step, so every
	// proxy can show it. A new change replaces it. Absent in states
	// committed before it existed.
	LastChange *ChangeLog `json:"last_change,omitempty"`
}

// Pending describes a change of primary in progress.
type Pending struct {
	Kind string `json:"kind"`
	// From is the primary being replaced.
	From string `json:"from"`
	// Candidate is the node chosen to be promoted, once chosen. A new
	// leader that takes over a pending change promotes the same candidate.
	Candidate string    `json:"candidate,omitempty"`
	Since     time.Time `json:"since"`
}

// Bounds of a ChangeLog. They are enforced when a state is applied, so a
// committed state stays small whatever the proposer sent.
const (
	// MaxEvents is how many events a ChangeLog keeps: the first
	// MaxEvents/2 and the latest ones; Omitted counts those dropped
	// between them.
	MaxEvents = 32
	// MaxEventText is the longest Event.What (and ChangeLog.Outcome)
	// kept, in bytes; longer texts are cut and end with "…".
	MaxEventText = 200
	// maxProxyName bounds Event.Proxy.
	maxProxyName = 64
)

// Event is one timestamped step of a change of primary.
type Event struct {
	At time.Time `json:"at"`
	// Proxy is the proxy that performed or saw the step.
	Proxy string `json:"proxy"`
	What  string `json:"what"`
}

// ChangeLog is the leader's record of one change of primary (or of an
// automatic failover it refused): the steps it performed, in order. It is
// carried in the shard's committed state, so every proxy sees it once
// committed; a new change replaces it.
type ChangeLog struct {
	// Term is the term the change decides (for a refused attempt, the one
	// it would have decided). Term and Started identify the change.
	Term    uint64    `json:"term"`
	Kind    string    `json:"kind"` // KindFailover, KindForced or KindSwitchover
	From    string    `json:"from"`
	Started time.Time `json:"started"`
	// To is the decided primary once decided (From again when the old
	// primary was reinstated).
	To string `json:"to,omitempty"`
	// Finished is when the leader committed the outcome; zero while the
	// change is under way or refused.
	Finished time.Time `json:"finished,omitzero"`
	// Refused is set while automatic failover is refused (Outcome says
	// why); an operator's FAILOVER TO continues the same log.
	Refused bool `json:"refused,omitempty"`
	// Outcome is a short result: "failover: promoted db-b (lag 0 bytes)",
	// "refused: ...", "abandoned: ...".
	Outcome string  `json:"outcome,omitempty"`
	Events  []Event `json:"events,omitempty"`
	// Omitted counts events dropped to stay within MaxEvents.
	Omitted int `json:"omitted,omitempty"`
}

// Clone returns a deep copy (nil for nil).
func (c *ChangeLog) Clone() *ChangeLog {
	if c == nil {
		return nil
	}
	d := *c
	d.Events = slices.Clone(c.Events)
	return &d
}

// Add appends an event and keeps the log within the bounds.
func (c *ChangeLog) Add(e Event) {
	c.Events = append(c.Events, e)
	c.bound()
}

// bound enforces MaxEvents and the text limits (no-op on nil).
func (c *ChangeLog) bound() {
	if c == nil {
		return
	}
	var dropped int
	c.Events, dropped = BoundEvents(c.Events, MaxEvents)
	c.Omitted += dropped
	c.Outcome = clip(c.Outcome, MaxEventText)
}

// BoundEvents keeps at most limit events of ev (the first limit/2 and the
// latest ones), cuts each text to MaxEventText bytes and each proxy name
// to 64, and returns how many events it dropped. It reuses ev's array.
func BoundEvents(ev []Event, limit int) ([]Event, int) {
	dropped := 0
	if limit > 0 && len(ev) > limit {
		head := limit / 2
		dropped = len(ev) - limit
		ev = append(ev[:head], ev[head+dropped:]...)
	}
	for i := range ev {
		ev[i].What = clip(ev[i].What, MaxEventText)
		ev[i].Proxy = clip(ev[i].Proxy, maxProxyName)
	}
	return ev, dropped
}

// clip cuts s to at most n bytes on a UTF-8 boundary, ending with "…"
// when it was cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	i := max(n-len(ell), 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + ell
}

// IsStale reports whether node is in the stale list.
func (s ShardState) IsStale(node string) bool { return slices.Contains(s.Stale, node) }

// Clone returns a deep copy that can be modified and proposed.
func (s ShardState) Clone() ShardState {
	s.Stale = slices.Clone(s.Stale)
	if s.Pending != nil {
		p := *s.Pending
		s.Pending = &p
	}
	s.LastChange = s.LastChange.Clone()
	return s
}

// State is every shard's decided state at one point of the Raft log.
// It is immutable: readers get a pointer and never see it change.
type State struct {
	// Index is the Raft index of the last applied command.
	Index  uint64                `json:"index"`
	Shards map[string]ShardState `json:"shards"`
}

// Shard returns the state of one shard.
func (s *State) Shard(name string) (ShardState, bool) {
	if s == nil {
		return ShardState{}, false
	}
	st, ok := s.Shards[name]
	return st, ok
}

// command is one Raft log entry: compare-and-set of a shard's state.
type command struct {
	Shard  string     `json:"shard"`
	Expect uint64     `json:"expect"` // Version the proposer saw (0: shard absent)
	State  ShardState `json:"state"`
}

// fsm is the Raft state machine: a map of shard states replaced as a whole
// on each change, published through an atomic pointer.
type fsm struct {
	state atomic.Pointer[State]

	mu       sync.Mutex // guards watchers
	watchers map[chan struct{}]struct{}
}

var _ raft.FSM = (*fsm)(nil)

func newFSM() *fsm {
	f := &fsm{watchers: map[chan struct{}]struct{}{}}
	f.state.Store(&State{Shards: map[string]ShardState{}})
	return f
}

// Apply runs on Raft's FSM goroutine, one committed entry at a time.
func (f *fsm) Apply(l *raft.Log) any {
	cur := f.state.Load()
	var cmd command
	err := json.Unmarshal(l.Data, &cmd)
	if err != nil {
		err = fmt.Errorf("%w: bad log entry %d: %v", ErrInvalidChange, l.Index, err)
	} else {
		err = checkChange(cur, cmd)
	}
	next := &State{Index: l.Index, Shards: cur.Shards}
	if err == nil {
		next.Shards = make(map[string]ShardState, len(cur.Shards)+1)
		for k, v := range cur.Shards {
			next.Shards[k] = v
		}
		st := cmd.State.Clone()
		st.Shard = cmd.Shard
		st.Version = l.Index
		st.LastChange.bound()
		next.Shards[cmd.Shard] = st
	}
	f.state.Store(next)
	f.notify()
	return err
}

// checkChange enforces the invariants: versions match, terms never go
// back, and a decided term never changes its primary.
func checkChange(cur *State, cmd command) error {
	old, ok := cur.Shards[cmd.Shard]
	if cmd.Shard == "" {
		return fmt.Errorf("%w: empty shard name", ErrInvalidChange)
	}
	if (!ok && cmd.Expect != 0) || (ok && old.Version != cmd.Expect) {
		return fmt.Errorf("%w: shard %s is at version %d, proposal expected %d", ErrConflict, cmd.Shard, old.Version, cmd.Expect)
	}
	n := cmd.State
	if n.Term == 0 {
		return fmt.Errorf("%w: shard %s: term 0", ErrInvalidChange, cmd.Shard)
	}
	if !ok {
		return nil
	}
	if n.Term < old.Term {
		return fmt.Errorf("%w: shard %s: term %d is below the current term %d", ErrInvalidChange, cmd.Shard, n.Term, old.Term)
	}
	if n.Term == old.Term && old.Pending == nil && n.Primary != old.Primary {
		return fmt.Errorf("%w: shard %s: term %d was decided with primary %s, not %s", ErrInvalidChange, cmd.Shard, n.Term, old.Primary, n.Primary)
	}
	return nil
}

// watch returns a channel that receives a token after every applied change
// (coalesced: a slow reader sees one token for several changes), and a
// function that stops the watch.
func (f *fsm) watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.watchers[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}
}

func (f *fsm) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Snapshot captures the current state; Raft persists it on another
// goroutine, which is safe because states are immutable.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.state.Load()}, nil
}

// Restore replaces the state with a snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st State
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	if st.Shards == nil {
		st.Shards = map[string]ShardState{}
	}
	f.state.Store(&st)
	f.notify()
	return nil
}

type fsmSnapshot struct{ state *State }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.state); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
