package httpcache

import (
	"strings"

	"github.com/maypok86/otter/v2"
	"github.com/valyala/fasthttp"
)

// PurgeURL removes every variant stored for one URL: "https://host/path?q"
// or "http://…" for one scheme, "host/path?q" for both. The host is
// case-insensitive; path and query must match the request's raw form. It
// returns the number of keys removed.
func (c *Cache) PurgeURL(rawURL string) int {
	c.epoch.Add(1)
	n := 0
	for _, k := range purgeKeys(rawURL) {
		if _, ok := c.store.Invalidate(k); ok {
			n++
		}
	}
	c.stats.purged.Add(uint64(n))
	return n
}

// PurgePrefix removes every URL starting with prefix ("host/path/", with
// an optional "http://" or "https://" to limit it to one scheme). It scans
// all keys: O(entries), meant for the admin API, not the request path.
func (c *Cache) PurgePrefix(prefix string) int {
	c.epoch.Add(1)
	scheme, rest := purgePrefix(prefix)
	var keys []string
	for k := range c.store.Keys() {
		if (scheme == 0 || k[0] == scheme) && strings.HasPrefix(keyURL(k), rest) {
			keys = append(keys, k)
		}
	}
	return c.invalidate(keys)
}

// PurgeSurrogateKey removes every variant whose response was tagged with
// key in its Surrogate-Key header (space-separated keys). It scans all
// entries: O(entries), meant for the admin API. It returns the number of
// variants removed.
func (c *Cache) PurgeSurrogateKey(key string) int {
	c.epoch.Add(1)
	var keys []string
	for k, o := range c.store.All() {
		for _, v := range o.variants {
			if v.hasSurrogateKey(key) {
				keys = append(keys, k)
				break
			}
		}
	}
	n := 0
	for _, k := range keys {
		c.store.ComputeIfPresent(k, func(old *object) (*object, otter.ComputeOp) {
			nw, op := without(k, old, func(v *Entry) bool {
				if v.hasSurrogateKey(key) {
					n++
					return true
				}
				return false
			})
			return nw, op
		})
	}
	c.stats.purged.Add(uint64(n))
	return n
}

// PurgeAll empties the cache.
func (c *Cache) PurgeAll() {
	c.epoch.Add(1)
	n := c.store.EstimatedSize()
	c.store.InvalidateAll()
	c.stats.purged.Add(uint64(n))
}

// Invalidate applies RFC 9111 4.4 after a request with an unsafe method
// (POST, PUT, DELETE, PATCH, …) got a non-error response (status < 400):
// every variant of the target URL is removed. Other requests are ignored.
func (c *Cache) Invalidate(req *fasthttp.Request, status int) {
	h := &req.Header
	if h.IsGet() || h.IsHead() || h.IsOptions() || h.IsTrace() || status >= 400 || status < 100 {
		return
	}
	sc := scratchPool.Get().(*scratch)
	sc.key = appendKey(sc.key[:0], req)
	key := string(sc.key)
	scratchPool.Put(sc)
	if _, ok := c.store.Invalidate(key); ok {
		c.stats.purged.Add(1)
	}
}

func (c *Cache) invalidate(keys []string) int {
	n := 0
	for _, k := range keys {
		if _, ok := c.store.Invalidate(k); ok {
			n++
		}
	}
	c.stats.purged.Add(uint64(n))
	return n
}
