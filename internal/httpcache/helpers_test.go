package httpcache

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// epoch is the fake clock's start: a fixed instant so Date headers are
// reproducible.
var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: epoch} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// newCache builds a cache with cfg (defaults filled) on a fake clock.
func newCache(t testing.TB, cfg Config) (*Cache, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	c, err := New(cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, clk
}

// request builds a client request: "GET http://example.com/path" plus
// header lines "Name: value".
func request(t testing.TB, method, url string, headers ...string) *fasthttp.Request {
	t.Helper()
	req := new(fasthttp.Request)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return req
}

// response builds an origin response from a status, header lines and body,
// parsed from wire format like one read from an origin. Date defaults to
// now.
func response(t testing.TB, now time.Time, status int, body string, headers ...string) *fasthttp.Response {
	t.Helper()
	var b strings.Builder
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + fasthttp.StatusMessage(status) + "\r\n")
	hasDate := false
	for _, h := range headers {
		k, _, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		if strings.EqualFold(strings.TrimSpace(k), "Date") {
			hasDate = true
		}
		b.WriteString(h + "\r\n")
	}
	if !hasDate {
		b.WriteString("Date: " + string(fasthttp.AppendHTTPDate(nil, now)) + "\r\n")
	}
	if status != 204 && status != 304 {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	resp := new(fasthttp.Response)
	if err := resp.Read(bufioReader(b.String())); err != nil {
		t.Fatal(err)
	}
	return resp
}

// fetch runs one request through the cache the way the engine does, with
// origin answering misses and revalidations (nil origin: must not be
// called). It returns the response the client gets.
func fetch(t testing.TB, c *Cache, req *fasthttp.Request, origin func(up *fasthttp.Request) *fasthttp.Response) *fasthttp.Response {
	t.Helper()
	out := new(fasthttp.Response)
	res := c.Lookup(req)
	defer res.Release()
	switch res.Status {
	case Hit, Stale:
		c.Serve(&res, req, out)
		return out
	case Bypass:
		t.Fatalf("unexpected bypass")
	}
	if origin == nil {
		t.Fatalf("origin called for %s (status %v)", req.URI(), res.Status)
	}
	up := new(fasthttp.Request)
	req.CopyTo(up)
	res.PrepareUpstream(&up.Header)
	resp := origin(up)
	if resp == nil || resp.StatusCode() >= 500 {
		if c.StaleIfError(&res) {
			c.Serve(&res, req, out)
			return out
		}
		if resp == nil {
			out.SetStatusCode(502)
			return out
		}
	}
	if c.Store(&res, req, resp, resp.Body()) != nil {
		c.Serve(&res, req, out)
		return out
	}
	resp.CopyTo(out)
	out.Header.Set(HeaderXCache, res.Label())
	return out
}

// testOrigin is a net/http origin on 127.0.0.1 that counts requests.
type testOrigin struct {
	srv   *httptest.Server
	calls atomic.Int64
}

func newOrigin(t testing.TB, h http.HandlerFunc) *testOrigin {
	t.Helper()
	o := &testOrigin{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *testOrigin) addr() string { return strings.TrimPrefix(o.srv.URL, "http://") }

// testProxy is a minimal engine: a fasthttp server on 127.0.0.1 that
// follows the integration recipe of the package doc, in front of one
// origin. It is the reference for wiring the cache into the edge.
type testProxy struct {
	cache     *Cache
	origin    *fasthttp.HostClient
	client    *fasthttp.HostClient // to the proxy
	refreshes sync.WaitGroup
}

func newProxy(t testing.TB, c *Cache, origin *testOrigin) *testProxy {
	t.Helper()
	p := &testProxy{cache: c, origin: &fasthttp.HostClient{Addr: origin.addr(), MaxConns: 1024}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.client = &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1024}
	srv := &fasthttp.Server{Handler: p.handle, Concurrency: 4096}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		p.refreshes.Wait()
	})
	return p
}

func (p *testProxy) handle(ctx *fasthttp.RequestCtx) {
	c := p.cache
	res := c.Lookup(&ctx.Request)
	defer res.Release()
	switch res.Status {
	case Hit, Stale:
		c.Serve(&res, &ctx.Request, &ctx.Response)
		if res.Refresh {
			bg := res.Detach()
			req := fasthttp.AcquireRequest()
			ctx.Request.CopyTo(req)
			p.refreshes.Add(1)
			go p.refresh(&bg, req)
		}
		return
	case Bypass:
		up := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(up)
		ctx.Request.CopyTo(up)
		if err := p.origin.Do(up, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
		c.Invalidate(&ctx.Request, ctx.Response.StatusCode())
		return
	}
	up := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(up)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	ctx.Request.CopyTo(up)
	res.PrepareUpstream(&up.Header)
	err := p.origin.DoTimeout(up, resp, 5*time.Second)
	if err != nil || resp.StatusCode() >= 500 {
		if c.StaleIfError(&res) {
			c.Serve(&res, &ctx.Request, &ctx.Response)
			return
		}
		if err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			return
		}
	}
	if c.Store(&res, &ctx.Request, resp, resp.Body()) != nil {
		c.Serve(&res, &ctx.Request, &ctx.Response)
		return
	}
	resp.CopyTo(&ctx.Response)
	ctx.Response.Header.Set(HeaderXCache, res.Label())
}

// refresh is the background half of stale-while-revalidate.
func (p *testProxy) refresh(bg *Result, req *fasthttp.Request) {
	defer p.refreshes.Done()
	defer fasthttp.ReleaseRequest(req)
	defer bg.Release()
	req.Header.SetMethod(fasthttp.MethodGet)
	bg.PrepareUpstream(&req.Header)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := p.origin.DoTimeout(req, resp, 5*time.Second); err != nil {
		return
	}
	p.cache.Store(bg, req, resp, resp.Body())
}

// get sends GET path (Host: example.com) with extra header lines to the
// proxy.
func (p *testProxy) get(t testing.TB, path string, headers ...string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://example.com" + path)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp := new(fasthttp.Response)
	if err := p.client.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func cut(h string) (k, v string, ok bool) {
	k, v, ok = strings.Cut(h, ":")
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}
