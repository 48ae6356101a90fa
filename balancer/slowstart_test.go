package balancer

import (
	"testing"
	"time"
)

// TestSlowStartRamp: backend 0 of four equal ones comes back at t0 with a 10s
// slow start. Its effective weight is 10% at t0, 55% at +5s and 100% from
// +10s, so its share is f/(3+f).
func TestSlowStartRamp(t *testing.T) {
	const slow = 10 * time.Second
	ramp := func(f float64) float64 { return f / (3 + f) }
	phases := []struct {
		at   time.Duration
		want float64
	}{
		{0, ramp(0.1)},
		{slow / 2, ramp(0.55)},
		{slow, ramp(1)},
		{2 * slow, ramp(1)},
	}
	tests := []struct {
		policy string
		hold   bool
		tol    float64
		noRamp bool
	}{
		{RoundRobin, false, 0.01, false},
		{WeightedRoundRobin, false, 0.01, false},
		{Random, false, 0.02, false},
		{LeastConn, true, 0.01, false},
		{P2CEWMA, true, 0.02, false},
		{ConsistentHash, false, 0.02, true}, // affinity wins: no ramp
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			cfg := testConfig(tt.policy)
			cfg.SlowStart = slow
			pool := testPool(1, 1, 1, 1)
			b, clk := newTestBalancer(t, cfg, pool)
			t0 := clk.Now()
			pool[0].SetHealthy(false, t0.Add(-time.Minute))
			pool[0].SetHealthy(true, t0)
			for _, ph := range phases {
				clk.ns.Store(t0.Add(ph.at).UnixNano())
				got := shares(t, b, pool, 10000, tt.hold, tt.policy == ConsistentHash)[0]
				want := ph.want
				if tt.noRamp {
					want = 0.25
				}
				t.Logf("at +%v: share %.4f, want %.4f", ph.at, got, want)
				if got < want-tt.tol || got > want+tt.tol {
					t.Errorf("at +%v: share = %.4f, want %.4f ± %.2f", ph.at, got, want, tt.tol)
				}
			}
		})
	}
}

func TestSlowStartOnlyBackendStillPicked(t *testing.T) {
	for _, policy := range Policies() {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(policy)
			cfg.SlowStart = time.Minute
			pool := testPool(1, 1)
			b, clk := newTestBalancer(t, cfg, pool)
			pool[0].SetHealthy(false, clk.Now())
			pool[0].SetHealthy(true, clk.Now())
			pool[1].SetHealthy(false, clk.Now())
			for range 100 {
				r, err := b.Pick(PickInfo{Key: []byte("k")})
				if err != nil || r.Backend != pool[0] {
					t.Fatalf("Pick = %v, %v; want the ramping backend, the only one up", r.Backend, err)
				}
				r.Done(nil, time.Millisecond)
			}
		})
	}
}

func TestSlowStartAfterEjection(t *testing.T) {
	cfg := testConfig(WeightedRoundRobin)
	cfg.SlowStart = 10 * time.Second
	pool := testPool(1, 1, 1, 1)
	b, clk := newTestBalancer(t, cfg, pool)
	pool[0].Eject(clk.Now().Add(30 * time.Second))
	clk.Advance(30 * time.Second) // ejection just ended: ramp at 10%
	if got := shares(t, b, pool, 10000, false, false)[0]; got > 0.04 {
		t.Errorf("share right after ejection = %.4f, want ≈ %.4f", got, 0.1/3.1)
	}
}
