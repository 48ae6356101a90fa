package querycache

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPutGet(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, Config{}, clk)
	d := c.DB("app")
	if c.DB("app") != d {
		t.Fatal("DB is not memoised")
	}
	if d.Name() != "app" {
		t.Fatalf("Name() = %q", d.Name())
	}

	key, body := []byte("key-1"), []byte("body-1")
	var tk Ticket
	d.Begin(&tk, []string{"products"})
	if !d.Put(&tk, 1, key, body, time.Minute) {
		t.Fatal("Put did not store")
	}
	key[0], body[0] = 'X', 'X' // Put copied them
	if got, ok := get(d, 1, "key-1"); !ok || got != "body-1" {
		t.Fatalf("Get = %q, %v; want body-1, true", got, ok)
	}
	if _, ok := get(d, 2, "key-1"); ok {
		t.Fatal("Get of another hash hit")
	}
	s := d.Stats()
	if s.Hits != 1 || s.Misses != 1 || s.Stores != 1 || s.Entries != 1 || s.Bytes <= int64(len("key-1body-1")) || s.HitRatio != 0.5 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestGetMisses(t *testing.T) {
	tests := []struct {
		name string
		run  func(c *Cache, clk *fakeClock) (hit bool)
	}{
		{"same hash, other key", func(c *Cache, _ *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "select 1", "one", nil, time.Minute)
			_, ok := get(d, 7, "select 2")
			return ok
		}},
		{"same hash, key prefix", func(c *Cache, _ *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "select 1", "one", nil, time.Minute)
			_, ok := get(d, 7, "select ")
			return ok
		}},
		{"other database", func(c *Cache, _ *fakeClock) bool {
			put(c.DB("a"), 7, "k", "v", nil, time.Minute)
			_, ok := get(c.DB("b"), 7, "k")
			return ok
		}},
		{"table read invalidated", func(c *Cache, _ *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "k", "v", []string{"shop.products", "users"}, time.Minute)
			d.Invalidate([]string{"products"})
			_, ok := get(d, 7, "k")
			return ok
		}},
		{"table read invalidated by quoted name", func(c *Cache, _ *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "k", "v", []string{`"Odd.Name"`}, time.Minute)
			d.Invalidate([]string{`s."Odd.Name"`})
			_, ok := get(d, 7, "k")
			return ok
		}},
		{"database invalidated", func(c *Cache, _ *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "k", "v", []string{"products"}, time.Minute)
			d.InvalidateAll()
			_, ok := get(d, 7, "k")
			return ok
		}},
		{"database purged", func(c *Cache, _ *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "k", "v", nil, time.Minute)
			d.Purge()
			_, ok := get(d, 7, "k")
			return ok
		}},
		{"cache purged", func(c *Cache, _ *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "k", "v", nil, time.Minute)
			c.Purge()
			_, ok := get(d, 7, "k")
			return ok
		}},
		{"expired", func(c *Cache, clk *fakeClock) bool {
			d := c.DB("app")
			put(d, 7, "k", "v", nil, 10*time.Second)
			clk.Advance(10 * time.Second)
			_, ok := get(d, 7, "k")
			return ok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newTestCache(t, Config{}, clk)
			if tt.run(c, clk) {
				t.Fatal("Get hit, want a miss")
			}
		})
	}
}

func TestOtherDatabaseKeepsItsEntry(t *testing.T) {
	c := newTestCache(t, Config{}, newFakeClock())
	a, b := c.DB("a"), c.DB("b")
	put(a, 7, "k", "from a", nil, time.Minute)
	put(b, 7, "k", "from b", nil, time.Minute)
	for _, tc := range []struct {
		d    *DB
		want string
	}{{a, "from a"}, {b, "from b"}} {
		if got, ok := get(tc.d, 7, "k"); !ok || got != tc.want {
			t.Errorf("%s: Get = %q, %v; want %q", tc.d.Name(), got, ok, tc.want)
		}
	}
}

func TestInvalidateDropsEntry(t *testing.T) {
	c := newTestCache(t, Config{}, newFakeClock())
	d := c.DB("app")
	put(d, 1, "k1", "v1", []string{"products"}, time.Minute)
	put(d, 2, "k2", "v2", []string{"orders"}, time.Minute)
	put(d, 3, "k3", "v3", []string{"products", "orders"}, time.Minute)
	put(d, 4, "k4", "v4", nil, time.Minute)

	d.Invalidate([]string{"orders"})
	for _, tc := range []struct {
		hash uint64
		key  string
		hit  bool
	}{{1, "k1", true}, {2, "k2", false}, {3, "k3", false}, {4, "k4", true}} {
		if _, ok := get(d, tc.hash, tc.key); ok != tc.hit {
			t.Errorf("Get(%s) hit = %v, want %v", tc.key, ok, tc.hit)
		}
	}
	s := d.Stats()
	if s.Entries != 2 || s.Invalidations != 1 {
		t.Fatalf("after Get of invalid entries: Entries = %d, Invalidations = %d; want 2, 1", s.Entries, s.Invalidations)
	}
	if used, _ := c.Size(); int64(used) != s.Bytes {
		c.store.CleanUp()
		if used, _ = c.Size(); int64(used) != s.Bytes {
			t.Fatalf("store weight %d, Stats.Bytes %d", used, s.Bytes)
		}
	}

	d.InvalidateAll()
	for _, k := range []struct {
		hash uint64
		key  string
	}{{1, "k1"}, {4, "k4"}} {
		if _, ok := get(d, k.hash, k.key); ok {
			t.Errorf("Get(%s) hit after InvalidateAll", k.key)
		}
	}
	if s := d.Stats(); s.Entries != 0 || s.Bytes != 0 || s.Invalidations != 2 {
		t.Fatalf("after InvalidateAll: %+v", s)
	}
}

func TestInvalidationRaces(t *testing.T) {
	// Each case: Begin at 0, then events, then Put.
	const grace = time.Second
	tests := []struct {
		name   string
		before func(d *DB, clk *fakeClock) // before Begin
		during func(d *DB, clk *fakeClock) // between Begin and Put
		stored bool
	}{
		{name: "nothing", stored: true},
		{name: "table invalidated while running",
			during: func(d *DB, _ *fakeClock) { d.Invalidate([]string{"products"}) }},
		{name: "table invalidated while running, other spelling",
			during: func(d *DB, _ *fakeClock) { d.Invalidate([]string{"public.products"}) }},
		{name: "database invalidated while running",
			during: func(d *DB, _ *fakeClock) { d.InvalidateAll() }},
		{name: "database purged while running",
			during: func(d *DB, _ *fakeClock) { d.Purge() }},
		{name: "cache purged while running",
			during: func(d *DB, _ *fakeClock) { d.c.Purge() }},
		{name: "other table invalidated while running", stored: true,
			during: func(d *DB, _ *fakeClock) { d.Invalidate([]string{"orders"}) }},
		{name: "other database invalidated while running", stored: true,
			during: func(d *DB, _ *fakeClock) { d.c.DB("other").InvalidateAll() }},
		{name: "table invalidated just before",
			before: func(d *DB, clk *fakeClock) { d.Invalidate([]string{"products"}); clk.Advance(grace / 2) }},
		{name: "table invalidated a grace before", stored: true,
			before: func(d *DB, clk *fakeClock) { d.Invalidate([]string{"products"}); clk.Advance(grace) }},
		{name: "table invalidated long before", stored: true,
			before: func(d *DB, clk *fakeClock) { d.Invalidate([]string{"products"}); clk.Advance(5 * grace) }},
		{name: "database invalidated just before",
			before: func(d *DB, clk *fakeClock) { d.InvalidateAll(); clk.Advance(grace - 1) }},
		{name: "database invalidated long before", stored: true,
			before: func(d *DB, clk *fakeClock) { d.InvalidateAll(); clk.Advance(grace + 1) }},
		{name: "other table invalidated just before", stored: true,
			before: func(d *DB, _ *fakeClock) { d.Invalidate([]string{"orders"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newTestCache(t, Config{InvalidationGrace: grace}, clk)
			d := c.DB("app")
			if tt.before != nil {
				tt.before(d, clk)
			}
			var tk Ticket
			d.Begin(&tk, []string{"products", "users"})
			if tt.during != nil {
				tt.during(d, clk)
			}
			stored := d.Put(&tk, 1, []byte("k"), []byte("v"), time.Minute)
			if stored != tt.stored {
				t.Fatalf("Put = %v, want %v", stored, tt.stored)
			}
			_, hit := get(d, 1, "k")
			if hit != tt.stored {
				t.Fatalf("Get hit = %v, want %v", hit, tt.stored)
			}
			s := d.Stats()
			if tt.stored && (s.Stores != 1 || s.Skipped != 0) || !tt.stored && (s.Stores != 0 || s.Skipped != 1) {
				t.Fatalf("Stores, Skipped = %d, %d", s.Stores, s.Skipped)
			}
		})
	}
}

func TestPutRefused(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, Config{MaxSize: 1 << 20, MaxEntrySize: 1000}, clk)
	d, other := c.DB("app"), c.DB("other")
	tests := []struct {
		name   string
		run    func() bool
		stored bool
	}{
		{"exactly max_entry_size", func() bool { return put(d, 1, "kk", string(make([]byte, 998)), nil, time.Minute) }, true},
		{"bigger than max_entry_size", func() bool { return put(d, 2, "kk", string(make([]byte, 999)), nil, time.Minute) }, false},
		{"no Begin", func() bool { var tk Ticket; return d.Put(&tk, 3, []byte("k"), []byte("v"), time.Minute) }, false},
		{"ticket of another database", func() bool {
			var tk Ticket
			other.Begin(&tk, nil)
			return d.Put(&tk, 4, []byte("k"), []byte("v"), time.Minute)
		}, false},
		{"zero ttl", func() bool { return put(d, 5, "k", "v", nil, 0) }, false},
		{"negative ttl", func() bool { return put(d, 6, "k", "v", nil, -time.Second) }, false},
		{"ttl ran out while the query ran", func() bool {
			var tk Ticket
			d.Begin(&tk, nil)
			clk.Advance(2 * time.Second)
			return d.Put(&tk, 7, []byte("k"), []byte("v"), 2*time.Second)
		}, false},
		{"huge ttl", func() bool { return put(d, 8, "k", "v", nil, time.Duration(1<<63-1)) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.Stats()
			if got := tt.run(); got != tt.stored {
				t.Fatalf("Put = %v, want %v", got, tt.stored)
			}
			after := d.Stats()
			if tt.stored && after.Stores != before.Stores+1 || !tt.stored && after.Skipped != before.Skipped+1 {
				t.Fatalf("Stats before %+v, after %+v", before, after)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, Config{}, clk)
	d := c.DB("app")

	var tk Ticket
	d.Begin(&tk, []string{"products"})
	clk.Advance(3 * time.Second) // the query runs for 3s
	if !d.Put(&tk, 1, []byte("k"), []byte("v"), 10*time.Second) {
		t.Fatal("Put did not store")
	}
	clk.Advance(7*time.Second - 1) // 1ns before Begin+TTL
	if _, ok := get(d, 1, "k"); !ok {
		t.Fatal("miss before the TTL ran out")
	}
	clk.Advance(1)
	if _, ok := get(d, 1, "k"); ok {
		t.Fatal("hit once the TTL (counted from Begin) ran out")
	}
	// A TTL that overflows the clock never expires.
	if !put(d, 2, "k2", "v", nil, time.Duration(1<<63-1)) {
		t.Fatal("Put with a huge TTL did not store")
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	if _, ok := get(d, 2, "k2"); !ok {
		t.Fatal("an entry with a huge TTL expired")
	}
	d.Purge()

	// The expired entry leaves the store on its maintenance.
	c.store.CleanUp()
	if s := d.Stats(); s.Entries != 0 || s.Bytes != 0 || s.Evictions != 0 {
		t.Fatalf("after expiry: %+v", s)
	}
}

func TestReplaceSameHash(t *testing.T) {
	c := newTestCache(t, Config{}, newFakeClock())
	d := c.DB("app")
	put(d, 1, "k", "old", nil, time.Minute)
	put(d, 1, "k", "new", nil, time.Minute)
	if got, ok := get(d, 1, "k"); !ok || got != "new" {
		t.Fatalf("Get = %q, %v", got, ok)
	}
	put(d, 1, "k2", "other key", nil, time.Minute) // a colliding key replaces
	if _, ok := get(d, 1, "k"); ok {
		t.Fatal("replaced key still hits")
	}
	c.store.CleanUp()
	if s := d.Stats(); s.Entries != 1 || s.Stores != 3 || s.Evictions != 0 {
		t.Fatalf("Stats = %+v", s)
	}
	if used, _ := c.Size(); int64(used) != d.Stats().Bytes {
		t.Fatalf("store weight %d, Stats.Bytes %d", used, d.Stats().Bytes)
	}
}

func TestPurge(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, Config{}, clk)
	a, b := c.DB("a"), c.DB("b")
	for i := range uint64(10) {
		put(a, i, fmt.Sprint("k", i), "va", nil, time.Minute)
		put(b, i, fmt.Sprint("k", i), "vb", nil, time.Minute)
	}
	a.Purge()
	c.store.CleanUp()
	if s := a.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Fatalf("a after DB.Purge: %+v", s)
	}
	if s := b.Stats(); s.Entries != 10 {
		t.Fatalf("b after a.Purge: %+v", s)
	}
	for i := range uint64(10) {
		if _, ok := get(b, i, fmt.Sprint("k", i)); !ok {
			t.Fatalf("b lost k%d on a.Purge", i)
		}
	}
	clk.Advance(time.Hour)
	put(a, 1, "k1", "va", nil, 2*time.Hour)
	c.Purge()
	c.store.CleanUp()
	for _, d := range []*DB{a, b} {
		if s := d.Stats(); s.Entries != 0 || s.Bytes != 0 {
			t.Fatalf("%s after Purge: %+v", d.Name(), s)
		}
	}
	if used, _ := c.Size(); used != 0 {
		t.Fatalf("store weight %d after Purge", used)
	}
}

func TestStats(t *testing.T) {
	c := newTestCache(t, Config{MaxSize: 8 << 20}, newFakeClock())
	if got := c.Stats(); len(got) != 0 {
		t.Fatalf("Stats of an empty cache = %+v", got)
	}
	z, a := c.DB("zeta"), c.DB("alpha")
	put(a, 1, "k", "v", nil, time.Minute)
	get(a, 1, "k")
	get(a, 1, "k")
	get(a, 1, "k")
	get(a, 2, "k")
	put(a, 3, "k", "v", nil, 0)
	z.Invalidate([]string{"t"})
	got := c.Stats()
	if len(got) != 2 || got[0].Database != "alpha" || got[1].Database != "zeta" {
		t.Fatalf("Stats not sorted by name: %+v", got)
	}
	s := got[0]
	if s.Hits != 3 || s.Misses != 1 || s.HitRatio != 0.75 || s.Stores != 1 || s.Skipped != 1 || s.Entries != 1 || s.MaxBytes != 8<<20 {
		t.Fatalf("alpha = %+v", s)
	}
	if want := int64(len("kv") + entryOverhead); s.Bytes != want {
		t.Fatalf("alpha Bytes = %d, want %d", s.Bytes, want)
	}
	if s := got[1]; s.Invalidations != 1 || s.HitRatio != 0 || s.Entries != 0 {
		t.Fatalf("zeta = %+v", s)
	}
}

// TestConcurrentConsistency: a reader never gets a result older than a
// write whose invalidation completed before its Get began.
func TestConcurrentConsistency(t *testing.T) {
	c := newTestCache(t, Config{InvalidationGrace: time.Nanosecond}, nil)
	d := c.DB("app")
	var version, committed atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer
		defer wg.Done()
		for v := uint64(1); v <= 2000; v++ {
			version.Store(v)
			d.Invalidate([]string{"products"})
			committed.Store(v)
		}
		close(stop)
	}()
	var hits atomic.Int64
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tk Ticket
			key := []byte("select * from products")
			body := make([]byte, 8)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				floor := committed.Load()
				if b, ok := d.Get(1, key); ok {
					hits.Add(1)
					if v := binary.LittleEndian.Uint64(b); v < floor {
						t.Errorf("reader %d: got version %d after %d committed", r, v, floor)
						return
					}
					continue
				}
				d.Begin(&tk, []string{"shop.products"})
				binary.LittleEndian.PutUint64(body, version.Load()) // the query
				d.Put(&tk, 1, key, body, time.Minute)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d hits, %+v", hits.Load(), d.Stats())
}
