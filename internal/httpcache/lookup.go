package httpcache

import (
	"bytes"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Status is what a lookup found, and so what the engine does next.
type Status uint8

const (
	// Bypass: the cache does not apply (a method other than GET or HEAD).
	// Forward the request; after an unsafe method, call Invalidate.
	Bypass Status = iota
	// Miss: nothing usable is stored. Fetch from the origin (after
	// PrepareUpstream) and offer the response to Store or Tee.
	Miss
	// Hit: Entry is fresh. Serve it.
	Hit
	// Stale: Entry is stale but within its stale-while-revalidate window.
	// Serve it; if Refresh is set, this request must also refresh it in
	// the background (Detach, fetch, Store).
	Stale
	// Revalidate: Entry is stored but may not be served without the
	// origin's consent. Fetch after PrepareUpstream (which adds the
	// validators) and offer the answer to Store: a 304 makes Entry
	// servable again. If the fetch fails, try StaleIfError.
	Revalidate
	// Revalidated: set by Store when a 304 refreshed Entry. Serve it.
	Revalidated
)

var statusNames = [...]string{"bypass", "miss", "hit", "stale", "revalidate", "revalidated"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Result is the outcome of one Lookup, and the handle that later calls
// (Serve, PrepareUpstream, Store, Tee, StaleIfError) take. It belongs to one
// request and is not safe for concurrent use; Detach hands it to another
// goroutine.
type Result struct {
	// Status says what to do next.
	Status Status
	// Entry is the stored response for Hit, Stale, Revalidate and
	// Revalidated, and after a successful Store; nil otherwise.
	Entry *Entry
	// Refresh is set on a Stale result whose request won the right to
	// refresh the entry; exactly one request per key holds it at a time.
	Refresh bool

	c      *Cache
	key    string // "" for Hit: only needed when something is stored
	at     time.Time
	epoch  uint64
	flight *flight // non-nil while this request leads a fetch for key
	head   bool
	auth   bool // the request carries Authorization
	nostr  bool // the request said no-store
	ranged bool // the request carries Range
}

// Key is the request's URL as the cache keys it ("host/path?query") for
// logs; it is empty for Hit and Bypass results.
func (r *Result) Key() string { return keyURL(r.key) }

// Label is the X-Cache value for the response this request gets: HIT,
// STALE, REVALIDATED, BYPASS, or MISS for everything fetched from the
// origin. Serve sets it itself; use it for responses passed through.
func (r *Result) Label() string {
	switch r.Status {
	case Hit:
		return XCacheHit
	case Stale:
		return XCacheStale
	case Revalidated:
		return XCacheRevalidated
	case Bypass:
		return XCacheBypass
	}
	return XCacheMiss
}

// Leader reports whether this request leads the fetch of its key: other
// requests for the key wait until it calls Store, Tee's body ends, or it
// calls Release.
func (r *Result) Leader() bool { return r.flight != nil }

// Release ends this request's fetch of the key if it still leads one, so
// waiting requests go on (they look the key up again, and fetch on their
// own when nothing was stored). Safe to call more than once and on any
// Result; call it (deferred) on every path.
func (r *Result) Release() {
	if r.flight != nil {
		r.c.flights.end(r.key, r.flight)
		r.flight = nil
	}
}

// Detach moves the result, with the lead of its fetch, to a copy for a
// background refresh; r keeps serving the stale entry and its Release no
// longer ends the fetch. The copy's owner must Release it.
func (r *Result) Detach() Result {
	d := *r
	r.flight = nil
	r.Refresh = false
	return d
}

// scratch is per-lookup working memory, pooled so lookups do not allocate.
type scratch struct {
	key, val []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{key: make([]byte, 0, 256), val: make([]byte, 0, 128)}
}}

// Lookup finds the stored response for req and decides how to use it.
//
// Keys ignore the method (HEAD is answered from a GET entry) and consist of
// scheme, host (case-insensitive, port kept), raw path and raw query; the
// stored Vary selects among variants. A miss or revalidation makes this
// request the leader of the key's fetch, or, if another request already
// leads one, Lookup waits (at most coalesce_timeout) for it and looks
// again: the result is then a Hit, or a Miss/Revalidate this request must
// fetch on its own (when the other response was not stored).
func (c *Cache) Lookup(req *fasthttp.Request) Result {
	return c.lookup(req, true)
}

func (c *Cache) lookup(req *fasthttp.Request, coalesce bool) Result {
	h := &req.Header
	now := c.clock.Now()
	r := Result{c: c, at: now, epoch: c.epoch.Load()}
	switch {
	case h.IsGet():
	case h.IsHead():
		r.head = true
	default:
		r.Status = Bypass
		c.stats.bypass.Add(1)
		return r
	}

	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.key = appendKey(sc.key[:0], req)

	forceRevalidate := false
	if cc := h.PeekAll(fasthttp.HeaderCacheControl); len(cc) > 0 {
		rd := parseRequestDirectives(cc)
		r.nostr = rd.noStore
		forceRevalidate = c.cfg.HonorClientNoCache && (rd.noCache || rd.maxAgeZero)
	} else if c.cfg.HonorClientNoCache {
		forceRevalidate = bytes.Contains(h.Peek(fasthttp.HeaderPragma), []byte("no-cache"))
	}
	r.auth = len(h.Peek(fasthttp.HeaderAuthorization)) > 0
	r.ranged = len(h.Peek(fasthttp.HeaderRange)) > 0

	// The key string only lives for the map lookup: no allocation.
	obj, found := c.store.GetIfPresent(unsafe.String(unsafe.SliceData(sc.key), len(sc.key)))
	var e *Entry
	if found {
		for _, v := range obj.variants {
			var ok bool
			if sc.val, ok = v.matches(h, sc.val); ok {
				e = v
				break
			}
		}
	}
	if e != nil && r.auth && !e.authOK {
		// Stored for anonymous requests only (RFC 9111 3.5).
		e = nil
	}
	if e != nil {
		r.Entry = e
		age := e.Age(now)
		if !forceRevalidate && e.fresh(age) {
			r.Status = Hit
			c.stats.hits.Add(1)
			return r
		}
		r.key = string(sc.key)
		if !forceRevalidate && !e.noCache && age-e.lifetime < e.swr {
			r.Status = Stale
			c.stats.stale.Add(1)
			// A HEAD request cannot fetch a body to refresh with; the next
			// GET will.
			if !r.head {
				if f := c.flights.lead(r.key, now); f != nil {
					r.flight = f
					r.Refresh = true
				}
			}
			return r
		}
		r.Status = Revalidate
	} else {
		r.key = string(sc.key)
		r.Status = Miss
	}

	// Only requests whose response can be stored for others lead or wait.
	if !coalesce || r.head || r.auth || r.nostr || r.ranged || (found && obj.passing(now)) {
		c.count(r.Status)
		return r
	}
	f, leader := c.flights.join(r.key, now)
	if leader {
		r.flight = f
		c.count(r.Status)
		return r
	}
	if !c.flights.wait(f, c.cfg.CoalesceTimeout) {
		// The leader is slow: fetch on our own. The wait is not part of
		// the response delay that ages what we fetch.
		r.at = c.clock.Now()
		c.count(r.Status)
		return r
	}
	c.stats.coalesced.Add(1)
	return c.lookup(req, false)
}

// count records a Miss or Revalidate outcome (hits and stale hits are
// counted where they are decided).
func (c *Cache) count(s Status) {
	if s == Miss {
		c.stats.misses.Add(1)
	} else {
		c.stats.revalidate.Add(1)
	}
}
