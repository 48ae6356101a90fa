package balancer

// p2c is power of two random choices on peak-EWMA latency: draw two distinct
// eligible members uniformly and keep the lower
//
//	estimate(now) × (in-flight+1) / (weight × ramp)
//
// where estimate decays toward the pool's mean latency while a member is not
// sampled. A member with nothing in flight whose last sample is older than
// LatencyDecay (or that has none) costs 0: it wins one probe, whose result
// then judges it. So a member that was slow is probed again about once per
// LatencyDecay instead of being starved, even at low concurrency where small
// cost differences would otherwise always go the same way. Ties keep the
// first draw.
type p2c struct{}

var _ policy = (*p2c)(nil)

func newP2C(*snapshot) policy { return &p2c{} }

func (p *p2c) pick(s *snapshot, info PickInfo, now int64, panicking bool) int {
	n := len(s.backends)
	a := -1
	for range maxDraws {
		if i := uniform(s.bal.rnd(), n); s.eligible(i, info.Exclude, now, panicking) {
			a = i
			break
		}
	}
	if a < 0 {
		return p.scan(s, info, now, panicking)
	}
	if n == 1 {
		return a
	}
	mean := s.bal.meanLatency()
	for range maxDraws {
		j := uniform(s.bal.rnd(), n-1)
		if j >= a {
			j++
		}
		if s.eligible(j, info.Exclude, now, panicking) {
			if p.cost(s, j, now, mean, panicking) < p.cost(s, a, now, mean, panicking) {
				return j
			}
			return a
		}
	}
	return a
}

// scan is the fallback when random draws keep hitting ineligible members: the
// cheapest eligible member overall.
func (p *p2c) scan(s *snapshot, info PickInfo, now int64, panicking bool) int {
	mean := s.bal.meanLatency()
	best, bestCost := -1, 0.0
	for i := range s.backends {
		if !s.eligible(i, info.Exclude, now, panicking) {
			continue
		}
		if c := p.cost(s, i, now, mean, panicking); best < 0 || c < bestCost {
			best, bestCost = i, c
		}
	}
	return best
}

func (p *p2c) cost(s *snapshot, i int, now int64, mean float64, panicking bool) float64 {
	b := s.backends[i]
	inflight := b.inflight.Load()
	if inflight == 0 && now-b.lat.stamp.Load() > int64(s.bal.tau) {
		return 0 // stale: probe it
	}
	est := max(b.lat.estimate(now, s.bal.tau, mean), 1) // 1ns floor keeps load in play
	w := float64(s.weights[i])
	if !panicking {
		w *= s.ramp(b, now)
	}
	return est * float64(inflight+1) / w
}
