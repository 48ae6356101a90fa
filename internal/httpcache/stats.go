package httpcache

import "sync/atomic"

// Stats is a snapshot of a cache's counters, for metrics. Counters only
// grow; Bytes and Entries are current values.
type Stats struct {
	Hits        uint64 // fresh entries served (including to coalesced waiters)
	Misses      uint64 // lookups with nothing usable stored
	Stale       uint64 // stale entries served (stale-while-revalidate and stale-if-error)
	Revalidated uint64 // entries refreshed by a 304
	Revalidate  uint64 // lookups that found an entry needing revalidation
	Bypass      uint64 // requests the cache does not apply to (methods other than GET/HEAD)
	Coalesced   uint64 // requests that waited for another request's fetch
	Stores      uint64 // responses stored
	Uncacheable uint64 // responses offered to Store but not stored
	Purged      uint64 // keys removed by purges and unsafe-method invalidation
	Evictions   uint64 // keys evicted to stay within max_size
	Bytes       uint64 // current weight of the stored entries
	Entries     uint64 // current number of keys (approximate)
	Waiting     int64  // requests waiting for another request's fetch right now
}

type counters struct {
	hits, misses, stale, revalidated, revalidate, bypass atomic.Uint64
	coalesced, stores, uncacheable, purged, evictions    atomic.Uint64
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	s := &c.stats
	return Stats{
		Hits:        s.hits.Load(),
		Misses:      s.misses.Load(),
		Stale:       s.stale.Load(),
		Revalidated: s.revalidated.Load(),
		Revalidate:  s.revalidate.Load(),
		Bypass:      s.bypass.Load(),
		Coalesced:   s.coalesced.Load(),
		Stores:      s.stores.Load(),
		Uncacheable: s.uncacheable.Load(),
		Purged:      s.purged.Load(),
		Evictions:   s.evictions.Load(),
		Bytes:       c.store.WeightedSize(),
		Entries:     uint64(c.store.EstimatedSize()),
		Waiting:     c.flights.waiting.Load(),
	}
}
