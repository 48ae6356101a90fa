package balancer

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// seqRand is a deterministic splitmix64 stream, safe for concurrent use.
type seqRand struct{ state atomic.Uint64 }

func newSeqRand(seed uint64) *seqRand {
	r := &seqRand{}
	r.state.Store(seed)
	return r
}

func (r *seqRand) Uint64() uint64 { return mix64(r.state.Add(0x9e3779b97f4a7c15)) }

// testPool returns one healthy backend per weight, IDs "10.0.0.<i>:80".
func testPool(weights ...int) []*Backend {
	out := make([]*Backend, len(weights))
	for i, w := range weights {
		addr := fmt.Sprintf("10.0.0.%d:80", i+1)
		out[i] = &Backend{ID: addr, Address: addr, Weight: w}
	}
	return out
}

// newTestBalancer builds a Balancer on a fake clock and a seeded rand and
// gives it backends.
func newTestBalancer(t testing.TB, cfg Config, backends []*Backend) (*Balancer, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	b, err := New(cfg, Options{Clock: clk.Now, Rand: newSeqRand(42).Uint64})
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	b.Update(backends)
	return b, clk
}

// testConfig is a valid Config for policy.
func testConfig(policy string) Config {
	cfg := Config{Policy: policy}
	switch policy {
	case ConsistentHash:
		cfg.HashKey = "header:X-User"
	case StickyCookie:
		cfg.HashKey = "cookie:srv"
	}
	return cfg
}

// picker runs picks the way a test needs them.
type picker struct {
	t    testing.TB
	b    *Balancer
	held []PickResult
}

// pick picks once with info and either releases at once (Done with lat) or,
// when hold, keeps the pick in flight until release.
func (p *picker) pick(info PickInfo, hold bool, lat time.Duration) *Backend {
	p.t.Helper()
	r, err := p.b.Pick(info)
	if err != nil {
		p.t.Fatalf("Pick: %v", err)
	}
	if hold {
		p.held = append(p.held, r)
	} else {
		r.Done(nil, lat)
	}
	return r.Backend
}

func (p *picker) release() {
	for _, r := range p.held {
		r.Done(nil, time.Millisecond)
	}
	p.held = p.held[:0]
}

// shares runs n picks and returns each backend's share of them. Keys are
// distinct per pick when keyed.
func shares(t testing.TB, b *Balancer, backends []*Backend, n int, hold, keyed bool) []float64 {
	t.Helper()
	p := &picker{t: t, b: b}
	defer p.release()
	idx := map[*Backend]int{}
	for i, be := range backends {
		idx[be] = i
	}
	counts := make([]int, len(backends))
	for k := range n {
		var info PickInfo
		if keyed {
			info.Key = fmt.Appendf(nil, "user-%d", k)
		}
		be := p.pick(info, hold, time.Millisecond)
		i, ok := idx[be]
		if !ok {
			t.Fatalf("picked %v, not a member", be.ID)
		}
		counts[i]++
	}
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = float64(c) / float64(n)
	}
	return out
}

func weightShares(weights ...int) []float64 {
	total := 0
	for _, w := range weights {
		total += w
	}
	out := make([]float64, len(weights))
	for i, w := range weights {
		out[i] = float64(w) / float64(total)
	}
	return out
}

func checkShares(t testing.TB, got, want []float64, tol float64) {
	t.Helper()
	t.Logf("shares %.4f (want %.4f)", got, want)
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol {
			t.Errorf("shares = %.3f, want %.3f ± %.3f", got, want, tol)
			return
		}
	}
}
