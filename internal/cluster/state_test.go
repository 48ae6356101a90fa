package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

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
	s := ShardState{Stale: []string{"a"}, Pending: &Pending{Candidate: "x"}}
	c := s.Clone()
	c.Stale[0] = "b"
	c.Pending.Candidate = "y"
	if s.Stale[0] != "a" || s.Pending.Candidate != "x" {
		t.Fatal("Clone shares memory with the original")
	}
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }
