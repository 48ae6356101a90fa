package balancer

import (
	"math"

	"github.com/cespare/xxhash/v2"
)

// consistentHash is weighted rendezvous (highest random weight) hashing: the
// key's xxhash is mixed with each member's precomputed ID hash and the
// eligible member with the highest score wins. With equal weights the score
// is the mixed hash; otherwise it is weight / -ln(u), u being the mixed hash
// mapped to (0,1), which gives each member a share proportional to its
// weight.
//
// Properties: the same key maps to the same member while membership and
// availability stay the same; adding a member moves only the keys it now
// wins (about 1/(N+1) of them); an unavailable or excluded member's keys go
// to their next-ranked member, and come back when it returns. O(n) per pick.
// Slow start does not apply. An empty key falls back to a weighted random
// pick.
type consistentHash struct {
	seeds    []uint64  // xxhash of each member's ID
	weights  []float64 // nil when all weights are equal
	fallback random
}

var _ policy = (*consistentHash)(nil)

func newConsistentHash(s *snapshot) policy {
	p := &consistentHash{seeds: make([]uint64, len(s.backends))}
	for i, b := range s.backends {
		p.seeds[i] = xxhash.Sum64String(b.key())
	}
	if s.cum != nil {
		p.weights = make([]float64, len(s.weights))
		for i, w := range s.weights {
			p.weights[i] = float64(w)
		}
	}
	return p
}

func (p *consistentHash) pick(s *snapshot, info PickInfo, now int64, panicking bool) int {
	if len(info.Key) == 0 {
		return p.fallback.pick(s, info, now, panicking)
	}
	h := xxhash.Sum64(info.Key)
	best := -1
	if p.weights == nil {
		var bestScore uint64
		for i, seed := range p.seeds {
			if score := mix64(h ^ seed); (best < 0 || score > bestScore) && s.eligible(i, info.Exclude, now, panicking) {
				best, bestScore = i, score
			}
		}
		return best
	}
	bestScore := 0.0
	for i, seed := range p.seeds {
		u := (float64(mix64(h^seed)>>11) + 0.5) / (1 << 53) // (0,1)
		if score := p.weights[i] / -math.Log(u); (best < 0 || score > bestScore) && s.eligible(i, info.Exclude, now, panicking) {
			best, bestScore = i, score
		}
	}
	return best
}

// mix64 is the splitmix64 finalizer: a bijection that spreads every input bit
// over the output, so key⊕seed scores are independent across members.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
