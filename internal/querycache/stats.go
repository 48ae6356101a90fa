package querycache

import "sort"

// Stats are one database's counters (SHOW CACHE, /status, metrics).
type Stats struct {
	Database string
	Entries  int64 // live entries, including invalid ones not yet dropped
	Bytes    int64 // bytes charged for them
	MaxBytes int64 // the limit shared by all databases
	Hits     uint64
	Misses   uint64
	HitRatio float64 // Hits / (Hits + Misses); 0 before the first lookup
	// Stores: results stored; Skipped: results not stored (too big, or a
	// table they read was invalidated while they ran or just before).
	Stores  uint64
	Skipped uint64
	// Invalidations: writes through this proxy that invalidated tables;
	// RemoteInvalidations: invalidation messages from peer proxies.
	Invalidations       uint64
	RemoteInvalidations uint64
	Evictions           uint64 // dropped to stay within max_size
	// Coalesced: hits answered after waiting for a concurrent miss of the
	// same key (counted in Hits too).
	Coalesced uint64
}

// Stats returns every database's counters, sorted by name.
func (c *Cache) Stats() []Stats {
	dbs := c.dbs.all()
	out := make([]Stats, 0, len(dbs))
	for _, d := range dbs {
		out = append(out, d.Stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Database < out[j].Database })
	return out
}

// CountCoalesced records a hit that waited for a concurrent miss.
func (d *DB) CountCoalesced() { d.coalesced.Add(1) }

// Stats returns the database's counters.
func (d *DB) Stats() Stats {
	s := Stats{
		Database: d.name, Entries: d.entries.Load(), Bytes: d.bytes.Load(), MaxBytes: int64(d.c.cfg.MaxSize),
		Hits: d.hits.Load(), Misses: d.misses.Load(), Stores: d.stores.Load(), Skipped: d.skipped.Load(),
		Invalidations: d.invalidations.Load(), RemoteInvalidations: d.remote.Load(), Evictions: d.evictions.Load(),
		Coalesced: d.coalesced.Load(),
	}
	if n := s.Hits + s.Misses; n > 0 {
		s.HitRatio = float64(s.Hits) / float64(n)
	}
	return s
}
