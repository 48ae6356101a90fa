package httpcache

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newVersionedOrigin serves "v<n>", n counting its calls.
func newVersionedOrigin(t *testing.T, clk *fakeClock, cc string) *testOrigin {
	var n atomic.Int64
	return newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", httpDate(clk.Now()))
		w.Header().Set("Cache-Control", cc)
		_, _ = w.Write([]byte("v" + strconv.FormatInt(n.Add(1), 10)))
	})
}

func TestStaleWhileRevalidate(t *testing.T) {
	c, clk := newCache(t, Config{})
	o := newVersionedOrigin(t, clk, "max-age=10, stale-while-revalidate=20")
	p := newProxy(t, c, o)

	if got := p.get(t, "/s"); string(got.Body()) != "v1" {
		t.Fatalf("miss body %q", got.Body())
	}
	clk.Advance(15 * time.Second) // stale, inside the window
	got := p.get(t, "/s")
	if string(got.Body()) != "v1" || string(got.Header.Peek(HeaderXCache)) != XCacheStale {
		t.Fatalf("stale: %q %s", got.Body(), got.Header.Peek(HeaderXCache))
	}
	if string(got.Header.Peek("Age")) != "15" {
		t.Fatalf("Age %q", got.Header.Peek("Age"))
	}
	// The background refresh replaces the entry.
	waitFor(t, "background refresh", func() bool {
		res := c.Lookup(request(t, "GET", "http://example.com/s"))
		defer res.Release()
		return res.Status == Hit && string(res.Entry.Body()) == "v2"
	})
	if got := p.get(t, "/s"); string(got.Body()) != "v2" || string(got.Header.Peek(HeaderXCache)) != XCacheHit {
		t.Fatalf("after refresh: %q %s", got.Body(), got.Header.Peek(HeaderXCache))
	}
	// Past lifetime + window: the entry may not be served without the
	// origin (it has no validator, so it is gone: a plain miss).
	clk.Advance(31 * time.Second)
	if got := p.get(t, "/s"); string(got.Body()) != "v3" || string(got.Header.Peek(HeaderXCache)) != XCacheMiss {
		t.Fatalf("past window: %q %s", got.Body(), got.Header.Peek(HeaderXCache))
	}
}

func TestStaleWhileRevalidateWindows(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		cc   string
		age  time.Duration
		want Status
	}{
		{"fresh", Config{}, "max-age=10, stale-while-revalidate=20", 9 * time.Second, Hit},
		{"window start", Config{}, "max-age=10, stale-while-revalidate=20", 10 * time.Second, Stale},
		{"window end", Config{}, "max-age=10, stale-while-revalidate=20", 29 * time.Second, Stale},
		{"past window", Config{}, "max-age=10, stale-while-revalidate=20", 30 * time.Second, Revalidate},
		{"config default", Config{StaleWhileRevalidate: 5 * time.Second}, "max-age=10", 14 * time.Second, Stale},
		{"config default end", Config{StaleWhileRevalidate: 5 * time.Second}, "max-age=10", 15 * time.Second, Revalidate},
		{"directive wins", Config{StaleWhileRevalidate: time.Hour}, "max-age=10, stale-while-revalidate=1", 12 * time.Second, Revalidate},
		{"must-revalidate", Config{StaleWhileRevalidate: time.Hour}, "max-age=10, must-revalidate, stale-while-revalidate=60", 12 * time.Second, Revalidate},
		{"no window", Config{}, "max-age=10", 11 * time.Second, Revalidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, tt.cfg)
			req := request(t, "GET", "http://example.com/w")
			res := c.Lookup(req)
			if c.Store(&res, req, response(t, clk.Now(), 200, "x", "Cache-Control: "+tt.cc, `ETag: "w"`), []byte("x")) == nil {
				t.Fatal("not stored")
			}
			clk.Advance(tt.age)
			res = c.Lookup(req)
			defer res.Release()
			if res.Status != tt.want {
				t.Fatalf("status %v, want %v", res.Status, tt.want)
			}
			if tt.want == Stale && !res.Refresh {
				t.Fatal("the first stale lookup does not refresh")
			}
		})
	}
}

// TestOneRefreshPerKey checks that concurrent stale lookups start exactly
// one refresh, and a new one only after it ended.
func TestOneRefreshPerKey(t *testing.T) {
	c, clk := newCache(t, Config{})
	req := request(t, "GET", "http://example.com/one")
	res := c.Lookup(req)
	c.Store(&res, req, response(t, clk.Now(), 200, "x", "Cache-Control: max-age=1, stale-while-revalidate=60"), []byte("x"))
	clk.Advance(2 * time.Second)

	const n = 64
	var refreshes atomic.Int64
	var owners sync.Mutex
	var detached []Result
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r := c.Lookup(request(t, "GET", "http://example.com/one"))
			defer r.Release()
			if r.Status != Stale {
				t.Errorf("status %v", r.Status)
			}
			if r.Refresh {
				refreshes.Add(1)
				owners.Lock()
				detached = append(detached, r.Detach())
				owners.Unlock()
			}
		})
	}
	wg.Wait()
	if refreshes.Load() != 1 {
		t.Fatalf("%d refreshes started, want 1", refreshes.Load())
	}
	// Still in flight after the serving requests returned (Detach).
	r := c.Lookup(req)
	r.Release()
	if r.Refresh {
		t.Fatal("a second refresh started while the first runs")
	}
	detached[0].Release()
	r = c.Lookup(req)
	defer r.Release()
	if !r.Refresh {
		t.Fatal("no refresh after the first one ended")
	}
}

func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		cc      string
		age     time.Duration
		stale   bool
		connErr bool
	}{
		{"directive, inside", Config{}, "max-age=10, stale-if-error=60", 30 * time.Second, true, false},
		{"directive, edge", Config{}, "max-age=10, stale-if-error=60", 69 * time.Second, true, false},
		{"directive, past", Config{}, "max-age=10, stale-if-error=60", 71 * time.Second, false, false},
		{"config default", Config{StaleIfError: time.Minute}, "max-age=10", 30 * time.Second, true, false},
		{"directive wins over config", Config{StaleIfError: time.Hour}, "max-age=10, stale-if-error=5", 30 * time.Second, false, false},
		{"must-revalidate", Config{StaleIfError: time.Hour}, "max-age=10, must-revalidate", 30 * time.Second, false, false},
		{"no-cache", Config{StaleIfError: time.Hour}, "no-cache", 30 * time.Second, false, false},
		{"connection refused", Config{}, "max-age=10, stale-if-error=60", 30 * time.Second, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, tt.cfg)
			lm := httpDate(epoch.Add(-time.Hour))
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Fail") != "" || r.Header.Get("If-Modified-Since") != "" {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Date", httpDate(clk.Now()))
				w.Header().Set("Cache-Control", tt.cc)
				w.Header().Set("Last-Modified", lm) // keeps the entry past its windows
				_, _ = w.Write([]byte("good"))
			})
			p := newProxy(t, c, o)
			if got := p.get(t, "/e"); string(got.Body()) != "good" {
				t.Fatalf("fill: %d %q", got.StatusCode(), got.Body())
			}
			clk.Advance(tt.age)
			if tt.connErr {
				o.srv.Close()
			}
			got := p.get(t, "/e")
			if tt.stale {
				if string(got.Body()) != "good" || string(got.Header.Peek(HeaderXCache)) != XCacheStale {
					t.Fatalf("want stale: %d %q %s", got.StatusCode(), got.Body(), got.Header.Peek(HeaderXCache))
				}
				return
			}
			if got.StatusCode() != http.StatusServiceUnavailable {
				t.Fatalf("want the error: %d %q %s", got.StatusCode(), got.Body(), got.Header.Peek(HeaderXCache))
			}
			// The error did not evict the entry.
			res := c.Lookup(request(t, "GET", "http://example.com/e"))
			defer res.Release()
			if res.Entry == nil {
				t.Fatal("entry dropped after an origin error")
			}
		})
	}
}

func TestStaleHeadDoesNotRefresh(t *testing.T) {
	c, clk := newCache(t, Config{})
	req := request(t, "GET", "http://example.com/hs")
	res := c.Lookup(req)
	c.Store(&res, req, response(t, clk.Now(), 200, "x", "Cache-Control: max-age=1, stale-while-revalidate=60"), []byte("x"))
	clk.Advance(2 * time.Second)
	head := c.Lookup(request(t, "HEAD", "http://example.com/hs"))
	defer head.Release()
	if head.Status != Stale || head.Refresh {
		t.Fatalf("HEAD: %v refresh=%v", head.Status, head.Refresh)
	}
	get := c.Lookup(req)
	defer get.Release()
	if !get.Refresh {
		t.Fatal("GET does not refresh")
	}
}
