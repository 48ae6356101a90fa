package balancer

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestDistribution(t *testing.T) {
	const picks = 10000
	tests := []struct {
		policy  string
		weights []int
		hold    bool // keep picks in flight (load-based policies)
		want    []float64
		tol     float64
	}{
		{RoundRobin, []int{1, 1, 1, 1}, false, weightShares(1, 1, 1, 1), 0.001},
		{RoundRobin, []int{1, 2, 3, 4}, false, weightShares(1, 1, 1, 1), 0.001}, // ignores weights
		{WeightedRoundRobin, []int{1, 2, 3, 4}, false, weightShares(1, 2, 3, 4), 0.001},
		{WeightedRoundRobin, []int{5, 1, 1}, false, weightShares(5, 1, 1), 0.001},
		{WeightedRoundRobin, []int{3, 3, 3}, false, weightShares(1, 1, 1), 0.001},
		{Random, []int{1, 1, 1, 1}, false, weightShares(1, 1, 1, 1), 0.02},
		{Random, []int{1, 2, 3, 4}, false, weightShares(1, 2, 3, 4), 0.02},
		{LeastConn, []int{1, 1, 1, 1}, false, weightShares(1, 1, 1, 1), 0.001}, // idle: ties rotate
		{LeastConn, []int{1, 1, 1, 1}, true, weightShares(1, 1, 1, 1), 0.001},
		{LeastConn, []int{1, 2, 3, 4}, true, weightShares(1, 2, 3, 4), 0.01},
		{P2CEWMA, []int{1, 1, 1, 1}, true, weightShares(1, 1, 1, 1), 0.01},
		{P2CEWMA, []int{1, 2, 3, 4}, true, weightShares(1, 2, 3, 4), 0.03},
		{ConsistentHash, []int{1, 1, 1, 1}, false, weightShares(1, 1, 1, 1), 0.02},
		{ConsistentHash, []int{1, 2, 3, 4}, false, weightShares(1, 2, 3, 4), 0.02},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v/hold=%v", tt.policy, tt.weights, tt.hold), func(t *testing.T) {
			pool := testPool(tt.weights...)
			b, _ := newTestBalancer(t, testConfig(tt.policy), pool)
			got := shares(t, b, pool, picks, tt.hold, tt.policy == ConsistentHash)
			checkShares(t, got, tt.want, tt.tol)
		})
	}
}

func TestSmoothSequence(t *testing.T) {
	tests := []struct {
		weights []uint64
		want    []int32
	}{
		{[]uint64{5, 1, 1}, []int32{0, 0, 1, 0, 2, 0, 0}}, // nginx's example
		{[]uint64{2, 2, 2}, []int32{0, 1, 2}},             // GCD reduced
		{[]uint64{1, 3}, []int32{1, 0, 1, 1}},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := smoothSequence(tt.weights); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("smoothSequence(%v) = %v, want %v", tt.weights, got, tt.want)
		}
	}
	if got := len(smoothSequence([]uint64{maxWeight, maxWeight - 1, 1})); got > maxSequence+3 {
		t.Errorf("huge weights give a %d-long sequence, want <= ~%d", got, maxSequence)
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	pool := testPool(1, 1, 1)
	b, _ := newTestBalancer(t, testConfig(LeastConn), pool)
	pool[0].inflight.Store(5)
	pool[2].inflight.Store(1)
	p := &picker{t: t, b: b}
	defer p.release()
	for i := range 20 {
		if got := p.pick(PickInfo{}, false, time.Millisecond); got != pool[1] {
			t.Fatalf("pick %d (released) = %s, want the idle %s", i, got.ID, pool[1].ID)
		}
	}
	// Held picks fill pool[1] up to the others, then all share.
	got := []*Backend{p.pick(PickInfo{}, true, 0), p.pick(PickInfo{}, true, 0)}
	if got[0] != pool[1] || got[1] == pool[0] {
		t.Errorf("held picks = %s, %s; want %s first and never the busiest", got[0].ID, got[1].ID, pool[1].ID)
	}
}

func TestExcludeOnRetry(t *testing.T) {
	for _, policy := range Policies() {
		t.Run(policy, func(t *testing.T) {
			for _, panicMode := range []bool{false, true} {
				cfg := testConfig(policy)
				cfg.PanicMode = panicMode
				pool := testPool(1, 5, 1)
				b, _ := newTestBalancer(t, cfg, pool)
				for i := range 200 {
					info := PickInfo{Key: fmt.Appendf(nil, "k%d", i%7)}
					first, err := b.Pick(info)
					if err != nil {
						t.Fatal(err)
					}
					first.Done(errors.New("boom"), time.Millisecond)
					info.Exclude = first.Backend
					retry, err := b.Pick(info)
					if err != nil {
						t.Fatal(err)
					}
					retry.Done(nil, time.Millisecond)
					if retry.Backend == first.Backend {
						t.Fatalf("panic=%v: retry picked %s again", panicMode, first.Backend.ID)
					}
				}
				single := testPool(1)
				b.Update(single)
				if _, err := b.Pick(PickInfo{Key: []byte("k"), Exclude: single[0]}); !errors.Is(err, ErrNoBackend) {
					t.Errorf("panic=%v: only member excluded: err = %v, want ErrNoBackend", panicMode, err)
				}
			}
		})
	}
}

func TestPanicMode(t *testing.T) {
	for _, policy := range Policies() {
		t.Run(policy, func(t *testing.T) {
			for _, panicMode := range []bool{false, true} {
				cfg := testConfig(policy)
				cfg.PanicMode = panicMode
				pool := testPool(1, 1, 1, 1)
				b, clk := newTestBalancer(t, cfg, pool)
				pool[0].SetHealthy(false, clk.Now())
				pool[1].Eject(clk.Now().Add(time.Minute))
				pool[2].SetHealthy(false, clk.Now())
				pool[3].SetDraining(true)
				info := PickInfo{Key: []byte("user-1")}
				seen := map[*Backend]bool{}
				for range 100 {
					r, err := b.Pick(info)
					if !panicMode {
						if !errors.Is(err, ErrNoBackend) {
							t.Fatalf("no panic mode: Pick = %v, %v; want ErrNoBackend", r.Backend, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("panic mode: %v", err)
					}
					seen[r.Backend] = true
					r.Done(nil, time.Millisecond)
					info.Key = fmt.Appendf(info.Key[:0], "user-%d", len(seen)+len(info.Key))
				}
				if panicMode && (seen[pool[3]] || len(seen) == 0) {
					t.Errorf("panic mode picked %v; want only non-draining backends", seen)
				}
				pool[1].SetDraining(true)
				pool[0].SetDraining(true)
				pool[2].SetDraining(true)
				if _, err := b.Pick(info); !errors.Is(err, ErrNoBackend) {
					t.Errorf("all draining: err = %v, want ErrNoBackend", err)
				}
			}
		})
	}
}

func TestStateChangesNeedNoUpdate(t *testing.T) {
	for _, policy := range Policies() {
		t.Run(policy, func(t *testing.T) {
			pool := testPool(1, 1)
			b, clk := newTestBalancer(t, testConfig(policy), pool)
			p := &picker{t: t, b: b}
			info := PickInfo{Key: []byte("k")}
			pool[0].SetHealthy(false, clk.Now())
			pool[1].Eject(clk.Now().Add(10 * time.Second))
			if _, err := b.Pick(info); !errors.Is(err, ErrNoBackend) {
				t.Fatalf("both out: err = %v", err)
			}
			clk.Advance(10 * time.Second) // ejection expires by itself
			for range 20 {
				if got := p.pick(info, false, time.Millisecond); got != pool[1] {
					t.Fatalf("after ejection: picked %s, want %s", got.ID, pool[1].ID)
				}
			}
			pool[0].SetHealthy(true, clk.Now())
			pool[1].SetDraining(true)
			for range 20 {
				if got := p.pick(info, false, time.Millisecond); got != pool[0] {
					t.Fatalf("after recovery and drain: picked %s, want %s", got.ID, pool[0].ID)
				}
			}
		})
	}
}

func TestUnavailableShareSpreadsEvenly(t *testing.T) {
	// A down member's share must go to all others, not double its neighbour.
	for _, policy := range []string{RoundRobin, WeightedRoundRobin, Random} {
		t.Run(policy, func(t *testing.T) {
			pool := testPool(1, 1, 1, 1)
			b, clk := newTestBalancer(t, testConfig(policy), pool)
			pool[1].SetHealthy(false, clk.Now())
			got := shares(t, b, pool, 9000, false, false)
			checkShares(t, got, []float64{1. / 3, 0, 1. / 3, 1. / 3}, 0.02)
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	pool := testPool(1, 1)
	pool[0].SetMaxInFlight(3)
	b, _ := newTestBalancer(t, testConfig(RoundRobin), pool)
	p := &picker{t: t, b: b}
	defer p.release()
	for range 20 {
		p.pick(PickInfo{}, true, 0)
	}
	if got := pool[0].InFlight(); got != 3 {
		t.Errorf("pool[0] in flight = %d, want its MaxInFlight 3", got)
	}
}

func TestEmptyAndUpdate(t *testing.T) {
	b, err := New(Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Policy() != RoundRobin {
		t.Errorf("default policy = %q", b.Policy())
	}
	if _, err := b.Pick(PickInfo{}); !errors.Is(err, ErrNoBackend) {
		t.Errorf("no members: err = %v", err)
	}
	pool := testPool(1, 1)
	b.Update([]*Backend{pool[0], nil, pool[1], pool[0]})
	if got := b.Backends(); len(got) != 2 || got[0] != pool[0] || got[1] != pool[1] {
		t.Errorf("Backends = %v, want the two members once each", got)
	}
	var zero PickResult
	zero.Done(nil, time.Second) // no-op, must not panic
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{Policy: "fastest"}, Options{}); err == nil {
		t.Fatal("New accepted an unknown policy")
	}
}

func TestDoneReleasesInFlight(t *testing.T) {
	pool := testPool(1)
	b, _ := newTestBalancer(t, testConfig(RoundRobin), pool)
	r1, _ := b.Pick(PickInfo{})
	r2, _ := b.Pick(PickInfo{})
	if got := pool[0].InFlight(); got != 2 {
		t.Fatalf("in flight = %d, want 2", got)
	}
	r1.Done(nil, 3*time.Millisecond)
	r2.Done(errors.New("reset"), time.Millisecond)
	if got := pool[0].InFlight(); got != 0 {
		t.Errorf("in flight after Done = %d, want 0", got)
	}
	if got := pool[0].Latency(); got < 3*time.Millisecond {
		t.Errorf("latency after a 3ms sample and a fast failure = %v, want >= 3ms", got)
	}
}

func TestConcurrentPicksWhileUpdating(t *testing.T) {
	for _, policy := range Policies() {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(policy)
			cfg.PanicMode = true
			cfg.SlowStart = time.Second
			setA, setB := testPool(1, 2, 3), testPool(2, 2)
			all := map[*Backend]bool{}
			for _, be := range append(append([]*Backend{}, setA...), setB...) {
				all[be] = true
			}
			b, err := New(cfg, Options{}) // real clock and rand
			if err != nil {
				t.Fatal(err)
			}
			b.Update(setA)

			const workers, picks = 4, 2000
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					var prev *Backend
					for i := range picks {
						r, err := b.Pick(PickInfo{Key: fmt.Appendf(nil, "%d-%d", w, i%50), Exclude: prev})
						if err != nil {
							continue // all excluded or draining for a moment
						}
						if !all[r.Backend] {
							errs <- fmt.Errorf("picked a backend from no set: %v", r.Backend.ID)
							return
						}
						prev = r.Backend
						r.Done(nil, time.Duration(i%7)*time.Millisecond)
					}
				})
			}
			for i := range 500 {
				if i%2 == 0 {
					b.Update(setB)
				} else {
					b.Update(setA)
				}
				setA[i%3].SetHealthy(i%4 != 0, time.Now())
				setB[i%2].Eject(time.Now().Add(time.Duration(i%3) * time.Millisecond))
				setA[0].SetDraining(i%5 == 0)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for be := range all {
				if n := be.InFlight(); n != 0 {
					t.Errorf("%s: %d still in flight", be.ID, n)
				}
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, policy := range Policies() {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(policy)
			cfg.SlowStart = time.Minute
			pool := testPool(1, 2, 3, 4, 5, 6, 7, 8)
			b, clk := newTestBalancer(t, cfg, pool)
			pool[2].SetHealthy(false, clk.Now())
			pool[2].SetHealthy(true, clk.Now()) // ramping
			pool[5].SetHealthy(false, clk.Now())
			key := []byte("user-1234")
			allocs := testing.AllocsPerRun(1000, func() {
				r, err := b.Pick(PickInfo{Key: key, Exclude: pool[0]})
				if err != nil {
					t.Fatal(err)
				}
				r.Done(nil, time.Millisecond)
			})
			if allocs != 0 {
				t.Errorf("Pick+Done allocates %.1f times per call, want 0", allocs)
			}
		})
	}
}
