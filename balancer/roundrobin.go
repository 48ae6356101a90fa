package balancer

import "sync/atomic"

// maxSequence bounds the precomputed smooth weighted round-robin sequence;
// larger weight sums are scaled down (losing precision below 1/maxSequence).
const maxSequence = 1 << 14

// roundRobin cycles through the members, ignoring weights.
type roundRobin struct {
	next atomic.Uint64
}

var (
	_ policy = (*roundRobin)(nil)
	_ drawer = (*roundRobin)(nil)
)

func newRoundRobin(s *snapshot) policy {
	p := &roundRobin{}
	p.next.Store(s.bal.rnd()) // different start per snapshot and per process
	return p
}

func (p *roundRobin) draw(s *snapshot) int {
	return int(p.next.Add(1) % uint64(len(s.backends)))
}

func (p *roundRobin) pick(s *snapshot, info PickInfo, now int64, panicking bool) int {
	return sample(s, p, info, now, panicking)
}

// weightedRoundRobin walks nginx's smooth weighted round-robin sequence, built
// once per snapshot: weights {5,1,1} give a,a,b,a,c,a,a rather than
// a,a,a,a,a,b,c, so no member gets long bursts.
type weightedRoundRobin struct {
	seq  []int32
	next atomic.Uint64
}

var (
	_ policy = (*weightedRoundRobin)(nil)
	_ drawer = (*weightedRoundRobin)(nil)
)

func newWeightedRoundRobin(s *snapshot) policy {
	p := &weightedRoundRobin{seq: smoothSequence(s.weights)}
	p.next.Store(s.bal.rnd())
	return p
}

func (p *weightedRoundRobin) draw(*snapshot) int {
	return int(p.seq[p.next.Add(1)%uint64(len(p.seq))])
}

func (p *weightedRoundRobin) pick(s *snapshot, info PickInfo, now int64, panicking bool) int {
	return sample(s, p, info, now, panicking)
}

// smoothSequence returns one period of smooth weighted round robin over
// weights (reduced by their GCD and scaled to at most about maxSequence
// entries): each step adds every weight to its member's current value, emits
// the member with the largest, and subtracts the total from it.
func smoothSequence(weights []uint64) []int32 {
	n := len(weights)
	if n == 0 {
		return nil
	}
	var g uint64
	for _, w := range weights {
		g = gcd(g, w)
	}
	w := make([]int64, n)
	var total int64
	for i, x := range weights {
		w[i] = int64(x / g)
		total += w[i]
	}
	if total > maxSequence {
		scaled := int64(0)
		for i := range w {
			w[i] = max(1, w[i]*maxSequence/total)
			scaled += w[i]
		}
		total = scaled
	}
	seq := make([]int32, 0, total)
	cur := make([]int64, n)
	for range total {
		best := 0
		for i := range n {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, int32(best))
	}
	return seq
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
