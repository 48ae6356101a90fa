package balancer

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const hashKeys = 10000

func hashKey(i int) []byte { return fmt.Appendf(nil, "user-%d", i) }

// mapping picks every test key once (released at once) and returns the chosen
// backend's ID per key.
func mapping(t *testing.T, b *Balancer) []string {
	t.Helper()
	out := make([]string, hashKeys)
	for i := range out {
		r, err := b.Pick(PickInfo{Key: hashKey(i)})
		if err != nil {
			t.Fatal(err)
		}
		r.Done(nil, time.Millisecond)
		out[i] = r.Backend.ID
	}
	return out
}

func TestConsistentHashStable(t *testing.T) {
	for _, weights := range [][]int{{1, 1, 1, 1}, {1, 2, 3, 4}} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			pool := testPool(weights...)
			b, _ := newTestBalancer(t, testConfig(ConsistentHash), pool)
			first := mapping(t, b)
			if again := mapping(t, b); !slices.Equal(first, again) {
				t.Fatal("same key, different backend on a second pass")
			}
			// Another Balancer, members in another order: same mapping.
			reversed := slices.Clone(pool)
			slices.Reverse(reversed)
			other, _ := newTestBalancer(t, testConfig(ConsistentHash), reversed)
			if got := mapping(t, other); !slices.Equal(first, got) {
				t.Error("mapping depends on member order")
			}
		})
	}
}

func TestConsistentHashAddMovesOneFifth(t *testing.T) {
	for _, weights := range [][]int{{1, 1, 1, 1, 1}, {2, 2, 2, 2, 2}, {1, 2, 3, 4, 2}} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			pool := testPool(weights...)
			b, _ := newTestBalancer(t, testConfig(ConsistentHash), pool[:4])
			before := mapping(t, b)
			b.Update(pool)
			after := mapping(t, b)

			var total int
			for _, w := range weights {
				total += w
			}
			want := float64(weights[4]) / float64(total) // share the newcomer takes
			moved := 0
			for i := range before {
				if before[i] == after[i] {
					continue
				}
				moved++
				if after[i] != pool[4].ID {
					t.Fatalf("key %d moved %s → %s, not to the new backend", i, before[i], after[i])
				}
			}
			got := float64(moved) / hashKeys
			t.Logf("moved %.4f of keys, want ≈ %.4f", got, want)
			if got < want-0.02 || got > want+0.02 {
				t.Errorf("moved %.4f of keys, want %.4f ± 0.02", got, want)
			}
		})
	}
}

// TestConsistentHashFailover: keys of an unavailable or excluded backend go to
// their next-ranked backend, which is where they would map without it; other
// keys stay; and they come back when it recovers.
func TestConsistentHashFailover(t *testing.T) {
	pool := testPool(1, 1, 1, 1)
	b, clk := newTestBalancer(t, testConfig(ConsistentHash), pool)
	before := mapping(t, b)
	without, _ := newTestBalancer(t, testConfig(ConsistentHash), slices.Delete(slices.Clone(pool), 1, 2))
	next := mapping(t, without)

	pool[1].SetHealthy(false, clk.Now())
	during := mapping(t, b)
	if again := mapping(t, b); !slices.Equal(during, again) {
		t.Fatal("failover target is not deterministic")
	}
	if !slices.Equal(during, next) {
		t.Error("failover does not match the next-ranked backend")
	}
	spread := map[string]int{}
	for i := range before {
		if before[i] == pool[1].ID {
			spread[during[i]]++
		} else if during[i] != before[i] {
			t.Fatalf("key %d of a healthy backend moved", i)
		}
	}
	if len(spread) != 3 {
		t.Errorf("failed backend's keys went to %v, want spread over all 3 others", spread)
	}

	// A retry that excludes the key's backend lands on the same next rank.
	pool[1].SetHealthy(true, clk.Now())
	for i := range 500 {
		if before[i] != pool[1].ID {
			continue
		}
		r, err := b.Pick(PickInfo{Key: hashKey(i), Exclude: pool[1]})
		if err != nil {
			t.Fatal(err)
		}
		r.Done(nil, time.Millisecond)
		if r.Backend.ID != next[i] {
			t.Fatalf("key %d excluded → %s, want next rank %s", i, r.Backend.ID, next[i])
		}
	}
	if after := mapping(t, b); !slices.Equal(before, after) {
		t.Error("keys did not return after recovery")
	}
}

func TestConsistentHashEmptyKeyFallsBack(t *testing.T) {
	pool := testPool(1, 1, 1, 1)
	b, _ := newTestBalancer(t, testConfig(ConsistentHash), pool)
	got := shares(t, b, pool, 4000, false, false)
	checkShares(t, got, weightShares(1, 1, 1, 1), 0.03)
}
