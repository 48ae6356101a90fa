package balancer

import (
	"math/bits"
	"slices"
)

// Policy names, as written in Config.Policy.
const (
	// RoundRobin cycles through members in order, ignoring weights.
	RoundRobin = "round_robin"
	// WeightedRoundRobin is nginx's smooth weighted round robin, precomputed
	// per snapshot as a sequence indexed by an atomic counter.
	WeightedRoundRobin = "weighted_round_robin"
	// LeastConn picks the lowest (in-flight+1)/weight, rotating among ties.
	// It scans every member: O(n) per pick.
	LeastConn = "least_conn"
	// P2CEWMA draws two members at random and keeps the one with the lower
	// peak-EWMA latency × (in-flight+1) / weight.
	P2CEWMA = "p2c_ewma"
	// ConsistentHash maps PickInfo.Key to a member by weighted rendezvous
	// hashing (xxhash): adding one member to N moves about 1/(N+1) of the
	// keys, all to the new member, and an unavailable member's keys go to
	// their next-ranked member, deterministically.
	ConsistentHash = "consistent_hash"
	// Random picks a member at random in proportion to its weight.
	Random = "random"
)

// policy is one algorithm over one snapshot. pick returns the index of an
// eligible member of s (see snapshot.eligible) or -1. It is called
// concurrently and must not block or allocate.
type policy interface {
	pick(s *snapshot, info PickInfo, now int64, panicking bool) int
}

// newPolicy precomputes a policy for a freshly built snapshot.
type newPolicy func(s *snapshot) policy

// policies is the explicit name→constructor table; Config.Validate accepts
// exactly these names.
var policies = map[string]newPolicy{
	RoundRobin:         newRoundRobin,
	WeightedRoundRobin: newWeightedRoundRobin,
	LeastConn:          newLeastConn,
	P2CEWMA:            newP2C,
	ConsistentHash:     newConsistentHash,
	Random:             newRandom,
	StickyCookie:       newSticky,
}

// Policies returns the policy names, sorted.
func Policies() []string {
	names := make([]string, 0, len(policies))
	for name := range policies {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// uniform maps a random r onto [0, n) without division (Lemire).
func uniform(r uint64, n int) int {
	hi, _ := bits.Mul64(r, uint64(n))
	return int(hi)
}
