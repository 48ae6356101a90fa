package balancer

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestPeakEWMA(t *testing.T) {
	const tau = float64(10 * time.Second)
	ms := float64(time.Millisecond)
	t0 := int64(1e18)
	tests := []struct {
		name    string
		samples []float64 // one per second from t0
		readAt  time.Duration
		neutral float64
		want    float64
		tol     float64
	}{
		{"no sample is neutral", nil, 0, 7 * ms, 7 * ms, 0},
		{"first sample", []float64{5 * ms}, time.Second, 0, 5 * ms, 0},
		{"peak jumps up at once", []float64{1 * ms, 1 * ms, 50 * ms}, 3 * time.Second, 1 * ms, 50 * ms, 0},
		// one second later a 1ms sample moves 1-e^-0.1 ≈ 9.5% of the way down
		{"lower samples blend in", []float64{50 * ms, 1 * ms}, 2 * time.Second, 50 * ms, 50*ms - 49*ms*(1-math.Exp(-0.1)), ms / 100},
		{"idle decays to neutral", []float64{100 * ms}, time.Second + 100*time.Second, 2 * ms, 2 * ms, ms / 100},
		{"one tau of idle", []float64{12 * ms}, time.Second + 10*time.Second, 2 * ms, 2*ms + 10*ms/math.E, ms / 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l latency
			for i, s := range tt.samples {
				l.observe(s, t0+int64(i+1)*int64(time.Second), tau, tt.neutral)
			}
			got := l.estimate(t0+int64(tt.readAt), tau, tt.neutral)
			if math.Abs(got-tt.want) > tt.tol {
				t.Errorf("estimate = %.4fms, want %.4fms", got/ms, tt.want/ms)
			}
		})
	}
}

// TestP2CAvoidsSlowThenRecovers runs a closed loop with 8 requests in flight:
// a backend that answers 100× slower gets (almost) nothing; once it is fast
// again it is probed after about one LatencyDecay (10s), its estimate comes
// down over a few more, and it gets its share back.
func TestP2CAvoidsSlowThenRecovers(t *testing.T) {
	pool := testPool(1, 1, 1)
	b, clk := newTestBalancer(t, testConfig(P2CEWMA), pool)
	slow := pool[0]
	latencyOf := map[*Backend]time.Duration{pool[0]: 100 * time.Millisecond, pool[1]: time.Millisecond, pool[2]: time.Millisecond}

	var window []PickResult
	run := func(n int) float64 {
		hits := 0
		for range n {
			r, err := b.Pick(PickInfo{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Backend == slow {
				hits++
			}
			window = append(window, r)
			clk.Advance(time.Millisecond)
			if len(window) > 8 {
				done := window[0]
				window = window[1:]
				done.Done(nil, latencyOf[done.Backend])
			}
		}
		return float64(hits) / float64(n)
	}

	run(300) // warm up: every backend gets sampled
	if got := run(5000); got > 0.01 {
		t.Errorf("slow backend share = %.3f, want < 1%%", got)
	}
	latencyOf[slow] = time.Millisecond // recovered, but nobody asks it yet
	if got := run(2000); got > 0.01 {
		t.Errorf("share right after recovery = %.3f, want < 1%% (estimate still high)", got)
	}
	// Probed after one LatencyDecay (10s at 1ms per pick); lower samples then
	// pull the estimate down with time constant LatencyDecay.
	run(40000)
	if got := slow.Latency(); got > 1500*time.Microsecond {
		t.Errorf("slow backend estimate = %v after recovery, want ≈ 1ms", got)
	}
	got := run(6000)
	t.Logf("share after recovery = %.3f, estimate %v", got, slow.Latency())
	if got < 0.25 {
		t.Errorf("share after recovery = %.3f, want ≈ 1/3", got)
	}
}

// TestP2CProbesStaleAtLowConcurrency: with one request at a time, cost
// differences of a few percent always go the same way; the stale probe still
// refreshes every backend's estimate about once per LatencyDecay.
func TestP2CProbesStaleAtLowConcurrency(t *testing.T) {
	pool := testPool(1, 1, 1)
	b, clk := newTestBalancer(t, testConfig(P2CEWMA), pool)
	latencyOf := map[*Backend]time.Duration{pool[0]: 2 * time.Millisecond, pool[1]: time.Millisecond, pool[2]: time.Millisecond}
	last := map[*Backend]time.Time{}
	for range 60000 { // 60s, one request per ms
		r, err := b.Pick(PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond)
		last[r.Backend] = clk.Now()
		r.Done(nil, latencyOf[r.Backend])
	}
	for _, be := range pool {
		if age := clk.Now().Sub(last[be]); age > 11*time.Second {
			t.Errorf("%s last picked %v ago, want within ~LatencyDecay", be.ID, age)
		}
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	pool := testPool(1, 1)
	b, _ := newTestBalancer(t, testConfig(P2CEWMA), pool)
	pool[0].inflight.Store(10)
	for range 50 {
		r, err := b.Pick(PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		r.Done(nil, time.Millisecond)
		if r.Backend != pool[1] {
			t.Fatalf("picked the loaded backend")
		}
	}
}

// TestFastFailuresDoNotAttract: a backend that fails in 10µs must not look
// faster than healthy 5ms ones (the LBClient trap).
func TestFastFailuresDoNotAttract(t *testing.T) {
	pool := testPool(1, 1, 1)
	b, clk := newTestBalancer(t, testConfig(P2CEWMA), pool)
	broken := pool[2]
	hits := 0
	for i := range 3000 {
		r, err := b.Pick(PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond)
		if r.Backend == broken {
			r.Done(errors.New("connection refused"), 10*time.Microsecond)
			if i >= 300 {
				hits++
			}
			continue
		}
		r.Done(nil, 5*time.Millisecond)
	}
	if share := float64(hits) / 2700; share > 0.02 {
		t.Errorf("fast-failing backend share = %.3f, want < 2%%", share)
	}
}

func TestFailureLatencyOption(t *testing.T) {
	pool := testPool(1)
	clk := newFakeClock()
	b, err := New(testConfig(P2CEWMA), Options{Clock: clk.Now, FailureLatency: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b.Update(pool)
	r, _ := b.Pick(PickInfo{})
	r.Done(errors.New("timeout"), time.Millisecond)
	if got := pool[0].Latency(); got != 2*time.Second {
		t.Errorf("latency after a fast failure = %v, want the 2s floor", got)
	}
}

func TestPoolMeanSeededOnUpdate(t *testing.T) {
	pool := testPool(1, 1)
	pool[0].lat.observe(float64(4*time.Millisecond), 1, float64(time.Second), 0)
	pool[1].lat.observe(float64(8*time.Millisecond), 1, float64(time.Second), 0)
	b, _ := newTestBalancer(t, testConfig(P2CEWMA), pool)
	if got := time.Duration(b.meanLatency()); got != 6*time.Millisecond {
		t.Errorf("pool mean = %v, want the members' mean 6ms", got)
	}
}
