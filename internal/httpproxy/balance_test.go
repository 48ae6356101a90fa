package httpproxy

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDistribution(t *testing.T) {
	const n = 3000
	tests := []struct {
		policy  string
		weights []int
	}{
		{"round_robin", []int{1, 1, 1}},
		{"weighted_round_robin", []int{1, 2, 5}},
		{"random", []int{1, 2, 5}},
		{"least_conn", []int{1, 1, 1}},
		{"p2c_ewma", []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			var bs []*testBackend
			cfg := &Config{Listeners: []ListenerConfig{{Name: "t", Address: "127.0.0.1:0"}}, Upstreams: []UpstreamConfig{{Name: "web"}}}
			cfg.Upstreams[0].Balancer.Policy = tc.policy
			total := 0
			for i, w := range tc.weights {
				b := startBackend(t, fmt.Sprint(i))
				bs = append(bs, b)
				cfg.Upstreams[0].Backends = append(cfg.Upstreams[0].Backends, BackendConfig{Address: b.addr, Weight: &tc.weights[i]})
				total += w
			}
			te := startEdge(t, cfg)
			c := newHTTPClient()
			// Concurrent load so least_conn and p2c see in-flight counts.
			var wg sync.WaitGroup
			var fails atomic.Int64
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n/8; i++ {
						resp, err := c.Get(te.url + "/")
						if err != nil {
							fails.Add(1)
							continue
						}
						resp.Body.Close()
						if resp.StatusCode != 200 {
							fails.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if fails.Load() > 0 {
				t.Fatalf("%d failed requests", fails.Load())
			}
			sent := float64(n / 8 * 8)
			for i, b := range bs {
				got := float64(b.hits.Load()) / sent
				want := float64(tc.weights[i]) / float64(total)
				switch tc.policy {
				case "least_conn", "p2c_ewma":
					// Load-aware: shares follow latency and queueing, not
					// weights; every backend must still take a fair part.
					if got < 0.1 {
						t.Errorf("backend %d: share %.3f, want at least 0.1", i, got)
					}
				default:
					tol := 0.03
					if tc.policy == "random" {
						tol = 0.06
					}
					if math.Abs(got-want) > tol {
						t.Errorf("backend %d: share %.3f, want %.3f±%.2f", i, got, want, tol)
					}
				}
			}
		})
	}
}

func TestConsistentHash(t *testing.T) {
	var bs []*testBackend
	for i := range 4 {
		bs = append(bs, startBackend(t, fmt.Sprint(i)))
	}
	cfg := baseConfig(bs[:3]...)
	cfg.Upstreams[0].Balancer.Policy = "consistent_hash"
	cfg.Upstreams[0].Balancer.HashKey = "header:X-User"
	te := startEdge(t, cfg)
	c := newHTTPClient()
	const keys = 300
	owner := func() map[int]string {
		m := map[int]string{}
		for k := range keys {
			resp, _ := get(t, c, te.url+"/", "X-User", fmt.Sprint("user-", k))
			m[k] = resp.Header.Get("X-Backend")
		}
		return m
	}
	first := owner()
	again := owner()
	for k := range keys {
		if first[k] != again[k] {
			t.Fatalf("key %d moved without a membership change: %s → %s", k, first[k], again[k])
		}
	}
	// Add a fourth backend: about 1/4 of keys move, all of them to it.
	next := baseConfig(bs...)
	next.Upstreams[0].Balancer = cfg.Upstreams[0].Balancer
	if err := te.eng.Reload(mustValid(t, next)); err != nil {
		t.Fatal(err)
	}
	after := owner()
	moved := 0
	for k := range keys {
		if after[k] != first[k] {
			moved++
			if after[k] != "3" {
				t.Errorf("key %d moved between old backends: %s → %s", k, first[k], after[k])
			}
		}
	}
	if frac := float64(moved) / keys; frac < 0.15 || frac > 0.35 {
		t.Errorf("%.2f of keys moved, want about 0.25", frac)
	}
}

// TestRetriesHideKilledBackend kills one of three backends under load: GETs
// keep succeeding because failed attempts are retried elsewhere.
func TestRetriesHideKilledBackend(t *testing.T) {
	bs := []*testBackend{startBackend(t, "0"), startBackend(t, "1"), startBackend(t, "2")}
	te := startEdge(t, baseConfig(bs...))
	c := newHTTPClient()
	var ok, bad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(te.url + "/")
				if err != nil {
					bad.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		}()
	}
	pollUntil(t, 10*time.Second, "some traffic", func() bool { return ok.Load() > 200 })
	bs[1].kill()
	before := ok.Load()
	pollUntil(t, 20*time.Second, "traffic after the kill", func() bool { return ok.Load() > before+1000 })
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d requests failed while a backend was killed (%d succeeded)", bad.Load(), ok.Load())
	}
	var retries uint64
	for _, be := range te.eng.gen.Load().upstreams[0].backends {
		retries += be.retries.Load()
	}
	t.Logf("%d requests ok, %d retried", ok.Load(), retries)
}

func TestRetryBudget(t *testing.T) {
	now := time.Unix(0, 0)
	b := newRetryBudget(0.2, 0, func() time.Time { return now })
	// Drain the initial allowance.
	for b.tryRetry() {
	}
	for range 100 {
		b.onRequest()
	}
	got := 0
	for b.tryRetry() {
		got++
	}
	if got != 20 {
		t.Fatalf("100 requests allowed %d retries, want 20", got)
	}
	floor := newRetryBudget(0, 5, func() time.Time { return now })
	for floor.tryRetry() {
	}
	now = now.Add(time.Second)
	got = 0
	for floor.tryRetry() {
		got++
	}
	if got != 5 {
		t.Fatalf("one idle second allowed %d retries, want 5", got)
	}
}
