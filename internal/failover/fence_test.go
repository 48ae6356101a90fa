package failover

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
)

// fakeCoord is a Coordinator with a settable state and lease.
type fakeCoord struct {
	state atomic.Pointer[cluster.State]
	lease atomic.Bool
}

func newFakeCoord() *fakeCoord {
	c := &fakeCoord{}
	c.state.Store(&cluster.State{Shards: map[string]cluster.ShardState{}})
	c.lease.Store(true)
	return c
}

func (c *fakeCoord) set(s cluster.ShardState) {
	c.state.Store(&cluster.State{Shards: map[string]cluster.ShardState{s.Shard: s}})
}

func (c *fakeCoord) Name() string                     { return "p1" }
func (c *fakeCoord) Quorum() int                      { return 1 }
func (c *fakeCoord) IsLeader() bool                   { return false }
func (c *fakeCoord) Leader() string                   { return "p2" }
func (c *fakeCoord) LeaseValid() bool                 { return c.lease.Load() }
func (c *fakeCoord) LeaseDuration() time.Duration     { return time.Second }
func (c *fakeCoord) State() *cluster.State            { return c.state.Load() }
func (c *fakeCoord) Watch() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }
func (c *fakeCoord) Propose(context.Context, uint64, cluster.ShardState) error {
	return cluster.ErrNotLeader
}
func (c *fakeCoord) Publish(*cluster.Observations)                         {}
func (c *fakeCoord) PeerObservations() map[string]cluster.PeerObservations { return nil }

func testConfig() Config {
	c := Config{Shards: []ShardConfig{{Name: "app", Nodes: []NodeConfig{
		{Name: "n0", Address: "127.0.0.1:5432"}, {Name: "n1", Address: "127.0.0.1:5433"}, {Name: "n2", Address: "127.0.0.1:5434"},
	}}}}
	c.SetDefaults()
	return c
}

func TestCheckWrite(t *testing.T) {
	decided := cluster.ShardState{Shard: "app", Term: 3, Primary: "n1", Stale: []string{"n0"}, Version: 7}
	pending := decided.Clone()
	pending.Term = 4
	pending.Pending = &cluster.Pending{Kind: cluster.KindFailover, From: "n1"}
	tests := []struct {
		name     string
		state    *cluster.ShardState
		verified *verification
		lease    bool
		reason   string // "" = open
	}{
		{"no state", nil, nil, true, ReasonNoState},
		{"open", &decided, &verification{term: 3, node: "n1", ok: true}, true, ""},
		{"no lease", &decided, &verification{term: 3, node: "n1", ok: true}, false, ReasonNoLease},
		{"not verified yet", &decided, nil, true, ReasonUnverified},
		{"verified for an older term", &decided, &verification{term: 2, node: "n1", ok: true}, true, ReasonUnverified},
		{"verified another node", &decided, &verification{term: 3, node: "n2", ok: true}, true, ReasonUnverified},
		{"verification failed", &decided, &verification{term: 3, node: "n1", detail: "epoch row on the primary is term 2"}, true, ReasonUnverified},
		{"change in progress", &pending, &verification{term: 3, node: "n1", ok: true}, true, ReasonChanging},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coord := newFakeCoord()
			if tt.state != nil {
				coord.set(*tt.state)
			}
			coord.lease.Store(tt.lease)
			m, err := New(testConfig(), coord, Options{})
			if err != nil {
				t.Fatal(err)
			}
			m.byName["app"].verified.Store(tt.verified)
			m.rebuildRoutes()
			tgt, err := m.CheckWrite("app")
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("fenced: %v", err)
				}
				if tgt != (Target{Shard: "app", Node: "n1", Addr: "127.0.0.1:5433", Term: 3}) {
					t.Fatalf("target = %+v", tgt)
				}
				return
			}
			var fe *FencedError
			if !errors.As(err, &fe) || !errors.Is(err, ErrFenced) || fe.Reason != tt.reason || !fe.SafeToRetry() {
				t.Fatalf("err = %v, want a FencedError with reason %q", err, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("message %q lacks the reason", err)
			}
		})
	}
}

func TestCheckWriteUnknownShard(t *testing.T) {
	m, err := New(testConfig(), newFakeCoord(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CheckWrite("nope"); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("err = %v", err)
	}
}

func TestTopology(t *testing.T) {
	coord := newFakeCoord()
	coord.set(cluster.ShardState{Shard: "app", Term: 3, Primary: "n1", Stale: []string{"n0"}})
	m, err := New(testConfig(), coord, Options{})
	if err != nil {
		t.Fatal(err)
	}
	topo, ok := m.Topology("app")
	if !ok || topo.Primary.Name != "n1" || len(topo.Replicas) != 1 || topo.Replicas[0].Name != "n2" || len(topo.Stale) != 1 || topo.Stale[0].Name != "n0" {
		t.Fatalf("topology = %+v", topo)
	}
	if p, ok := m.Primary("app"); !ok || p.Node != "n1" || p.Term != 3 {
		t.Fatalf("primary = %+v", p)
	}
}

func BenchmarkCheckWrite(b *testing.B) {
	coord := newFakeCoord()
	coord.set(cluster.ShardState{Shard: "app", Term: 3, Primary: "n1"})
	m, err := New(testConfig(), coord, Options{})
	if err != nil {
		b.Fatal(err)
	}
	m.byName["app"].verified.Store(&verification{term: 3, node: "n1", ok: true})
	m.rebuildRoutes()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.CheckWrite("app"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCheckWriteFenced(b *testing.B) {
	coord := newFakeCoord()
	coord.set(cluster.ShardState{Shard: "app", Term: 3, Primary: "n1"})
	coord.lease.Store(false)
	m, err := New(testConfig(), coord, Options{})
	if err != nil {
		b.Fatal(err)
	}
	m.byName["app"].verified.Store(&verification{term: 3, node: "n1", ok: true})
	m.rebuildRoutes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.CheckWrite("app"); err == nil {
			b.Fatal("not fenced")
		}
	}
}
