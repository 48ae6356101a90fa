package balancer

import "math/bits"

// maxDraws bounds how many random or counter draws a sampling policy makes
// before it scans for any eligible member.
const maxDraws = 4

// minRamp is the share of its weight a backend gets when its slow start
// begins.
const minRamp = 0.1

// snapshot is one immutable membership with the policy precomputed for it.
// Only the policy's own atomics (counters) change after it is published.
type snapshot struct {
	bal      *Balancer
	backends []*Backend
	weights  []uint64 // normalized Backend.Weight, same order
	cum      []uint64 // cumulative weights; nil when all weights are equal
	total    uint64
	pol      policy
}

func (b *Balancer) newSnapshot(members []*Backend) *snapshot {
	s := &snapshot{bal: b}
	seen := make(map[*Backend]struct{}, len(members))
	for _, be := range members {
		if be == nil {
			continue
		}
		if _, dup := seen[be]; dup {
			continue
		}
		seen[be] = struct{}{}
		s.backends = append(s.backends, be)
		w := be.weight()
		s.weights = append(s.weights, w)
		s.total += w
	}
	if !s.uniformWeights() {
		s.cum = make([]uint64, len(s.weights))
		var acc uint64
		for i, w := range s.weights {
			acc += w
			s.cum[i] = acc
		}
	}
	s.pol = b.build(s)
	return s
}

func (s *snapshot) uniformWeights() bool {
	for _, w := range s.weights {
		if w != s.weights[0] {
			return false
		}
	}
	return true
}

// eligible reports whether member i may be returned: never Exclude; otherwise
// Available, or in panic mode merely not draining.
func (s *snapshot) eligible(i int, exclude *Backend, now int64, panicking bool) bool {
	b := s.backends[i]
	if b == exclude {
		return false
	}
	if panicking {
		return b.flags.Load()&flagDraining == 0
	}
	return b.available(now)
}

// ramp is b's slow-start factor at now, in [minRamp, 1].
func (s *snapshot) ramp(b *Backend, now int64) float64 {
	total := s.bal.slowStart
	if total <= 0 {
		return 1
	}
	since := b.healthySince.Load()
	if since == 0 {
		return 1
	}
	elapsed := now - since
	switch {
	case elapsed >= total:
		return 1
	case elapsed <= 0:
		return minRamp
	default:
		return minRamp + (1-minRamp)*float64(elapsed)/float64(total)
	}
}

// accept keeps a candidate of a sampling policy with probability ramp.
func (s *snapshot) accept(b *Backend, now int64) bool {
	f := s.ramp(b, now)
	return f >= 1 || float64(s.bal.rnd()>>11) < f*(1<<53)
}

// drawWeighted maps a random r onto a member index in proportion to weight.
func (s *snapshot) drawWeighted(r uint64) int {
	if s.cum == nil {
		return uniform(r, len(s.backends))
	}
	t, _ := bits.Mul64(r, s.total) // uniform in [0, total)
	lo, hi := 0, len(s.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.cum[m] > t {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// drawer yields candidate indices for sample.
type drawer interface {
	draw(s *snapshot) int
}

// sample is the loop shared by the sampling policies: up to maxDraws fresh
// draws, each kept if eligible and (outside panic mode) accepted by the slow
// start ramp; then a scan from the last draw for any eligible member. A
// rejected draw consumes a counter value or random number instead of moving to
// the neighbour, so the rejected member's share is spread evenly.
func sample(s *snapshot, d drawer, info PickInfo, now int64, panicking bool) int {
	n := len(s.backends)
	i := 0
	for range maxDraws {
		i = d.draw(s)
		if s.eligible(i, info.Exclude, now, panicking) && (panicking || s.accept(s.backends[i], now)) {
			return i
		}
	}
	for k := 1; k <= n; k++ {
		j := i + k
		if j >= n {
			j -= n
		}
		if s.eligible(j, info.Exclude, now, panicking) {
			return j
		}
	}
	return -1
}
