package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/raft"
)

func apply(t *testing.T, f *fsm, idx uint64, c command) error {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	res := f.Apply(&raft.Log{Index: idx, Data: b})
	if res == nil {
		return nil
	}
	return res.(error)
}

func TestFSMInvariants(t *testing.T) {
	type step struct {
		expect uint64
		state  ShardState
		want   error // nil, ErrConflict or ErrInvalidChange
	}
	decided := func(term uint64, primary string) ShardState {
		return ShardState{Shard: "s", Term: term, Primary: primary}
	}
	pending := func(term uint64, from string) ShardState {
		return ShardState{Shard: "s", Term: term, Primary: from, Pending: &Pending{Kind: KindFailover, From: from}}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"bootstrap then failover", []step{
			{0, decided(1, "n0"), nil},
			{1, pending(2, "n0"), nil},
			{2, decided(2, "n1"), nil},
		}},
		{"bootstrap twice conflicts", []step{
			{0, decided(1, "n0"), nil},
			{0, decided(1, "n1"), ErrConflict},
		}},
		{"stale version conflicts", []step{
			{0, decided(1, "n0"), nil},
			{1, pending(2, "n0"), nil},
			{1, pending(2, "n0"), ErrConflict},
		}},
		{"term cannot go back", []step{
			{0, decided(3, "n0"), nil},
			{1, decided(2, "n0"), ErrInvalidChange},
		}},
		{"decided term keeps its primary", []step{
			{0, decided(1, "n0"), nil},
			{1, decided(1, "n1"), ErrInvalidChange},
		}},
		{"decided term may change other fields", []step{
			{0, decided(1, "n0"), nil},
			{1, ShardState{Shard: "s", Term: 1, Primary: "n0", Blocked: "lag"}, nil},
		}},
		{"term zero refused", []step{
			{0, decided(0, "n0"), ErrInvalidChange},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFSM()
			ch, stop := f.watch()
			defer stop()
			for i, s := range tt.steps {
				idx := uint64(i + 1)
				err := apply(t, f, idx, command{Shard: "s", Expect: s.expect, State: s.state})
				if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
					t.Fatalf("step %d: err = %v, want %v", i, err, s.want)
				}
				if got := f.state.Load().Index; got != idx {
					t.Fatalf("step %d: index = %d, want %d", i, got, idx)
				}
				select {
				case <-ch:
				default:
					t.Fatalf("step %d: no watch notification", i)
				}
				if s.want == nil {
					st, _ := f.state.Load().Shard("s")
					if st.Version != idx || st.Term != s.state.Term || st.Primary != s.state.Primary {
						t.Fatalf("step %d: state %+v", i, st)
					}
				}
			}
		})
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	f := newFSM()
	if err := apply(t, f, 5, command{Shard: "a", State: ShardState{Term: 4, Primary: "n2", Stale: []string{"n0"}}}); err != nil {
		t.Fatal(err)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	st, ok := g.state.Load().Shard("a")
	if !ok || st.Term != 4 || st.Primary != "n2" || !st.IsStale("n0") || st.Version != 5 || g.state.Load().Index != 5 {
		t.Fatalf("restored %+v (index %d)", st, g.state.Load().Index)
	}
}

func TestShardStateClone(t *testing.T) {
	s := ShardState{Stale: []string{"a"}, Pending: &Pending{Candidate: "x"}, LastChange: &ChangeLog{To: "x", Events: []Event{{What: "e"}}}}
	c := s.Clone()
	c.Stale[0] = "b"
	c.Pending.Candidate = "y"
	c.LastChange.To = "y"
	c.LastChange.Events[0].What = "f"
	c.LastChange.Add(Event{What: "g"})
	if s.Stale[0] != "a" || s.Pending.Candidate != "x" || s.LastChange.To != "x" || s.LastChange.Events[0].What != "e" || len(s.LastChange.Events) != 1 {
		t.Fatal("Clone shares memory with the original")
	}
	if (ShardState{}).Clone().LastChange != nil {
		t.Fatal("Clone of a state without a log made one")
	}
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

func TestBoundEvents(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	evs := func(n int) []Event {
		out := make([]Event, n)
		for i := range out {
			out[i] = Event{At: at.Add(time.Duration(i) * time.Millisecond), Proxy: "p1", What: fmt.Sprint("step ", i)}
		}
		return out
	}
	tests := []struct {
		name        string
		in          []Event
		limit       int
		wantLen     int
		wantDropped int
		first, last string // What of the first and last kept
	}{
		{"empty", nil, MaxEvents, 0, 0, "", ""},
		{"under the limit", evs(5), MaxEvents, 5, 0, "step 0", "step 4"},
		{"at the limit", evs(MaxEvents), MaxEvents, MaxEvents, 0, "step 0", fmt.Sprint("step ", MaxEvents-1)},
		{"over the limit keeps head and tail", evs(100), MaxEvents, MaxEvents, 100 - MaxEvents, "step 0", "step 99"},
		{"odd limit", evs(10), 5, 5, 5, "step 0", "step 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped := BoundEvents(tt.in, tt.limit)
			if len(got) != tt.wantLen || dropped != tt.wantDropped {
				t.Fatalf("len %d dropped %d, want %d and %d", len(got), dropped, tt.wantLen, tt.wantDropped)
			}
			if len(got) == 0 {
				return
			}
			if got[0].What != tt.first || got[len(got)-1].What != tt.last {
				t.Fatalf("kept %q .. %q, want %q .. %q", got[0].What, got[len(got)-1].What, tt.first, tt.last)
			}
			if tt.limit == MaxEvents && len(tt.in) > MaxEvents {
				if got[MaxEvents/2-1].What != fmt.Sprint("step ", MaxEvents/2-1) || got[MaxEvents/2].What != fmt.Sprint("step ", 100-MaxEvents/2) {
					t.Fatalf("head/tail split wrong: %q | %q", got[MaxEvents/2-1].What, got[MaxEvents/2].What)
				}
			}
			for i := 1; i < len(got); i++ {
				if got[i].At.Before(got[i-1].At) {
					t.Fatalf("order lost at %d", i)
				}
			}
		})
	}
}

func TestChangeLogAddBounds(t *testing.T) {
	var c ChangeLog
	for i := range 100 {
		c.Add(Event{At: time.Unix(int64(i), 0), Proxy: strings.Repeat("p", 100), What: strings.Repeat("é", MaxEventText)})
	}
	if len(c.Events) != MaxEvents || c.Omitted != 100-MaxEvents {
		t.Fatalf("%d events, %d omitted", len(c.Events), c.Omitted)
	}
	if c.Events[0].At.Unix() != 0 || c.Events[len(c.Events)-1].At.Unix() != 99 {
		t.Fatalf("first %v last %v", c.Events[0].At, c.Events[len(c.Events)-1].At)
	}
	for _, e := range c.Events {
		if len(e.What) > MaxEventText || !utf8.ValidString(e.What) || !strings.HasSuffix(e.What, "…") {
			t.Fatalf("text not clipped cleanly: %d bytes, valid %v", len(e.What), utf8.ValidString(e.What))
		}
		if len(e.Proxy) > maxProxyName {
			t.Fatalf("proxy name %d bytes", len(e.Proxy))
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 6, "é…"}, // é is 2 bytes; … is 3
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.n); got != tt.want || len(got) > tt.n {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestFSMBoundsChangeLog: the state machine keeps a proposed log within
// the bounds, whatever the proposer sent.
func TestFSMBoundsChangeLog(t *testing.T) {
	f := newFSM()
	lc := &ChangeLog{Term: 2, Kind: KindFailover, From: "n0", Outcome: strings.Repeat("x", 1000)}
	for i := range 50 {
		lc.Events = append(lc.Events, Event{At: time.Unix(int64(i), 0), Proxy: "p1", What: "e"})
	}
	if err := apply(t, f, 1, command{Shard: "s", State: ShardState{Term: 2, Primary: "n1", LastChange: lc}}); err != nil {
		t.Fatal(err)
	}
	st, _ := f.state.Load().Shard("s")
	if got := st.LastChange; len(got.Events) != MaxEvents || got.Omitted != 50-MaxEvents || len(got.Outcome) > MaxEventText {
		t.Fatalf("applied log: %d events, %d omitted, outcome %d bytes", len(got.Events), got.Omitted, len(got.Outcome))
	}
}

func sampleLog() *ChangeLog {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	return &ChangeLog{Term: 5, Kind: KindFailover, From: "n0", To: "n1", Started: at, Finished: at.Add(4 * time.Second),
		Outcome: "failover: promoted n1 (lag 0 bytes)", Omitted: 1, Events: []Event{
			{At: at, Proxy: "p1", What: "primary n0 unreachable: connect: connection refused"},
			{At: at.Add(1500 * time.Millisecond), Proxy: "p1", What: "term 5 pending: writes fenced on every proxy (failover from n0)"},
			{At: at.Add(4 * time.Second), Proxy: "p2", What: "term 5 committed in Raft: primary n1 (timeline 3)"},
		}}
}

// TestShardStateJSON: the state with a change log survives JSON (Raft log
// entries and snapshots), and states written before the log existed
// still decode.
func TestShardStateJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string // JSON of a State, as a snapshot holds it
		want func(t *testing.T, st ShardState)
	}{
		{"old format without last_change",
			`{"index":9,"shards":{"app":{"shard":"app","term":4,"primary":"n2","timeline":3,"stale":["n0"],"decided_by":"p1","decided_at":"2025-01-01T00:00:00Z","reason":"failover: promoted n2","version":9}}}`,
			func(t *testing.T, st ShardState) {
				if st.LastChange != nil || st.Term != 4 || st.Primary != "n2" || st.Timeline != 3 || !st.IsStale("n0") || st.Version != 9 {
					t.Fatalf("decoded %+v", st)
				}
			}},
		{"old format pending",
			`{"index":3,"shards":{"app":{"shard":"app","term":2,"primary":"n0","timeline":1,"pending":{"kind":"failover","from":"n0","since":"2025-01-01T00:00:00Z"},"decided_at":"0001-01-01T00:00:00Z","version":3}}}`,
			func(t *testing.T, st ShardState) {
				if st.LastChange != nil || st.Pending == nil || st.Pending.From != "n0" {
					t.Fatalf("decoded %+v", st)
				}
			}},
		{"unknown fields are ignored",
			`{"index":1,"shards":{"app":{"shard":"app","term":1,"primary":"n0","future":{"x":1},"version":1}}}`,
			func(t *testing.T, st ShardState) {
				if st.Term != 1 || st.LastChange != nil {
					t.Fatalf("decoded %+v", st)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFSM()
			if err := g.Restore(io.NopCloser(strings.NewReader(tt.in))); err != nil {
				t.Fatal(err)
			}
			st, ok := g.state.Load().Shard("app")
			if !ok {
				t.Fatal("shard missing after restore")
			}
			tt.want(t, st)
		})
	}
	t.Run("round trip", func(t *testing.T) {
		in := ShardState{Shard: "app", Term: 5, Primary: "n1", Timeline: 3, Stale: []string{"n0"}, Version: 12, LastChange: sampleLog()}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out ShardState
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if !sameLog(in.LastChange, out.LastChange) {
			t.Fatalf("round trip changed the log:\n%s\n%+v", b, out.LastChange)
		}
		// A change still under way has no finished time in the JSON.
		in.LastChange.Finished = time.Time{}
		b, _ = json.Marshal(in)
		if bytes.Contains(b, []byte(`"finished"`)) {
			t.Fatalf("zero finished time encoded: %s", b)
		}
	})
}

func sameLog(a, b *ChangeLog) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Term != b.Term || a.Kind != b.Kind || a.From != b.From || a.To != b.To || !a.Started.Equal(b.Started) ||
		!a.Finished.Equal(b.Finished) || a.Refused != b.Refused || a.Outcome != b.Outcome || a.Omitted != b.Omitted || len(a.Events) != len(b.Events) {
		return false
	}
	for i := range a.Events {
		if !a.Events[i].At.Equal(b.Events[i].At) || a.Events[i].Proxy != b.Events[i].Proxy || a.Events[i].What != b.Events[i].What {
			return false
		}
	}
	return true
}

// TestFSMSnapshotKeepsChangeLog: a Raft snapshot carries the log, and a
// log entry from before the log existed applies.
func TestFSMSnapshotKeepsChangeLog(t *testing.T) {
	f := newFSM()
	old := []byte(`{"shard":"a","expect":0,"state":{"shard":"a","term":4,"primary":"n2","stale":["n0"],"decided_at":"2025-01-01T00:00:00Z","version":0}}`)
	if res := f.Apply(&raft.Log{Index: 1, Data: old}); res != nil {
		t.Fatalf("old-format entry: %v", res)
	}
	if err := apply(t, f, 2, command{Shard: "b", State: ShardState{Term: 5, Primary: "n1", LastChange: sampleLog()}}); err != nil {
		t.Fatal(err)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	a, _ := g.state.Load().Shard("a")
	b, _ := g.state.Load().Shard("b")
	if a.Term != 4 || a.LastChange != nil {
		t.Fatalf("shard a restored as %+v", a)
	}
	if b.Version != 2 || !sameLog(b.LastChange, sampleLog()) {
		t.Fatalf("shard b restored as %+v (log %+v)", b, b.LastChange)
	}
}
