package httpcache

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// gatedOrigin answers after gate is closed.
func gatedOrigin(t *testing.T, clk *fakeClock, gate chan struct{}, cc string) *testOrigin {
	return newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		<-gate
		w.Header().Set("Date", httpDate(clk.Now()))
		w.Header().Set("Cache-Control", cc)
		_, _ = w.Write([]byte("payload"))
	})
}

// storm sends n concurrent GETs for path and returns the responses once
// the n-1 followers wait on the leader's fetch and the gate opened.
func storm(t *testing.T, c *Cache, p *testProxy, gate chan struct{}, n int, path string) []*fasthttp.Response {
	out := make([]*fasthttp.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = p.get(t, path) })
	}
	waitFor(t, "followers waiting", func() bool { return c.Stats().Waiting == int64(n-1) })
	close(gate)
	wg.Wait()
	return out
}

func TestCoalesceMisses(t *testing.T) {
	c, clk := newCache(t, Config{})
	gate := make(chan struct{})
	o := gatedOrigin(t, clk, gate, "max-age=60")
	p := newProxy(t, c, o)

	const n = 100
	resps := storm(t, c, p, gate, n, "/hot")
	if calls := o.calls.Load(); calls != 1 {
		t.Fatalf("origin called %d times for %d concurrent misses", calls, n)
	}
	labels := map[string]int{}
	for _, r := range resps {
		if r.StatusCode() != 200 || string(r.Body()) != "payload" {
			t.Fatalf("response %d %q", r.StatusCode(), r.Body())
		}
		labels[string(r.Header.Peek(HeaderXCache))]++
	}
	if labels[XCacheMiss] != 1 || labels[XCacheHit] != n-1 {
		t.Fatalf("X-Cache counts %v", labels)
	}
	if s := c.Stats(); s.Coalesced != n-1 || s.Misses != 1 || s.Hits != n-1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCoalesceUncacheableFallsThrough(t *testing.T) {
	c, clk := newCache(t, Config{})
	gate := make(chan struct{})
	o := gatedOrigin(t, clk, gate, "private, max-age=60")
	p := newProxy(t, c, o)

	const n = 20
	resps := storm(t, c, p, gate, n, "/private")
	for _, r := range resps {
		if string(r.Body()) != "payload" || string(r.Header.Peek(HeaderXCache)) != XCacheMiss {
			t.Fatalf("response %q %s", r.Body(), r.Header.Peek(HeaderXCache))
		}
	}
	if calls := o.calls.Load(); calls != n {
		t.Fatalf("origin calls %d, want %d (each waiter fetches on its own)", calls, n)
	}
	// The URL is now known uncacheable: requests no longer queue.
	res := c.Lookup(request(t, "GET", "http://example.com/private"))
	defer res.Release()
	if res.Status != Miss || res.Leader() {
		t.Fatalf("status %v leader %v: still coalescing an uncacheable URL", res.Status, res.Leader())
	}
	// A later cacheable response is stored at once.
	req := request(t, "GET", "http://example.com/private")
	if c.Store(&res, req, response(t, clk.Now(), 200, "now public", "Cache-Control: max-age=60"), []byte("now public")) == nil {
		t.Fatal("cacheable response not stored over the mark")
	}
	clk.Advance(passTTL + time.Second)
	hit := c.Lookup(req)
	defer hit.Release()
	if hit.Status != Hit {
		t.Fatalf("status %v", hit.Status)
	}
}

func TestCoalesceTimeout(t *testing.T) {
	c, _ := newCache(t, Config{CoalesceTimeout: 50 * time.Millisecond})
	leader := c.Lookup(request(t, "GET", "http://example.com/slow"))
	defer leader.Release()
	if !leader.Leader() {
		t.Fatal("first miss does not lead")
	}
	start := time.Now()
	follower := c.Lookup(request(t, "GET", "http://example.com/slow"))
	defer follower.Release()
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("follower returned after %v, before the timeout", waited)
	}
	if follower.Status != Miss || follower.Leader() {
		t.Fatalf("follower: %v leader %v", follower.Status, follower.Leader())
	}
}

// TestCoalesceAbandonedFlight checks that a leader that never ends its
// fetch stalls the key for at most coalesce_timeout.
func TestCoalesceAbandonedFlight(t *testing.T) {
	c, clk := newCache(t, Config{CoalesceTimeout: time.Second})
	lost := c.Lookup(request(t, "GET", "http://example.com/lost"))
	if !lost.Leader() {
		t.Fatal("no leader")
	}
	// Never released. Once it is older than the timeout, the next request
	// takes over without waiting.
	clk.Advance(2 * time.Second)
	start := time.Now()
	res := c.Lookup(request(t, "GET", "http://example.com/lost"))
	defer res.Release()
	if !res.Leader() {
		t.Fatal("abandoned fetch not taken over")
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("takeover waited")
	}
	lost.Release() // ending the old flight must not end the new one
	if !res.Leader() {
		t.Fatal("lead lost")
	}
	if _, ok := c.flights.m.Load(res.key); !ok {
		t.Fatal("the old leader's Release removed the new flight")
	}
}

// TestCoalesceRevalidation checks that concurrent requests for a stale
// entry make one conditional request and all get the refreshed entry.
func TestCoalesceRevalidation(t *testing.T) {
	c, clk := newCache(t, Config{})
	gate := make(chan struct{})
	close(gate)
	vo := newValidatingOrigin(t, clk, "max-age=10", "max-age=10")
	p := newProxy(t, c, vo.testOrigin)
	p.get(t, "/r")
	clk.Advance(11 * time.Second)

	// Hold the leader's fetch until the others wait: lead it ourselves.
	lead := c.Lookup(request(t, "GET", "http://example.com/r"))
	if lead.Status != Revalidate || !lead.Leader() {
		t.Fatalf("lead: %v %v", lead.Status, lead.Leader())
	}
	const n = 30
	var wg sync.WaitGroup
	resps := make([]*fasthttp.Response, n)
	for i := range n {
		wg.Go(func() { resps[i] = p.get(t, "/r") })
	}
	waitFor(t, "waiters", func() bool { return c.Stats().Waiting == n })
	req := request(t, "GET", "http://example.com/r")
	if c.Store(&lead, req, response(t, clk.Now(), 304, "", `ETag: "v1"`, "Cache-Control: max-age=10"), nil) == nil {
		t.Fatal("304 not applied")
	}
	wg.Wait()
	for _, r := range resps {
		if string(r.Body()) != "version one" || string(r.Header.Peek(HeaderXCache)) != XCacheHit {
			t.Fatalf("waiter got %q %s", r.Body(), r.Header.Peek(HeaderXCache))
		}
	}
	if calls := vo.calls.Load(); calls != 1 {
		t.Fatalf("origin calls %d, want only the fill", calls)
	}
}
