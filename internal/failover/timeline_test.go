package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
)

// leaderCoord is a fakeCoord that leads and commits proposals the way the
// state machine does: compare-and-set on Version, through JSON.
type leaderCoord struct {
	*fakeCoord
	mu    sync.Mutex
	index uint64
}

func newLeaderCoord(s cluster.ShardState) *leaderCoord {
	c := &leaderCoord{fakeCoord: newFakeCoord(), index: s.Version}
	c.set(s)
	return c
}

func (c *leaderCoord) IsLeader() bool { return true }
func (c *leaderCoord) Leader() string { return "p1" }

func (c *leaderCoord) Propose(_ context.Context, expect uint64, s cluster.ShardState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, _ := c.State().Shard(s.Shard)
	if cur.Version != expect {
		return cluster.ErrConflict
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var next cluster.ShardState
	if err := json.Unmarshal(b, &next); err != nil {
		return err
	}
	c.index++
	next.Version = c.index
	c.set(next)
	return nil
}

func (c *leaderCoord) shard() cluster.ShardState {
	s, _ := c.State().Shard("app")
	return s
}

// whats lists the events' texts.
func whats(evs []cluster.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.What
	}
	return out
}

// inOrder reports the first of want (substrings) not found, in order,
// in got.
func inOrder(got []string, want ...string) error {
	i := 0
	for _, g := range got {
		if i < len(want) && strings.Contains(g, want[i]) {
			i++
		}
	}
	if i < len(want) {
		return fmt.Errorf("step %q not found in order in %q", want[i], got)
	}
	return nil
}

// TestLeaderStepsCommitted: a refused automatic failover, the operator's
// FAILOVER TO and the decision commit one log, carried in the state.
func TestLeaderStepsCommitted(t *testing.T) {
	coord := newLeaderCoord(cluster.ShardState{Shard: "app", Term: 1, Primary: "n0", Version: 1})
	m, err := New(testConfig(), coord, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := m.byName["app"]
	ctx := context.Background()
	down := time.Now().Add(-2 * time.Second)

	m.stepAt(sc, 2, down, downWhat("n0", "dial tcp 127.0.0.1:5432: connect: connection refused"))
	m.step(sc, 2, "primary n0 unreachable for 1s on 2 proxies (p1, p2), quorum 2")
	refusal := "automatic failover refused: best candidate n1 is 999 bytes behind; run FAILOVER TO <node> to force"
	m.setBlocked(ctx, sc, coord.shard(), refusal)
	st := coord.shard()
	lc := st.LastChange
	if lc == nil || !lc.Refused || lc.Term != 2 || lc.From != "n0" || !lc.Started.Equal(down) || lc.Outcome != refusal || !lc.Finished.IsZero() {
		t.Fatalf("refused log %+v", lc)
	}
	if err := inOrder(whats(lc.Events), "primary n0 unreachable: connect: connection refused", "on 2 proxies", "refused"); err != nil {
		t.Fatal(err)
	}
	if len(sc.draft[2]) != 0 {
		t.Fatalf("committed steps left in the draft: %v", sc.draft[2])
	}
	m.setBlocked(ctx, sc, st, refusal) // the same refusal again: nothing to commit
	if coord.shard().Version != st.Version {
		t.Fatal("an unchanged refusal was proposed again")
	}

	m.step(sc, 2, "FAILOVER TO n1 requested by an operator")
	st, err = m.startChange(ctx, sc, st, cluster.KindForced, "n1")
	if err != nil {
		t.Fatal(err)
	}
	lc = st.LastChange
	if lc.Kind != cluster.KindForced || lc.Refused || lc.Outcome != "" || !lc.Started.Equal(down) || st.Pending == nil {
		t.Fatalf("forced change did not continue the refused log: %+v", lc)
	}
	if err := m.decide(ctx, sc, st, "n1", 2, nil, "forced: promoted n1 (lag 999 bytes)"); err != nil {
		t.Fatal(err)
	}
	st = coord.shard()
	lc = st.LastChange
	if st.Primary != "n1" || !st.IsStale("n0") || lc.To != "n1" || !lc.Finished.Equal(st.DecidedAt) || lc.Outcome != "forced: promoted n1 (lag 999 bytes)" {
		t.Fatalf("decided %+v with log %+v", st, lc)
	}
	if err := inOrder(whats(lc.Events), "unreachable", "refused", "FAILOVER TO n1", "term 2 pending: writes fenced", "n0 marked stale (the old primary)", "term 2 committed in Raft: primary n1"); err != nil {
		t.Fatal(err)
	}
	if len(sc.draft) != 0 {
		t.Fatalf("steps left uncommitted: %v", sc.draft)
	}

	tl := m.Status().Shards[0].LastFailover
	if tl == nil || tl.Shard != "app" || tl.Term != 2 || tl.Kind != cluster.KindForced || tl.From != "n0" || tl.To != "n1" || tl.InProgress || tl.Refused {
		t.Fatalf("timeline %+v", tl)
	}
	if !tl.Started.Equal(down) || tl.Duration != lc.Finished.Sub(down) || tl.Took != formatSpan(tl.Duration) {
		t.Fatalf("timeline times: started %v duration %v took %q", tl.Started, tl.Duration, tl.Took)
	}
	if len(tl.Events) != len(lc.Events) || tl.Events[0].Offset != "+0.00s" {
		t.Fatalf("timeline events %+v", tl.Events)
	}
	for i, e := range tl.Events {
		if e.Local || e.Proxy != "p1" || !strings.HasPrefix(e.Offset, "+") || (i > 0 && e.At.Before(tl.Events[i-1].At)) {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if got := m.Status().LastFailovers(); len(got) != 1 || got[0].Term != 2 {
		t.Fatalf("LastFailovers = %+v", got)
	}
}

// TestRefusedFailoverAbandoned: the primary answering again closes the
// refused log.
func TestRefusedFailoverAbandoned(t *testing.T) {
	coord := newLeaderCoord(cluster.ShardState{Shard: "app", Term: 1, Primary: "n0", Version: 1})
	m, err := New(testConfig(), coord, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := m.byName["app"]
	ctx := context.Background()
	m.setBlocked(ctx, sc, coord.shard(), "automatic failover refused: no eligible replica")
	m.setBlocked(ctx, sc, coord.shard(), "")
	st := coord.shard()
	lc := st.LastChange
	if st.Blocked != "" || lc == nil || lc.Finished.IsZero() || !strings.HasPrefix(lc.Outcome, "abandoned") {
		t.Fatalf("state %+v log %+v", st, lc)
	}
	if err := inOrder(whats(lc.Events), "refused: no eligible replica", "primary n0 answers again"); err != nil {
		t.Fatal(err)
	}
	if tl := m.Status().Shards[0].LastFailover; tl == nil || !tl.Refused || tl.InProgress || tl.To != "" {
		t.Fatalf("timeline %+v", tl)
	}
	// A new episode starts a new log rather than continuing the closed one.
	m.step(sc, 2, "primary n0 unreachable for 1s on 2 proxies (p1, p2), quorum 2")
	m.setBlocked(ctx, sc, coord.shard(), "automatic failover refused: no eligible replica")
	if lc2 := coord.shard().LastChange; !lc2.Finished.IsZero() || lc2.Started.Equal(lc.Started) || len(lc2.Events) != 2 {
		t.Fatalf("second refusal reused the closed log: %+v", lc2)
	}
}

// TestDraftKeptPerTerm: steps of the next change survive steps recorded
// for the decided one, and old terms are dropped.
func TestDraftKeptPerTerm(t *testing.T) {
	m, err := New(testConfig(), newFakeCoord(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := m.byName["app"]
	m.step(sc, 3, "detection for term 3")
	m.step(sc, 2, "replica n2 repointed to n1")
	if len(sc.draft[3]) != 1 || len(sc.draft[2]) != 1 {
		t.Fatalf("draft %v", sc.draft)
	}
	m.step(sc, 5, "later")
	if len(sc.draft) != 1 || sc.lastStep(5) != "later" || sc.lastStep(3) != "" {
		t.Fatalf("draft %v", sc.draft)
	}
}

// TestLocalTimeline: a follower's own events (its probe of the primary
// failing, its fence, the states it applied) join the committed steps.
func TestLocalTimeline(t *testing.T) {
	coord := newFakeCoord()
	m, err := New(testConfig(), coord, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := m.byName["app"]
	s1 := cluster.ShardState{Shard: "app", Term: 1, Primary: "n0", Version: 1}
	coord.set(s1)
	m.trackApplied(sc, cluster.ShardState{}, s1, false, time.Now())
	sc.verified.Store(&verification{term: 1, node: "n0", ok: true})
	m.rebuildRoutes() // opens: no change is open, so nothing is kept

	m.trackProbe(sc, s1, "n0", nodeView{}, nodeView{obs: cluster.NodeObservation{Up: true}}, time.Now()) // up: nothing
	downAt := time.Now()
	m.trackProbe(sc, s1, "n0", nodeView{}, nodeView{downSince: downAt, downErr: "dial tcp: connect: connection refused"}, downAt)
	leaderDown := downAt.Add(-300 * time.Millisecond)
	lc := &cluster.ChangeLog{Term: 2, Kind: cluster.KindFailover, From: "n0", Started: leaderDown, Events: []cluster.Event{
		{At: leaderDown, Proxy: "p2", What: downWhat("n0", "connect: connection refused")},
		{At: time.Now(), Proxy: "p2", What: "term 2 pending: writes fenced on every proxy (failover from n0)"},
	}}
	s2 := s1.Clone()
	s2.Term, s2.Version, s2.LastChange = 2, 2, lc
	s2.Pending = &cluster.Pending{Kind: cluster.KindFailover, From: "n0", Since: downAt}
	coord.set(s2)
	appliedAt := time.Now()
	m.rebuildRoutes()
	m.trackApplied(sc, s1, s2, true, appliedAt)

	s3 := s2.Clone()
	s3.Pending, s3.Primary, s3.Version, s3.Stale = nil, "n1", 3, []string{"n0"}
	s3.LastChange.To, s3.LastChange.Finished = "n1", time.Now()
	s3.LastChange.Add(cluster.Event{At: s3.LastChange.Finished, Proxy: "p2", What: "term 2 committed in Raft: primary n1 (timeline 2)"})
	coord.set(s3)
	m.rebuildRoutes()
	m.trackApplied(sc, s2, s3, true, time.Now())
	if tl := m.Status().Shards[0].LastFailover; !tl.InProgress == tl.Finished.IsZero() {
		t.Fatalf("timeline %+v", tl)
	}
	sc.verified.Store(&verification{term: 2, node: "n1", ok: true})
	m.rebuildRoutes() // writes reopen: the change is over here
	// Later events are not part of this change.
	m.trackProbe(sc, s3, "n1", nodeView{}, nodeView{downSince: time.Now(), downErr: "timeout"}, time.Now())

	tl := m.Status().Shards[0].LastFailover
	if tl == nil || tl.Term != 2 || tl.To != "n1" || tl.InProgress {
		t.Fatalf("timeline %+v", tl)
	}
	var got []string
	local := 0
	for i, e := range tl.Events {
		got = append(got, e.Proxy+" "+e.What)
		if e.Local {
			local++
			if e.Proxy != "p1" {
				t.Errorf("local event from %s", e.Proxy)
			}
		}
		if i > 0 && e.At.Before(tl.Events[i-1].At) {
			t.Errorf("events out of order at %d", i)
		}
	}
	err = inOrder(got,
		"p2 primary n0 unreachable: connect: connection refused",
		"p1 primary n0 unreachable: connect: connection refused",
		"p2 term 2 pending",
		"p1 applied term 2 pending (failover from n0)",
		"p1 writes fenced: primary change in progress (failover from n0)",
		"p2 term 2 committed",
		"p1 applied term 2: primary n1",
		"p1 writes reopened: primary n1 verified for term 2")
	if err != nil {
		t.Fatal(err)
	}
	if local != 5 || len(tl.Events) != 8 {
		t.Fatalf("%d events, %d local: %q", len(tl.Events), local, got)
	}
	if !tl.Started.Equal(leaderDown) || tl.Events[0].Offset != "+0.00s" {
		t.Fatalf("started %v, first offset %q", tl.Started, tl.Events[0].Offset)
	}
}

// TestLocalTrail covers the trail's rules one by one.
func TestLocalTrail(t *testing.T) {
	ev := func(what string) cluster.Event { return cluster.Event{At: time.Now(), Proxy: "p1", What: what} }
	k1 := changeKey{term: 2, started: time.Unix(100, 0)}
	k2 := changeKey{term: 3, started: time.Unix(200, 0)}
	finished := cluster.ShardState{Term: 2, LastChange: &cluster.ChangeLog{Term: 2, Started: time.Unix(100, 0), Finished: time.Unix(110, 0)}}
	tests := []struct {
		name string
		run  func(l *localTrail)
		key  changeKey
		want []string
	}{
		{"pre is bounded and taken by a witnessed change", func(l *localTrail) {
			for i := range maxPre + 3 {
				l.record(ev(fmt.Sprint("pre ", i)))
			}
			l.begin(k1, true)
			l.record(ev("during"))
		}, k1, []string{"pre 3", "pre 4", "pre 5", "pre 6", "pre 7", "pre 8", "pre 9", "pre 10", "during"}},
		{"a change found at start keeps nothing", func(l *localTrail) {
			l.record(ev("pre"))
			l.begin(k1, false)
			l.record(ev("after"))
		}, k1, nil},
		{"healthy without a change forgets pre", func(l *localTrail) {
			l.record(ev("primary down"))
			l.healthy(ev("primary answers again"), cluster.ShardState{})
			l.begin(k1, true)
		}, k1, nil},
		{"begin again with the same key keeps events", func(l *localTrail) {
			l.begin(k1, true)
			l.record(ev("a"))
			l.begin(changeKey{term: 2, started: time.Unix(100, 0).UTC()}, true)
			l.record(ev("b"))
		}, k1, []string{"a", "b"}},
		{"a finished change closes when healthy", func(l *localTrail) {
			l.begin(k1, true)
			l.healthy(ev("writes reopened"), finished)
			l.record(ev("later"))
		}, k1, []string{"writes reopened"}},
		{"settle waits for the decision", func(l *localTrail) {
			l.begin(k1, true)
			l.settle(cluster.ShardState{Term: 2, LastChange: &cluster.ChangeLog{Term: 2, Started: time.Unix(100, 0)}})
			l.record(ev("still open"))
			l.settle(finished)
			l.record(ev("closed"))
		}, k1, []string{"still open"}},
		{"another key sees nothing", func(l *localTrail) {
			l.begin(k1, true)
			l.record(ev("a"))
		}, k2, nil},
		{"a new change replaces the old one", func(l *localTrail) {
			l.begin(k1, true)
			l.record(ev("a"))
			l.begin(k2, true)
			l.record(ev("b"))
		}, k2, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l localTrail
			tt.run(&l)
			got := whats(l.eventsFor(tt.key))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLocalTrailBounded(t *testing.T) {
	var l localTrail
	l.begin(changeKey{term: 1}, true)
	for i := range 3 * cluster.MaxEvents {
		l.record(cluster.Event{At: time.Unix(int64(i), 0), What: fmt.Sprint(i)})
	}
	if got := l.eventsFor(changeKey{term: 1}); len(got) != cluster.MaxEvents || l.omitted != 2*cluster.MaxEvents || got[0].What != "0" || got[len(got)-1].What != fmt.Sprint(3*cluster.MaxEvents-1) {
		t.Fatalf("%d events, %d omitted", len(got), l.omitted)
	}
}

func TestBuildTimeline(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ev := func(ms int, proxy, what string) cluster.Event {
		return cluster.Event{At: t0.Add(time.Duration(ms) * time.Millisecond), Proxy: proxy, What: what}
	}
	tests := []struct {
		name       string
		lc         *cluster.ChangeLog
		local      []cluster.Event
		now        time.Time
		wantOffs   []string
		wantTook   string
		inProgress bool
	}{
		{"nothing committed", nil, []cluster.Event{ev(0, "p1", "x")}, t0, nil, "", false},
		{"decided, with a duplicate and a later local event",
			&cluster.ChangeLog{Term: 2, Started: t0, Finished: t0.Add(4210 * time.Millisecond), Events: []cluster.Event{ev(0, "p1", "down"), ev(1500, "p1", "fence"), ev(4210, "p1", "decided")}},
			[]cluster.Event{ev(0, "p1", "down"), ev(4300, "p1", "reopened")}, t0.Add(time.Hour),
			[]string{"+0.00s", "+1.50s", "+4.21s", "+4.30s"}, "4.21s", false},
		{"a local event before the leader's start moves the start",
			&cluster.ChangeLog{Term: 2, Started: t0, Finished: t0.Add(2 * time.Second), Events: []cluster.Event{ev(0, "p2", "down")}},
			[]cluster.Event{ev(-250, "p1", "down here")}, t0,
			[]string{"+0.00s", "+0.25s"}, "2.25s", false},
		{"in progress runs until now",
			&cluster.ChangeLog{Term: 2, Started: t0, Events: []cluster.Event{ev(0, "p2", "fence")}},
			nil, t0.Add(62500 * time.Millisecond),
			[]string{"+0.00s"}, "1m02.5s", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := buildTimeline("app", tt.lc, tt.local, tt.now)
			if tt.lc == nil {
				if tl != nil {
					t.Fatalf("timeline without a log: %+v", tl)
				}
				return
			}
			var offs []string
			for _, e := range tl.Events {
				offs = append(offs, e.Offset)
			}
			if strings.Join(offs, " ") != strings.Join(tt.wantOffs, " ") || tl.Took != tt.wantTook || tl.InProgress != tt.inProgress {
				t.Fatalf("offsets %v took %q in progress %v, want %v %q %v", offs, tl.Took, tl.InProgress, tt.wantOffs, tt.wantTook, tt.inProgress)
			}
		})
	}
}

func TestFormatSpan(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.00s"},
		{-time.Second, "0.00s"},
		{1234 * time.Millisecond, "1.23s"},
		{59 * time.Second, "59.00s"},
		{62500 * time.Millisecond, "1m02.5s"},
		{10*time.Minute + 5*time.Second, "10m05.0s"},
	}
	for _, tt := range tests {
		if got := formatSpan(tt.d); got != tt.want {
			t.Errorf("formatSpan(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestShortErr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"failed to connect to `user=postgres database=postgres`: 127.0.0.1:5432 (127.0.0.1): dial error: dial tcp 127.0.0.1:5432: connect: connection refused", "connect: connection refused"},
		{"timeout", "timeout"},
		{"a: b", "a: b"},
		{"first line: x: y\nsecond line", "x: y"},
		{elide("connect pg-n0: failed to connect to `user=postgres database=postgres`: 127.0.0.1:5432 (127.0.0.1): dial error: dial tcp 127.0.0.1:5432: connect: connection refused", 120), "connect: connection refused"},
	}
	for _, tt := range tests {
		if got := shortErr(tt.in); got != tt.want {
			t.Errorf("shortErr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestElide(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789abcdefghij", 9, "012…efghij"},
		{"ééééééééé", 8, "é…ééé"},
	}
	for _, tt := range tests {
		if got := elide(tt.in, tt.n); got != tt.want {
			t.Errorf("elide(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestDescribeCandidates(t *testing.T) {
	cands := []candidate{
		{Name: "n0"},
		{Name: "n1", Reachable: true, InRecovery: true, LSN: 0x3000060},
		{Name: "n2", Reachable: true, InRecovery: true, LSN: 0x3000000, NoFailover: true},
		{Name: "n3", Reachable: true, InRecovery: true, Stale: true},
		{Name: "n4"},
		{Name: "n5", Reachable: true},
	}
	want := "n0 old primary unreachable, n2 no_failover at 0/3000000, n3 stale, n4 unreachable, n5 not in recovery"
	if got := describeCandidates(cands, "n1", "n0"); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := describeCandidates(cands[1:2], "n1", "n0"); got != "no other node" {
		t.Fatalf("alone: %s", got)
	}
}

// BenchmarkBuildTimeline: the cost Status pays per shard with a full
// committed log and a few local events.
func BenchmarkBuildTimeline(b *testing.B) {
	t0 := time.Now()
	lc := &cluster.ChangeLog{Term: 2, Kind: cluster.KindFailover, From: "n0", To: "n1", Started: t0, Finished: t0.Add(4 * time.Second)}
	for i := range cluster.MaxEvents {
		lc.Events = append(lc.Events, cluster.Event{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Proxy: "p2", What: "a step of the leader"})
	}
	local := []cluster.Event{{At: t0.Add(50 * time.Millisecond), Proxy: "p1", What: "mine"}, {At: t0.Add(4100 * time.Millisecond), Proxy: "p1", What: "writes reopened"}}
	b.ReportAllocs()
	for b.Loop() {
		if tl := buildTimeline("app", lc, local, t0); len(tl.Events) != cluster.MaxEvents+2 {
			b.Fatal(len(tl.Events))
		}
	}
}
