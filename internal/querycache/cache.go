package querycache

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/maypok86/otter/v2"
)

// ErrDisabled: the cache is turned off in the config.
var ErrDisabled = errors.New("querycache: disabled")

// maxTablesPerDB bounds the table generations kept per database (table
// names come from client queries and peer messages). Beyond it, results
// reading a table without a generation are not stored.
const maxTablesPerDB = 10000

// entryOverhead is charged per entry on top of its key and body bytes
// (the entry struct, its dependency list and otter's node).
const entryOverhead = 160

// Options are the dependencies of a Cache.
type Options struct {
	// Now is the clock; nil means time.Now. It also drives the store's
	// expiry, so a test that advances it sees entries expire.
	Now func() time.Time
}

// Cache is the query cache shared by every session of one proxy. It is safe
// for concurrent use; Get takes no lock.
type Cache struct {
	cfg   Config
	now   func() time.Time
	store *otter.Cache[uint64, *entry]

	dbs cowMap[*DB]

	// origin identifies this cache in peer messages; seq numbers them.
	origin uint64
	seq    atomic.Uint64
	seen   seenWindows // remote messages already applied
}

// entry is one cached result.
type entry struct {
	db       *DB
	buf      []byte // key, then body
	keyLen   int
	deps     []dep
	dbGen    uint64
	expireAt int64 // unix ns
	weight   uint32
}

func (e *entry) key() []byte  { return e.buf[:e.keyLen] }
func (e *entry) body() []byte { return e.buf[e.keyLen:] }

// dep is the generation of one table a result read, when its query began.
type dep struct {
	t   *table
	gen uint64
}

// table is the invalidation state of one table name in one database.
type table struct {
	gen     atomic.Uint64
	invalAt atomic.Int64 // unix ns of the last invalidation
}

// New returns a cache for cfg (defaults are filled in on a copy).
func New(cfg Config, opts Options) (*Cache, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("querycache: %w", err)
	}
	if !cfg.On() {
		return nil, ErrDisabled
	}
	c := &Cache{cfg: cfg, now: opts.Now, origin: randomOrigin()}
	if c.now == nil {
		c.now = time.Now
	}
	o := &otter.Options[uint64, *entry]{
		MaximumWeight: uint64(cfg.MaxSize),
		Weigher:       func(_ uint64, e *entry) uint32 { return e.weight },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[uint64, *entry]) time.Duration {
			return max(time.Nanosecond, time.Duration(e.Value.expireAt-c.now().UnixNano()))
		}),
		OnAtomicDeletion: func(e otter.DeletionEvent[uint64, *entry]) {
			d := e.Value.db
			d.bytes.Add(-int64(e.Value.weight))
			d.entries.Add(-1)
			if e.Cause == otter.CauseOverflow {
				d.evictions.Add(1)
			}
		},
	}
	if opts.Now != nil {
		o.Clock = otterClock{opts.Now}
	}
	store, err := otter.New(o)
	if err != nil {
		return nil, fmt.Errorf("querycache: %w", err)
	}
	c.store = store
	return c, nil
}

// otterClock drives the store's expiry from an injected clock, without
// periodic clean-up ticks (expired entries are still never returned, and
// are dropped by the store's maintenance on writes).
type otterClock struct{ now func() time.Time }

func (o otterClock) NowNano() int64                      { return o.now().UnixNano() }
func (o otterClock) Tick(time.Duration) <-chan time.Time { return nil }

var _ otter.Clock = otterClock{}

// Config returns the configuration the cache runs with (defaults filled).
func (c *Cache) Config() Config { return c.cfg }

// Close stops the store's background work.
func (c *Cache) Close() { c.store.StopAllGoroutines() }

// Size returns the bytes charged for all entries and the limit.
func (c *Cache) Size() (used, max uint64) { return c.store.WeightedSize(), uint64(c.cfg.MaxSize) }

// DB returns the cache of one database (a client-visible database name),
// creating it on first use.
func (c *Cache) DB(name string) *DB {
	d, _ := c.dbs.getOrAdd(name, 0, func() *DB { return &DB{c: c, name: name, salt: xxhash.Sum64String(name)} })
	return d
}

// lookupDB returns a database's cache if it exists.
func (c *Cache) lookupDB(name string) *DB {
	d, _ := c.dbs.get(name)
	return d
}

// Purge drops every cached result.
func (c *Cache) Purge() {
	for _, d := range c.dbs.all() {
		d.gen.Add(1)
		d.invalAt.Store(c.now().UnixNano())
	}
	c.store.InvalidateAll()
}

// DB is one database's part of the cache: its table generations and
// counters. Entries live in the shared store.
type DB struct {
	c    *Cache
	name string
	// salt is mixed into the store index so that the same hash in two
	// databases lands in two slots (callers' keys need not name the
	// database to keep both cached).
	salt uint64

	gen     atomic.Uint64 // bumped by InvalidateAll and Purge
	invalAt atomic.Int64

	tables  cowMap[*table] // by TableKey
	flights flights        // misses in progress

	hits, misses, stores, skipped atomic.Uint64
	coalesced                     atomic.Uint64 // hits after waiting for a concurrent miss
	invalidations, remote         atomic.Uint64
	evictions                     atomic.Uint64
	bytes, entries                atomic.Int64
}

// Name is the database's name.
func (d *DB) Name() string { return d.name }

// table returns the state of a table key, creating it when create is set;
// nil when it does not exist (or the per-database bound is reached).
func (d *DB) table(key string, create bool) *table {
	if !create {
		t, _ := d.tables.get(key)
		return t
	}
	t, _ := d.tables.getOrAdd(key, maxTablesPerDB, func() *table { return &table{} })
	return t
}

// Get returns the cached body for key (hash is its Hash) if a valid entry
// exists. The body is shared: the caller copies it out and must not keep it.
func (d *DB) Get(hash uint64, key []byte) ([]byte, bool) {
	hash ^= d.salt
	e, ok := d.c.store.GetIfPresent(hash)
	if !ok || e.db != d || !bytes.Equal(e.key(), key) {
		d.misses.Add(1)
		return nil, false
	}
	if !e.valid() {
		d.c.store.ComputeIfPresent(hash, func(old *entry) (*entry, otter.ComputeOp) {
			if old == e {
				return nil, otter.InvalidateOp
			}
			return old, otter.CancelOp
		})
		d.misses.Add(1)
		return nil, false
	}
	d.hits.Add(1)
	return e.body(), true
}

func (e *entry) valid() bool {
	if e.db.gen.Load() != e.dbGen {
		return false
	}
	for _, dp := range e.deps {
		if dp.t.gen.Load() != dp.gen {
			return false
		}
	}
	return true
}

// Ticket remembers, for a query about to run after a miss, the generations
// of what it reads. A session keeps one and reuses it (Begin resets it).
type Ticket struct {
	db    *DB
	start int64
	dbGen uint64
	deps  []dep
	ok    bool
}

// Begin prepares t for a query reading tables (parser-reported names).
func (d *DB) Begin(t *Ticket, tables []string) {
	t.db, t.ok = d, true
	t.dbGen = d.gen.Load()
	t.start = d.c.now().UnixNano()
	t.deps = t.deps[:0]
	for _, name := range tables {
		tb := d.table(TableKey(name), true)
		if tb == nil {
			t.ok = false
			return
		}
		t.deps = append(t.deps, dep{t: tb, gen: tb.gen.Load()})
	}
}

// Put stores body for key unless something it read was invalidated while
// it ran or within the grace period before it began, or it is too big. The
// TTL counts from Begin (the result is no newer than that); a result whose
// TTL ran out while the query ran is not stored. It copies key and body.
// It reports whether the result was stored.
func (d *DB) Put(t *Ticket, hash uint64, key, body []byte, ttl time.Duration) bool {
	c := d.c
	size := len(key) + len(body)
	if !t.ok || t.db != d || ttl <= 0 || int64(size) > int64(c.cfg.MaxEntrySize) || !t.fresh(c.cfg.InvalidationGrace) {
		d.skipped.Add(1)
		return false
	}
	expireAt := t.start + int64(ttl)
	if expireAt < t.start { // overflow
		expireAt = math.MaxInt64
	}
	if expireAt <= c.now().UnixNano() {
		d.skipped.Add(1)
		return false
	}
	e := &entry{db: d, keyLen: len(key), dbGen: t.dbGen, expireAt: expireAt}
	e.buf = make([]byte, 0, size)
	e.buf = append(append(e.buf, key...), body...)
	e.deps = append([]dep(nil), t.deps...)
	e.weight = uint32(min(int64(size)+entryOverhead+int64(len(e.deps))*16, math.MaxUint32))
	d.bytes.Add(int64(e.weight))
	d.entries.Add(1)
	c.store.Set(hash^d.salt, e)
	d.stores.Add(1)
	return true
}

// fresh reports that nothing t depends on was invalidated since grace
// before it began.
func (t *Ticket) fresh(grace time.Duration) bool {
	floor := t.start - int64(grace)
	d := t.db
	if d.gen.Load() != t.dbGen || d.invalAt.Load() > floor {
		return false
	}
	for _, dp := range t.deps {
		if dp.t.gen.Load() != dp.gen || dp.t.invalAt.Load() > floor {
			return false
		}
	}
	return true
}

// Invalidate makes every result that read one of tables invalid (a write
// committed through this proxy). Names are as the parser reports them.
func (d *DB) Invalidate(tables []string) {
	d.invalidate(tables, false)
}

// invalidate bumps the generations of tables: parser-reported names when
// local, table keys (already TableKey'd by the sender) when remote.
func (d *DB) invalidate(tables []string, remote bool) {
	now := d.c.now().UnixNano()
	for _, name := range tables {
		key := name
		if !remote {
			key = TableKey(name)
		}
		if tb := d.table(key, true); tb != nil {
			tb.invalAt.Store(now)
			tb.gen.Add(1)
		} else {
			d.invalAt.Store(now) // no room to track it: drop everything
			d.gen.Add(1)
		}
	}
	if remote {
		d.remote.Add(1)
	} else {
		d.invalidations.Add(1)
	}
}

// InvalidateAll makes every result of the database invalid (a write whose
// tables are unknown: DO blocks, procedures, unparsable statements).
func (d *DB) InvalidateAll() { d.invalidateAll(false) }

func (d *DB) invalidateAll(remote bool) {
	d.invalAt.Store(d.c.now().UnixNano())
	d.gen.Add(1)
	if remote {
		d.remote.Add(1)
	} else {
		d.invalidations.Add(1)
	}
}

// Purge drops the database's entries now (CACHE PURGE).
func (d *DB) Purge() {
	d.invalidateAll(false)
	for h, e := range d.c.store.All() {
		if e.db == d {
			d.c.store.ComputeIfPresent(h, func(old *entry) (*entry, otter.ComputeOp) {
				if old.db == d {
					return nil, otter.InvalidateOp
				}
				return old, otter.CancelOp
			})
		}
	}
}
