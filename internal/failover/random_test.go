package failover_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/cluster/clustertest"
	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/pgtest"
)

// TestRandomFaults mixes kills and hangs of the primary, partitions of
// the proxies (alone or together with a dead primary) and switchovers,
// under a write load, for a bounded number of seeded rounds. Each dead or
// replaced primary is rewound and rejoined before the next round. The
// checker: no acknowledged write is lost (synchronous replication), and no
// two nodes accepted writes in the same term (cross-checked with the epoch
// table).
//
// TIERGATE_FAULT_SEED reproduces a run; TIERGATE_FAULT_ROUNDS changes the
// number of rounds (default 10; 4 with -short).
func TestRandomFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TIERGATE_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	rounds := 10
	if testing.Short() {
		rounds = 4
	}
	if s := os.Getenv("TIERGATE_FAULT_ROUNDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		rounds = v
	}
	t.Logf("seed %d, %d rounds", seed, rounds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with TIERGATE_FAULT_SEED=%d TIERGATE_FAULT_ROUNDS=%d", seed, rounds)
		}
	})
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))

	h := newHarness(t, pgtest.Spec{Replicas: 2, Sync: true}, nil)
	w := h.startWriter(2)
	w.waitAcks(20, 10*time.Second)
	ctx := testCtx(t, 10*time.Minute)
	var outages []time.Duration
	st := h.waitTerm(10*time.Second, 0)
	for round := 1; round <= rounds; round++ {
		old := st.Primary
		var others []string
		for _, n := range h.pg.Nodes {
			if n.Name != old {
				others = append(others, n.Name)
			}
		}
		proxy := h.names[rng.IntN(len(h.names))]
		var desc string
		replaced, planned := true, false
		start := time.Now()
		switch fault := rng.IntN(5); fault {
		case 0:
			desc = "kill the primary"
			if err := h.node(old).Kill(); err != nil {
				t.Fatal(err)
			}
			st = h.waitTerm(30*time.Second, st.Term)
		case 1:
			desc = "hang the primary"
			frozen := freeze(t, h.node(old))
			st = h.waitTerm(30*time.Second, st.Term)
			thaw(frozen)
		case 2:
			desc = "isolate proxy " + proxy
			h.cl.Faults.Isolate(proxy)
			clustertest.Eventually(t, h.tm.Lease+2*time.Second, func() error {
				if _, err := h.mgr(proxy).CheckWrite(shard); !errors.Is(err, failover.ErrFenced) {
					return fmt.Errorf("isolated %s still lets writes through", proxy)
				}
				return nil
			})
			h.cl.Faults.Heal()
			replaced = false
		case 3:
			desc = "isolate proxy " + proxy + " and kill the primary"
			h.cl.Faults.Isolate(proxy)
			if err := h.node(old).Kill(); err != nil {
				t.Fatal(err)
			}
			var rest []string
			for _, n := range h.names {
				if n != proxy {
					rest = append(rest, n)
				}
			}
			st = h.waitTerm(30*time.Second, st.Term, rest...)
			if _, err := h.mgr(proxy).CheckWrite(shard); !errors.Is(err, failover.ErrFenced) {
				t.Fatalf("round %d: isolated proxy %s lets writes through after the failover", round, proxy)
			}
			h.cl.Faults.Heal()
			st = h.waitTerm(30*time.Second, st.Term-1)
		case 4:
			to := others[rng.IntN(len(others))]
			desc, planned = "switchover to "+to, true
			if err := h.onLeader(func(m *failover.Manager) error { return m.SwitchoverTo(ctx, shard, to) }); err != nil {
				t.Fatalf("round %d: %s: %v", round, desc, err)
			}
			st = h.waitTerm(10*time.Second, st.Term)
		}
		if replaced {
			resumed := w.waitAckAfter(start, old, 30*time.Second)
			if st.Primary == old {
				t.Fatalf("round %d (%s): primary still %s", round, desc, old)
			}
			if !planned {
				outages = append(outages, resumed.Sub(start))
			}
			t.Logf("round %d: %s: new primary %s (term %d), writes resumed after %s", round, desc, st.Primary, st.Term, resumed.Sub(start).Round(time.Millisecond))
			rj := time.Now()
			if err := h.onLeader(func(m *failover.Manager) error { return m.Rejoin(ctx, shard, old) }); err != nil {
				t.Fatalf("round %d: rejoin %s: %v", round, old, err)
			}
			h.waitStreaming(20*time.Second, st.Primary, old)
			t.Logf("round %d: %s rejoined in %s", round, old, time.Since(rj).Round(time.Millisecond))
		} else {
			t.Logf("round %d: %s: fenced, healed", round, desc)
		}
		h.waitWritable(30*time.Second, h.mgrs...)
		w.waitAcks(20, 15*time.Second)
		st = h.waitTerm(10*time.Second, 0)
	}
	w.halt()
	w.check(st.Primary, true)
	t.Logf("write outage after a primary failure: %s", durations(outages))
}

// onLeader runs an admin command on the current leader, retrying when the
// leadership moves under it.
func (h *harness) onLeader(fn func(*failover.Manager) error) error {
	var err error
	for range 5 {
		m, _ := h.leader()
		if err = fn(m); !errors.Is(err, failover.ErrNotLeader) {
			return err
		}
	}
	return err
}
