package httpproxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/router/httproute"
)

// Why a request failed, for the status code, the access log and metrics.
const (
	reasonNone        = ""
	reasonNoRoute     = "no route"
	reasonNoBackend   = "no healthy backend"
	reasonConnect     = "backend connect failed"
	reasonTimeout     = "backend timeout"
	reasonBackendErr  = "backend error"
	reasonBadFraming  = "ambiguous framing"
	reasonBadResponse = "bad backend response"
)

// reqState is the per-request scratch space, pooled so a proxied request
// allocates nothing in the steady state.
type reqState struct {
	view    httproute.FastHTTPRequest
	strip   []string
	buf     []byte
	idBuf   []byte
	uriBuf  []byte
	cl, te  [][]byte
	keyBuf  []byte
	attempt int
}

var reqStatePool = sync.Pool{New: func() any { return new(reqState) }}

// handle is the fasthttp handler: the request walk of ARCHITECTURE.md.
func (e *Engine) handle(ctx *fasthttp.RequestCtx) {
	g := e.gen.Load()
	st := reqStatePool.Get().(*reqState)
	defer reqStatePool.Put(st)
	start := time.Now()
	peer := peerAddr(ctx)

	var err error
	if st.cl, st.te, err = checkRequestFraming(&ctx.Request.Header, st.cl, st.te); err != nil {
		ctx.SetConnectionClose()
		e.fail(ctx, g, nil, nil, fasthttp.StatusBadRequest, reasonBadFraming, start, 0)
		return
	}

	clientIP := g.trusted.ClientIP(peer, ctx.Request.Header.PeekAll("X-Forwarded-For"))
	st.view.Reset(&ctx.Request, clientIP)
	route, ok := g.routes.Match(&st.view)
	if !ok {
		e.fail(ctx, g, nil, nil, fasthttp.StatusNotFound, reasonNoRoute, start, 0)
		return
	}
	act := &route.Action
	switch act.Kind {
	case httproute.ActionRedirect:
		st.buf = act.Redirect.AppendLocation(st.buf[:0], &st.view)
		ctx.Response.Header.SetBytesV("Location", st.buf)
		ctx.SetStatusCode(act.Redirect.Status)
		act.ResponseHeaders.Apply(&ctx.Response.Header)
		e.logAccess(ctx, g, route, nil, nil, start, 0, reasonNone)
		return
	case httproute.ActionStatic:
		if h := g.statics[route.Index]; h != nil {
			h.Serve(ctx, st.view.Path())
		}
		act.ResponseHeaders.Apply(&ctx.Response.Header)
		e.logAccess(ctx, g, route, nil, nil, start, 0, reasonNone)
		return
	case httproute.ActionRespond:
		ctx.SetStatusCode(act.Respond.Status)
		if act.Respond.ContentType != "" {
			ctx.SetContentType(act.Respond.ContentType)
		} else {
			ctx.Response.Header.SetNoDefaultContentType(true)
		}
		ctx.Response.SetBodyString(act.Respond.Body)
		act.ResponseHeaders.Apply(&ctx.Response.Header)
		e.logAccess(ctx, g, route, nil, nil, start, 0, reasonNone)
		return
	}
	up := g.upstreams[act.Split.Pick(rand.Uint64()).Index]
	if ctx.Request.Header.ConnectionUpgrade() && len(ctx.Request.Header.Peek("Upgrade")) > 0 {
		e.tunnel(ctx, g, route, up, peer, st, start)
		return
	}
	if act.Cache != nil {
		if c := g.caches[route.Index]; c != nil {
			e.proxyCached(ctx, g, route, up, c, peer, clientIP, st, start)
			return
		}
	}
	e.proxy(ctx, g, route, up, peer, clientIP, st, start, nil)
}

// proxy forwards one request to a backend of up, retrying on another
// backend when that is safe, and streams the response back. With a cache
// (cr != nil, a Miss or Revalidate result) the response also fills it.
func (e *Engine) proxy(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, peer, clientIP netip.Addr, st *reqState, start time.Time, cr *cacheReq) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	replayable := e.outbound(ctx, g, route, up, peer, st, req)
	if cr != nil {
		cr.res.PrepareUpstream(&req.Header)
	}
	var key []byte
	if up.hasHash {
		st.keyBuf = hashKey(st.keyBuf[:0], up.hashKey, ctx, clientIP)
		key = st.keyBuf
	}
	up.budget.onRequest()
	f := e.fetch(up, req, key, isIdempotent(ctx.Method()), replayable)
	if cr != nil {
		// A 304 that no longer matches the entry is fetched again without
		// validators.
		cr.refetch(e, &ctx.Request, up, req, key, replayable, &f)
	}
	if f.err != nil {
		if cr != nil && cr.c.StaleIfError(cr.res) {
			e.serveCached(ctx, g, route, up, cr, start, f.attempts)
			return
		}
		if errors.Is(f.err, balancer.ErrNoBackend) {
			e.fail(ctx, g, route, up, fasthttp.StatusServiceUnavailable, reasonNoBackend, start, f.attempts)
			return
		}
		e.failErr(ctx, g, route, up, f.err, start, f.attempts)
		return
	}
	if cr != nil && cr.handle(e, ctx, g, route, up, &f, start) {
		return
	}
	e.respond(ctx, st, route, up, f.be, f.resp, f.held, f.pr, f.lat)
	if cr != nil {
		ctx.Response.Header.Set("X-Cache", cr.res.Label())
	}
	if up.sticky && !bytes.Equal(key, f.be.stickyID) {
		setStickyCookie(&ctx.Response.Header, up.hashKey.Name, f.be.stickyID)
	}
	e.logAccess(ctx, g, route, up, f.be, start, f.attempts, reasonNone)
}

// outbound builds the upstream request: the client's head minus hop-by-hop
// headers, plus ours, with the route's rewrites, and the body. Small bodies
// are buffered so a retry can replay them; larger or unknown-length ones
// stream straight through and are not replayed once any of them was sent.
func (e *Engine) outbound(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, peer netip.Addr, st *reqState, req *fasthttp.Request) (replayable bool) {
	ctx.Request.Header.CopyTo(&req.Header)
	req.UseHostHeader = true
	st.strip = stripRequestHopByHop(&req.Header, st.strip)
	act := &route.Action
	if !act.Rewrite.IsZero() {
		st.uriBuf = act.Rewrite.Append(st.uriBuf[:0], st.view.Path())
		if q := st.view.Query(); len(q) > 0 {
			st.uriBuf = append(st.uriBuf, '?')
			st.uriBuf = append(st.uriBuf, q...)
		}
		req.Header.SetRequestURIBytes(st.uriBuf)
	}
	st.buf = setForwarded(&req.Header, g.trusted, peer, ctx.IsTLS(), st.buf)
	st.idBuf = ensureRequestID(&req.Header, st.idBuf)
	act.RequestHeaders.Apply(&req.Header)

	cl := ctx.Request.Header.ContentLength()
	switch {
	case cl == 0 || cl == -2: // -2: no Content-Length and not chunked, so no body
	case cl > 0 && int64(cl) <= int64(up.cfg.Retry.MaxReplayBody):
		req.SetBodyRaw(ctx.Request.Body())
	default:
		req.SetBodyStream(ctx.RequestBodyStream(), cl)
		return false
	}
	return true
}

// fetched is the outcome of the attempt loop: a response (resp, with held
// set when its body still streams from the backend) or an error.
type fetched struct {
	resp     *fasthttp.Response
	held     *heldConn
	pr       balancer.PickResult
	be       *backend
	lat      time.Duration
	attempts int   // retries made
	err      error // set when there is no response; ErrNoBackend when none could be picked
}

// release frees a response the caller will not pass on.
func (f *fetched) release() {
	if f.resp == nil {
		return
	}
	if f.held != nil {
		_ = f.resp.CloseBodyStream()
		f.held.finish(false)
	}
	fasthttp.ReleaseResponse(f.resp)
	f.pr.Done(nil, f.lat)
	f.resp, f.held = nil, nil
}

// fetch runs the attempt loop: pick a backend (never the one that just
// failed), send, and retry on another backend when nothing reached the
// backend, or when the request can be replayed and repeating it is
// harmless, within the upstream's retry budget. On success the caller owns
// f.resp (and must end f.pr).
func (e *Engine) fetch(up *upstream, req *fasthttp.Request, key []byte, idempotent, replayable bool) fetched {
	maxRetries := *up.cfg.Retry.Attempts
	var exclude *balancer.Backend
	var f fetched
	for attempt := 0; ; attempt++ {
		f.attempts = max(attempt-1, 0)
		pr, err := up.bal.Pick(balancer.PickInfo{Key: key, Exclude: exclude})
		if err != nil {
			if f.err == nil {
				f.err = err
			}
			return f
		}
		f.attempts = attempt
		be := up.backendOf(pr.Backend)
		resp := fasthttp.AcquireResponse()
		t0 := time.Now()
		var deadline time.Time
		if up.cfg.Timeout > 0 {
			deadline = t0.Add(up.cfg.Timeout)
		}
		held, err := roundTrip(be, req, resp, deadline)
		lat := time.Since(t0)
		if err == nil {
			status := resp.StatusCode()
			e.passive(up, be, status, nil)
			if up.retryableStatus(status) && idempotent && replayable && attempt < maxRetries && up.budget.tryRetry() {
				if held != nil {
					_ = resp.CloseBodyStream()
					held.finish(false)
				}
				fasthttp.ReleaseResponse(resp)
				pr.Done(errRetryStatus, lat)
				be.retries.Add(1)
				exclude = pr.Backend
				continue
			}
			return fetched{resp: resp, held: held, pr: pr, be: be, lat: lat, attempts: attempt}
		}
		fasthttp.ReleaseResponse(resp)
		pr.Done(err, lat)
		e.passive(up, be, 0, err)
		be.responses[0].Add(1)
		f.err, f.be = err, be
		var sent *sentError
		canRetry := !errors.As(err, &sent) || (idempotent && replayable)
		if canRetry && attempt < maxRetries && up.budget.tryRetry() {
			be.retries.Add(1)
			exclude = pr.Backend
			continue
		}
		return f
	}
}

var errRetryStatus = errors.New("retryable status")

// failErr answers a failed attempt: 504 for a timeout, 502 otherwise.
func (e *Engine) failErr(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, err error, start time.Time, attempt int) {
	var dialErr *DialError
	switch {
	case errors.As(err, &dialErr):
		e.fail(ctx, g, route, up, fasthttp.StatusBadGateway, reasonConnect, start, attempt)
	case isTimeout(err) || errors.Is(err, fasthttp.ErrTimeout):
		e.fail(ctx, g, route, up, fasthttp.StatusGatewayTimeout, reasonTimeout, start, attempt)
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		e.fail(ctx, g, route, up, fasthttp.StatusServiceUnavailable, "backend connection limit", start, attempt)
	default:
		e.fail(ctx, g, route, up, fasthttp.StatusBadGateway, reasonBackendErr, start, attempt)
	}
}

// fail writes a short plain-text error response.
func (e *Engine) fail(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, status int, reason string, start time.Time, attempt int) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString(fasthttp.StatusMessage(status) + ": " + reason + "\n")
	if route != nil {
		route.Action.ResponseHeaders.Apply(&ctx.Response.Header)
	}
	e.logAccess(ctx, g, route, up, nil, start, attempt, reason)
}

// respond copies the backend response to the client; a body stream is
// handed over and released when the server has written it.
func (e *Engine) respond(ctx *fasthttp.RequestCtx, st *reqState, route *httproute.Route, up *upstream, be *backend, resp *fasthttp.Response, held *heldConn, pr balancer.PickResult, lat time.Duration) {
	out := &ctx.Response
	resp.Header.CopyTo(&out.Header)
	out.Header.SetNoDefaultContentType(true)
	st.strip = stripResponseHopByHop(&out.Header, st.strip)
	route.Action.ResponseHeaders.Apply(&out.Header)
	status := resp.StatusCode()
	be.responses[min(status/100, 5)].Add(1)
	up.latency.Observe(lat.Seconds())
	if held != nil {
		size := resp.Header.ContentLength()
		if size < -1 {
			size = -1
		}
		out.SetBodyStream(acquireRespBody(resp, held, pr), size)
		return
	}
	if !resp.SkipBody {
		out.SetBody(resp.Body())
	} else {
		out.SkipBody = true
	}
	fasthttp.ReleaseResponse(resp)
	pr.Done(nil, lat)
}

// respBody streams a backend body to the client. The server closes it
// after writing (or when the client went away); Close then returns the
// backend connection to its pool if the body was read to the end, closes it
// otherwise, and ends the balancer's in-flight count.
type respBody struct {
	resp  *fasthttp.Response
	held  *heldConn
	pr    balancer.PickResult
	start time.Time
	r     io.Reader
	eof   bool
}

var respBodyPool = sync.Pool{New: func() any { return new(respBody) }}

func acquireRespBody(resp *fasthttp.Response, held *heldConn, pr balancer.PickResult) *respBody {
	rb := respBodyPool.Get().(*respBody)
	*rb = respBody{resp: resp, held: held, pr: pr, start: time.Now(), r: resp.BodyStream()}
	return rb
}

func (rb *respBody) Read(p []byte) (int, error) {
	n, err := rb.r.Read(p)
	if err == io.EOF {
		rb.eof = true
	}
	return n, err
}

func (rb *respBody) Close() error {
	err := rb.resp.CloseBodyStream()
	rb.held.finish(rb.eof && rb.held.keep && err == nil)
	fasthttp.ReleaseResponse(rb.resp)
	rb.pr.Done(nil, time.Since(rb.start))
	*rb = respBody{}
	respBodyPool.Put(rb)
	return err
}

// setStickyCookie pins the client to the backend named by id.
func setStickyCookie(h *fasthttp.ResponseHeader, name string, id []byte) {
	c := fasthttp.AcquireCookie()
	c.SetKey(name)
	c.SetValueBytes(id)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	h.SetCookie(c)
	fasthttp.ReleaseCookie(c)
}

// hashKey extracts the consistent-hash key the upstream is configured for.
func hashKey(dst []byte, k balancer.HashKey, ctx *fasthttp.RequestCtx, clientIP netip.Addr) []byte {
	switch k.Source {
	case balancer.HashHeader:
		return append(dst, ctx.Request.Header.Peek(k.Name)...)
	case balancer.HashCookie:
		return append(dst, ctx.Request.Header.Cookie(k.Name)...)
	case balancer.HashClientIP:
		return clientIP.AppendTo(dst)
	case balancer.HashPath:
		return append(dst, ctx.Request.URI().PathOriginal()...)
	}
	return dst
}
