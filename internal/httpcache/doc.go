// Package httpcache owns the edge's HTTP response cache: RFC 9111
// semantics for a shared cache, one Cache per route that opts in.
//
// The package decides and stores; the engine (internal/httpproxy) does the
// I/O. Per request the engine calls Lookup and follows the Status:
//
//	res := cache.Lookup(&ctx.Request)
//	defer res.Release() // ends this request's fetch if it led one
//	switch res.Status {
//	case httpcache.Hit:
//		cache.Serve(&res, &ctx.Request, &ctx.Response)
//		return
//	case httpcache.Stale:
//		cache.Serve(&res, &ctx.Request, &ctx.Response)
//		if res.Refresh {
//			bg := res.Detach()             // the refresh now owns the fetch
//			req := copyOf(&ctx.Request)      // never keep ctx past the handler
//			go refresh(cache, &bg, req)      // fetch (GET), cache.Store, bg.Release
//		}
//		return
//	case httpcache.Bypass:
//		forward(ctx)
//		cache.Invalidate(&ctx.Request, ctx.Response.StatusCode())
//		return
//	}
//	// Miss or Revalidate: this request leads the fetch (or another one's
//	// fetch did not store anything usable).
//	up := outboundCopy(&ctx.Request)
//	res.PrepareUpstream(&up.Header) // drop client validators, add the entry's
//	err := fetch(up, resp)
//	if err != nil || isServerError(resp.StatusCode()) {
//		if cache.StaleIfError(&res) {
//			cache.Serve(&res, &ctx.Request, &ctx.Response)
//			return
//		}
//		// answer the error as usual
//	}
//	if buffered(resp) {
//		if cache.Store(&res, &ctx.Request, resp, resp.Body()) != nil {
//			cache.Serve(&res, &ctx.Request, &ctx.Response) // MISS or REVALIDATED
//			return
//		}
//		// (a 304 Store refused left res.Status == Miss: fetch once more)
//	} else if cache.Storable(&res, &resp.Header) {
//		body = cache.Tee(&res, &ctx.Request, &resp.Header, body)
//	}
//	// pass resp through with X-Cache: res.Label()
//
// # Semantics
//
//   - Stored: responses to GET with status 200, 203, 204, 301, 404 or 410
//     whose freshness comes from s-maxage (which wins), max-age, Expires
//     (against Date) or the route's default_ttl; heuristic freshness is
//     never used. Never stored: no-store, private, Vary: *, Set-Cookie,
//     bodies over max_object_size, responses to requests with no-store or
//     (unless public, s-maxage or must-revalidate) Authorization. no-cache
//     responses are stored and revalidated before every use.
//   - Keys: scheme, host (lower-cased, port kept), raw path and query; GET
//     and HEAD share entries. Vary selects among up to 32 variants per key
//     by the normalised values of the named request headers.
//   - Revalidation: PrepareUpstream sends the entry's ETag/Last-Modified;
//     Store applies a 304 (headers merged, freshness renewed). Serve
//     answers the client's own If-None-Match / If-Modified-Since with 304.
//   - stale-while-revalidate and stale-if-error: the response's directives
//     win over the route's defaults; the defaults do not apply with
//     s-maxage, and nothing stale is served against no-cache,
//     must-revalidate or proxy-revalidate.
//   - Coalescing: concurrent misses of a key make one origin request; the
//     others wait in Lookup (at most coalesce_timeout) and look again. A
//     URL whose response turned out uncacheable skips coalescing for 30s.
//   - Memory: otter's W-TinyLFU eviction with a weigher bounds the total
//     weight (bodies + headers + bookkeeping) by max_size. Entries without
//     validators expire once past their stale windows.
//   - Purges (PurgeURL, PurgePrefix, PurgeSurrogateKey, PurgeAll) also
//     drop the results of fetches already in flight when they ran.
//
// # Concurrency
//
// A Cache is safe for concurrent use. Lookup of a fresh entry reads one
// otter entry and a few atomics, takes no lock and allocates nothing.
// Entries are immutable; a refresh or 304 replaces them. A Result belongs
// to one request (or, after Detach, to one refresh goroutine).
package httpcache
