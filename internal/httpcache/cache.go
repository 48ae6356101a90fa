package httpcache

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// HeaderXCache is the response header that tells clients how the cache
// answered: one of the XCache* values.
const HeaderXCache = "X-Cache"

// Values of the X-Cache header (see Result.Label).
const (
	XCacheHit         = "HIT"
	XCacheMiss        = "MISS"
	XCacheStale       = "STALE"
	XCacheRevalidated = "REVALIDATED"
	XCacheBypass      = "BYPASS"
)

// maxVariants bounds the variants kept per URL; storing one more drops
// the oldest, so a Vary on a high-cardinality header cannot pin memory
// under one key.
const maxVariants = 32

// passTTL is how long a URL whose response turned out uncacheable skips
// request coalescing ("hit-for-miss"): concurrent requests for it then go
// to the origin in parallel instead of queueing behind each other. A later
// cacheable response is still stored at once.
const passTTL = 30 * time.Second

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

// coarseResolution is the precision of the default clock: reading the
// precise time would be a third of a cache hit's cost, and freshness is
// counted in seconds.
const coarseResolution = 20 * time.Millisecond

// coarseClock is the default Clock: otter's CoarseClock, which a goroutine
// updates every coarseResolution, shared with the eviction policy.
type coarseClock struct{ c *otter.CoarseClock }

func (c coarseClock) Now() time.Time { return time.Unix(0, c.c.NowNano()) }

// Options are the optional dependencies of a Cache.
type Options struct {
	// Clock drives freshness, ages and expiry. Nil means the system clock
	// read with a 20ms resolution (its goroutine stops at Close). Waiting
	// for another request's fetch always uses real timers.
	Clock Clock
}

// Cache is an RFC 9111 shared HTTP response cache for one route. All
// methods are safe for concurrent use; lookups of fresh entries take no
// lock and allocate nothing.
type Cache struct {
	cfg     Config
	clock   Clock
	coarse  *otter.CoarseClock // the default clock, stopped by Close
	store   *otter.Cache[string, *object]
	flights coalescer
	epoch   atomic.Uint64 // bumped by every purge; stores begun before one are dropped
	stats   counters
}

// object is what the cache holds per key (URL): its variants, newest
// first, and an optional hit-for-miss mark. Immutable; writes replace it.
type object struct {
	variants  []*Entry
	passUntil time.Time
	expireAt  time.Time // zero: kept until evicted
	weight    uint32
}

func newObject(key string, variants []*Entry, passUntil time.Time) *object {
	o := &object{variants: variants, passUntil: passUntil}
	w := uint64(len(key) + entryOverhead)
	keep := time.Time{}
	forever := false
	for _, e := range variants {
		w += uint64(e.size)
		if k := e.keepFor(); k == 0 {
			forever = true
		} else if t := e.responseTime.Add(k); t.After(keep) {
			keep = t
		}
	}
	if !forever {
		if passUntil.After(keep) {
			keep = passUntil
		}
		o.expireAt = keep
	}
	o.weight = uint32(min(w, math.MaxUint32))
	return o
}

// passing reports whether the key is marked uncacheable at now.
func (o *object) passing(now time.Time) bool { return now.Before(o.passUntil) }

// New returns a cache for cfg (defaults are filled in on a copy).
func New(cfg Config, opts Options) (*Cache, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httpcache: %w", err)
	}
	c := &Cache{cfg: cfg, clock: opts.Clock}
	c.flights.timeout = cfg.CoalesceTimeout
	o := &otter.Options[string, *object]{
		MaximumWeight: uint64(cfg.MaxSize),
		Weigher:       func(_ string, v *object) uint32 { return v.weight },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *object]) time.Duration {
			if e.Value.expireAt.IsZero() {
				return math.MaxInt64
			}
			return max(time.Nanosecond, e.Value.expireAt.Sub(c.clock.Now()))
		}),
		OnAtomicDeletion: func(e otter.DeletionEvent[string, *object]) {
			if e.Cause == otter.CauseOverflow {
				c.stats.evictions.Add(1)
			}
		},
	}
	if opts.Clock != nil {
		o.Clock = otterClock{opts.Clock}
	} else {
		cc := otter.NewCoarseClock(coarseResolution)
		c.coarse = cc
		c.clock = coarseClock{cc}
		o.Clock = cc
	}
	store, err := otter.New(o)
	if err != nil {
		return nil, fmt.Errorf("httpcache: %w", err)
	}
	c.store = store
	return c, nil
}

// Config returns the configuration the cache runs with (defaults filled).
func (c *Cache) Config() Config { return c.cfg }

// Close stops the cache's background goroutines (expiry and the default
// clock's). Call it once a discarded cache (an old config generation) no
// longer serves requests; without Close they stop when it is collected.
func (c *Cache) Close() {
	c.store.StopAllGoroutines()
	if c.coarse != nil {
		c.coarse.Stop()
	}
}

// otterClock drives otter's expiry from an injected Clock, without the
// periodic clean-up ticks (expired entries are still never returned).
type otterClock struct{ c Clock }

func (o otterClock) NowNano() int64                      { return o.c.Now().UnixNano() }
func (o otterClock) Tick(time.Duration) <-chan time.Time { return nil }

// put stores e as the variant of key it was selected for, replacing an
// older copy of that variant, and clears a hit-for-miss mark.
func (c *Cache) put(key string, e *Entry) {
	c.store.Compute(key, func(old *object, found bool) (*object, otter.ComputeOp) {
		vs := make([]*Entry, 0, 1+len(oldVariants(old, found)))
		vs = append(vs, e)
		for _, v := range oldVariants(old, found) {
			if len(vs) == maxVariants {
				break
			}
			if !v.sameVariant(e) {
				vs = append(vs, v)
			}
		}
		return newObject(key, vs, time.Time{}), otter.WriteOp
	})
}

// drop removes the variant e from key if it is still stored.
func (c *Cache) drop(key string, e *Entry) {
	c.store.ComputeIfPresent(key, func(old *object) (*object, otter.ComputeOp) {
		return without(key, old, func(v *Entry) bool { return v == e })
	})
}

// markPass records that key's response was uncacheable at now.
func (c *Cache) markPass(key string, now time.Time) {
	c.store.Compute(key, func(old *object, found bool) (*object, otter.ComputeOp) {
		return newObject(key, oldVariants(old, found), now.Add(passTTL)), otter.WriteOp
	})
}

// without returns old minus the variants gone says, for ComputeIfPresent.
func without(key string, old *object, gone func(*Entry) bool) (*object, otter.ComputeOp) {
	var keep []*Entry
	for _, v := range old.variants {
		if !gone(v) {
			keep = append(keep, v)
		}
	}
	switch {
	case len(keep) == len(old.variants):
		return old, otter.CancelOp
	case len(keep) == 0 && old.passUntil.IsZero():
		return nil, otter.InvalidateOp
	}
	return newObject(key, keep, old.passUntil), otter.WriteOp
}

func oldVariants(old *object, found bool) []*Entry {
	if !found || old == nil {
		return nil
	}
	return old.variants
}
