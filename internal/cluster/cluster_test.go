package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/cluster/clustertest"
)

func TestSingleNodeCluster(t *testing.T) {
	c := clustertest.Start(t, []string{"solo"}, clustertest.Timing{}, false)
	n := c.Leader(t, 10*time.Second)
	clustertest.Eventually(t, 5*time.Second, func() error {
		if !n.LeaseValid() {
			return errors.New("no lease")
		}
		return nil
	})
	ctx := context.Background()
	if err := n.Propose(ctx, 0, cluster.ShardState{Shard: "app", Term: 1, Primary: "db0"}); err != nil {
		t.Fatal(err)
	}
	st, ok := n.State().Shard("app")
	if !ok || st.Term != 1 || st.Primary != "db0" || st.Version == 0 {
		t.Fatalf("state after propose: %+v", st)
	}
	err := n.Propose(ctx, 0, cluster.ShardState{Shard: "app", Term: 1, Primary: "db1"})
	if !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("second bootstrap: err = %v, want ErrConflict", err)
	}
}

func TestThreeNodesReplicateStateAndObservations(t *testing.T) {
	// Encrypted gossip: observations and leases still flow.
	c := clustertest.Start(t, []string{"p1", "p2", "p3"}, clustertest.Timing{EncryptionKey: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, false)
	leader := c.Leader(t, 10*time.Second)
	for _, n := range c.Nodes {
		n.Publish(&cluster.Observations{Nodes: []cluster.NodeObservation{{Shard: "app", Node: "db0", Up: true, CurrentLSN: 42}}})
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Nodes {
			if !n.LeaseValid() {
				return fmt.Errorf("%s has no lease", n.Name())
			}
			if got := len(n.PeerObservations()); got != 2 {
				return fmt.Errorf("%s has observations from %d peers", n.Name(), got)
			}
		}
		return nil
	})
	for _, n := range c.Nodes {
		for from, po := range n.PeerObservations() {
			o, ok := po.Node("app", "db0")
			if !ok || o.CurrentLSN != 42 || po.From != from {
				t.Fatalf("%s: bad observation from %s: %+v", n.Name(), from, po)
			}
		}
	}
	follower := c.Nodes[0]
	if follower == leader {
		follower = c.Nodes[1]
	}
	err := follower.Propose(context.Background(), 0, cluster.ShardState{Shard: "app", Term: 1, Primary: "db0"})
	var nle *cluster.NotLeaderError
	if !errors.As(err, &nle) || nle.Leader != leader.Name() || !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("propose on follower: %v", err)
	}
	if err := leader.Propose(context.Background(), 0, cluster.ShardState{Shard: "app", Term: 1, Primary: "db0"}); err != nil {
		t.Fatal(err)
	}
	waitSameState(t, c.Nodes, 5*time.Second)
}

// TestPartitionFencesIsolatedLeader cuts the leader off: its lease must
// end within one lease period, the other two elect a leader, hold leases
// and commit; after healing all three agree.
func TestPartitionFencesIsolatedLeader(t *testing.T) {
	tm := clustertest.Timing{Lease: time.Second}
	c := clustertest.Start(t, []string{"p1", "p2", "p3"}, tm, false)
	old := c.Leader(t, 10*time.Second)
	ctx := context.Background()
	if err := old.Propose(ctx, 0, cluster.ShardState{Shard: "app", Term: 1, Primary: "db0"}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		for _, n := range c.Nodes {
			if !n.LeaseValid() {
				return fmt.Errorf("%s has no lease", n.Name())
			}
		}
		return nil
	})
	var rest []string
	for _, n := range c.Nodes {
		if n != old {
			rest = append(rest, n.Name())
		}
	}
	cut := time.Now()
	c.Faults.Isolate(old.Name())
	clustertest.Eventually(t, tm.Lease+time.Second, func() error {
		if old.LeaseValid() {
			return errors.New("isolated leader still holds a lease")
		}
		return nil
	})
	if d := time.Since(cut); d > tm.Lease+200*time.Millisecond {
		t.Errorf("isolated leader's lease ended %s after the cut, want within lease %s", d, tm.Lease)
	}
	t.Logf("isolated leader fenced after %s", time.Since(cut).Round(time.Millisecond))
	leader := c.Leader(t, 10*time.Second, rest...)
	st, _ := leader.State().Shard("app")
	next := st.Clone()
	next.Term, next.Primary = 2, "db1"
	if err := leader.Propose(ctx, st.Version, next); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		for _, name := range rest {
			if !c.Node(name).LeaseValid() {
				return fmt.Errorf("%s has no lease", name)
			}
		}
		if old.LeaseValid() {
			return errors.New("isolated node regained a lease")
		}
		return nil
	})
	if st, _ := old.State().Shard("app"); st.Term != 1 {
		t.Fatalf("isolated node applied term %d while cut off", st.Term)
	}
	c.Faults.Heal()
	waitSameState(t, c.Nodes, 15*time.Second)
	clustertest.Eventually(t, 15*time.Second, func() error {
		for _, n := range c.Nodes {
			if !n.LeaseValid() {
				return fmt.Errorf("%s has no lease after healing", n.Name())
			}
			if len(n.Members()) != 3 {
				return fmt.Errorf("%s sees %d members after healing", n.Name(), len(n.Members()))
			}
		}
		return nil
	})
	if st, _ := old.State().Shard("app"); st.Term != 2 || st.Primary != "db1" {
		t.Fatalf("healed node has %+v", st)
	}
}

// TestMinorityCannotCommit: a leader cut off from both followers cannot
// commit, and a follower alone never gets a lease.
func TestMinorityCannotCommit(t *testing.T) {
	c := clustertest.Start(t, []string{"p1", "p2", "p3"}, clustertest.Timing{}, false)
	leader := c.Leader(t, 10*time.Second)
	c.Faults.Isolate(leader.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := leader.Propose(ctx, 0, cluster.ShardState{Shard: "app", Term: 1, Primary: "db0"})
	if err == nil {
		t.Fatal("isolated leader committed a change")
	}
	if _, ok := leader.State().Shard("app"); ok {
		t.Fatal("isolated leader applied an uncommitted change")
	}
}

func waitSameState(t *testing.T, nodes []*cluster.Node, timeout time.Duration) {
	t.Helper()
	clustertest.Eventually(t, timeout, func() error {
		want := nodes[0].State()
		for _, n := range nodes[1:] {
			got := n.State()
			if fmt.Sprint(got.Shards) != fmt.Sprint(want.Shards) {
				return fmt.Errorf("%s has %v, %s has %v", nodes[0].Name(), want.Shards, n.Name(), got.Shards)
			}
		}
		return nil
	})
}
