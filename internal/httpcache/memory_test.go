package httpcache

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestMemoryBound(t *testing.T) {
	const maxSize = 1 << 20
	c, clk := newCache(t, Config{MaxSize: maxSize, MaxObjectSize: 64 << 10})
	body := strings.Repeat("x", 4<<10)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				req := request(t, "GET", fmt.Sprintf("http://example.com/%d/%d", w, i))
				res := c.Lookup(req)
				resp := response(t, clk.Now(), 200, body, "Cache-Control: max-age=600")
				c.Store(&res, req, resp, resp.Body())
				res.Release()
			}
		})
	}
	wg.Wait()
	c.store.CleanUp()
	s := c.Stats()
	if s.Stores != 2400 {
		t.Fatalf("stores %d", s.Stores)
	}
	if s.Bytes > maxSize {
		t.Fatalf("weight %d over max_size %d", s.Bytes, maxSize)
	}
	if s.Evictions == 0 {
		t.Fatal("nothing evicted")
	}
	// The weight counts bodies and overhead: about 4KiB+ per key.
	if s.Entries == 0 || s.Bytes/s.Entries < 4<<10 {
		t.Fatalf("entries %d weigh %d: body not counted", s.Entries, s.Bytes)
	}
	var sum uint64
	for _, o := range c.store.All() {
		sum += uint64(o.weight)
	}
	if sum > maxSize {
		t.Fatalf("stored objects weigh %d", sum)
	}
}

// TestMemoryExpiry checks that entries with nothing left to offer (no
// validator, past their stale windows) leave the cache.
func TestMemoryExpiry(t *testing.T) {
	c, clk := newCache(t, Config{})
	for i := range 10 {
		req := request(t, "GET", fmt.Sprintf("http://example.com/%d", i))
		res := c.Lookup(req)
		resp := response(t, clk.Now(), 200, "x", "Cache-Control: max-age=10, stale-if-error=20")
		c.Store(&res, req, resp, resp.Body())
		res.Release()
	}
	clk.Advance(29e9)
	if _, ok := c.store.GetIfPresent("hexample.com/3"); !ok {
		t.Fatal("expired inside its stale-if-error window")
	}
	clk.Advance(2e9)
	if _, ok := c.store.GetIfPresent("hexample.com/3"); ok {
		t.Fatal("kept past every window")
	}
}
