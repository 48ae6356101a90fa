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
	e.proxy(ctx, g, route, up, peer, clientIP, st, start)
}

// proxy forwards one request to a backend of up, retrying on another
// backend when that is safe, and streams the response back.
func (e *Engine) proxy(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, peer, clientIP netip.Addr, st *reqState, start time.Time) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	released := false
	defer func() {
		fasthttp.ReleaseRequest(req)
		if !released {
			fasthttp.ReleaseResponse(resp)
		}
	}()

	// The outbound request: the client's head minus hop-by-hop headers,
	// plus ours, with the route's rewrites.
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

	// The body: small ones are buffered so a retry can replay them; larger
	// or unknown-length ones stream straight through and are not replayed
	// once any of them was sent.
	cl := ctx.Request.Header.ContentLength()
	replayable := true
	switch {
	case cl == 0 || cl == -2: // -2: no Content-Length and not chunked, so no body
	case cl > 0 && int64(cl) <= int64(up.cfg.Retry.MaxReplayBody):
		req.SetBodyRaw(ctx.Request.Body())
	default:
		replayable = false
		req.SetBodyStream(ctx.RequestBodyStream(), cl)
	}

	var key []byte
	if up.hasHash {
		st.keyBuf = hashKey(st.keyBuf[:0], up.hashKey, ctx, clientIP)
		key = st.keyBuf
	}

	up.budget.onRequest()
	idempotent := isIdempotent(ctx.Method())
	maxRetries := *up.cfg.Retry.Attempts
	var exclude *balancer.Backend
	var be *backend
	var lastErr error
	for attempt := 0; ; attempt++ {
		pr, err := up.bal.Pick(balancer.PickInfo{Key: key, Exclude: exclude})
		if err != nil {
			if lastErr != nil {
				// No other backend to retry on: report the last failure.
				e.failErr(ctx, g, route, up, be, lastErr, start, attempt-1)
				return
			}
			e.fail(ctx, g, route, up, fasthttp.StatusServiceUnavailable, reasonNoBackend, start, attempt)
			return
		}
		be = up.backendOf(pr.Backend)
		t0 := time.Now()
		var deadline time.Time
		if up.cfg.Timeout > 0 {
			deadline = t0.Add(up.cfg.Timeout)
		}
		var held *heldConn
		held, err = roundTrip(be, req, resp, deadline)
		lat := time.Since(t0)
		if err == nil {
			status := resp.StatusCode()
			if up.retryableStatus(status) && idempotent && replayable && attempt < maxRetries && up.budget.tryRetry() {
				if held != nil {
					_ = resp.CloseBodyStream()
					held.finish(false)
				}
				pr.Done(errRetryStatus, lat)
				e.passive(up, be, status, nil)
				be.retries.Add(1)
				exclude = pr.Backend
				resp.Reset()
				continue
			}
			e.passive(up, be, status, nil)
			st.attempt = attempt
			e.respond(ctx, route, up, be, resp, held, pr, lat)
			if up.sticky && !bytes.Equal(key, be.stickyID) {
				setStickyCookie(&ctx.Response.Header, up.hashKey.Name, be.stickyID)
			}
			released = true // the response now belongs to the client stream
			e.logAccess(ctx, g, route, up, be, start, attempt, reasonNone)
			return
		}
		pr.Done(err, lat)
		e.passive(up, be, 0, err)
		be.responses[0].Add(1)
		// Retry when nothing reached the backend (connect failure, pool
		// full, a stale keep-alive connection), or when the request can be
		// replayed and repeating it is harmless.
		var sent *sentError
		canRetry := !errors.As(err, &sent) || (idempotent && replayable)
		if canRetry && attempt < maxRetries && up.budget.tryRetry() {
			be.retries.Add(1)
			exclude = pr.Backend
			lastErr = err
			resp.Reset()
			continue
		}
		e.failErr(ctx, g, route, up, be, err, start, attempt)
		return
	}
}

var errRetryStatus = errors.New("retryable status")

// failErr answers a failed attempt: 504 for a timeout, 502 otherwise.
func (e *Engine) failErr(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, be *backend, err error, start time.Time, attempt int) {
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
	_ = be
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
func (e *Engine) respond(ctx *fasthttp.RequestCtx, route *httproute.Route, up *upstream, be *backend, resp *fasthttp.Response, held *heldConn, pr balancer.PickResult, lat time.Duration) {
	out := &ctx.Response
	resp.Header.CopyTo(&out.Header)
	out.Header.SetNoDefaultContentType(true)
	st := reqStatePool.Get().(*reqState)
	st.strip = stripResponseHopByHop(&out.Header, st.strip)
	reqStatePool.Put(st)
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
