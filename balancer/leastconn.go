package balancer

import "sync/atomic"

// leastConn picks the eligible member with the lowest (in-flight+1)/weight,
// the weight scaled by the slow-start ramp. The scan starts at a rotating
// offset, so ties (typically all idle) are broken round-robin. O(n) per pick.
type leastConn struct {
	next atomic.Uint64
}

var _ policy = (*leastConn)(nil)

func newLeastConn(s *snapshot) policy {
	p := &leastConn{}
	p.next.Store(s.bal.rnd())
	return p
}

func (p *leastConn) pick(s *snapshot, info PickInfo, now int64, panicking bool) int {
	n := len(s.backends)
	start := int(p.next.Add(1) % uint64(n))
	best, bestScore := -1, 0.0
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		if !s.eligible(i, info.Exclude, now, panicking) {
			continue
		}
		b := s.backends[i]
		w := float64(s.weights[i])
		if !panicking {
			w *= s.ramp(b, now)
		}
		score := float64(b.inflight.Load()+1) / w
		if best < 0 || score < bestScore {
			best, bestScore = i, score
		}
	}
	return best
}
