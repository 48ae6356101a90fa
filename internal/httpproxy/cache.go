package httpproxy

import (
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/httpcache"
	"github.com/tiergate/tiergate/router/httproute"
)

// cacheReq is one request's use of a route's response cache.
type cacheReq struct {
	c      *httpcache.Cache
	res    *httpcache.Result
	stored bool // refetch already applied a 304 to the entry
}

// proxyCached answers from the route's cache when it can, and otherwise
// proxies with the cache filled on the way back.
func (e *Engine) proxyCached(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, c *httpcache.Cache, peer, clientIP netip.Addr, st *reqState, start time.Time) {
	res := c.Lookup(&ctx.Request)
	defer res.Release()
	cr := &cacheReq{c: c, res: &res}
	switch res.Status {
	case httpcache.Hit, httpcache.Stale:
		e.serveCached(ctx, g, route, up, cr, start, 0)
		if res.Refresh {
			bg := res.Detach()
			req := fasthttp.AcquireRequest()
			ctx.Request.Header.CopyTo(&req.Header)
			st.buf = setForwarded(&req.Header, g.trusted, peer, ctx.IsTLS(), st.buf)
			go e.refresh(up, c, &bg, req)
		}
		return
	case httpcache.Bypass:
		e.proxy(ctx, g, route, up, peer, clientIP, st, start, nil)
		c.Invalidate(&ctx.Request, ctx.Response.StatusCode())
		return
	}
	e.proxy(ctx, g, route, up, peer, clientIP, st, start, cr)
}

// serveCached writes the stored entry (or its 304/206 form) to the client.
func (e *Engine) serveCached(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, cr *cacheReq, start time.Time, attempts int) {
	ctx.Response.Reset()
	cr.c.Serve(cr.res, &ctx.Request, &ctx.Response)
	route.Action.ResponseHeaders.Apply(&ctx.Response.Header)
	e.logAccess(ctx, g, route, up, nil, start, attempts, reasonNone)
}

// refetch handles the rare 304 whose validators no longer match the entry:
// Store refuses it and the request is sent again without validators. It
// reports whether it fetched again (f replaced).
func (cr *cacheReq) refetch(e *Engine, clientReq *fasthttp.Request, up *upstream, req *fasthttp.Request, key []byte, replayable bool, f *fetched) bool {
	if f.err != nil || f.resp.StatusCode() != fasthttp.StatusNotModified || f.held != nil {
		return false
	}
	if cr.c.Store(cr.res, clientReq, f.resp, nil) != nil {
		cr.stored = true // the 304 refreshed the entry: handle serves it
		return false
	}
	f.release()
	req.Header.Del("If-None-Match")
	req.Header.Del("If-Modified-Since")
	*f = e.fetch(up, req, key, true, replayable)
	return true
}

// handle fills the cache from a fetched response and, when the entry can
// answer, serves the client from it. It reports whether the response was
// fully handled; otherwise the caller passes f.resp through.
func (cr *cacheReq) handle(e *Engine, ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, f *fetched, start time.Time) bool {
	status := f.resp.StatusCode()
	if status >= 500 && cr.c.StaleIfError(cr.res) {
		f.release()
		e.serveCached(ctx, g, route, up, cr, start, f.attempts)
		return true
	}
	if f.held == nil {
		if !cr.stored && cr.c.Store(cr.res, &ctx.Request, f.resp, f.resp.Body()) == nil {
			return false
		}
		f.release()
		e.serveCached(ctx, g, route, up, cr, start, f.attempts)
		return true
	}
	if cr.c.Storable(cr.res, &f.resp.Header) {
		// The body streams to the client and into the cache as it passes.
		rb := acquireRespBody(f.resp, f.held, f.pr)
		tee := cr.c.Tee(cr.res, &ctx.Request, &f.resp.Header, rb)
		out := &ctx.Response
		f.resp.Header.CopyTo(&out.Header)
		out.Header.SetNoDefaultContentType(true)
		stripResponseHopByHop(&out.Header, nil)
		route.Action.ResponseHeaders.Apply(&out.Header)
		out.Header.Set("X-Cache", cr.res.Label())
		f.be.responses[min(status/100, 5)].Add(1)
		up.latency.Observe(f.lat.Seconds())
		size := f.resp.Header.ContentLength()
		if size < -1 {
			size = -1
		}
		out.SetBodyStream(tee, size)
		e.logAccess(ctx, g, route, up, f.be, start, f.attempts, reasonNone)
		return true
	}
	return false
}

// refresh revalidates a stale entry in the background
// (stale-while-revalidate). It owns req and bg.
func (e *Engine) refresh(up *upstream, c *httpcache.Cache, bg *httpcache.Result, req *fasthttp.Request) {
	defer fasthttp.ReleaseRequest(req)
	defer bg.Release()
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("cache refresh panicked", zap.Any("panic", r))
		}
	}()
	stripRequestHopByHop(&req.Header, nil)
	req.UseHostHeader = true
	req.Header.SetMethod(fasthttp.MethodGet)
	bg.PrepareUpstream(&req.Header)
	up.budget.onRequest()
	f := e.fetch(up, req, nil, true, true)
	if f.err != nil {
		return
	}
	defer f.release()
	if f.held == nil {
		c.Store(bg, req, f.resp, f.resp.Body())
	}
}
