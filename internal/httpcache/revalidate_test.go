package httpcache

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// validatingOrigin serves "v1" with the given Cache-Control and answers
// If-None-Match "v1" with 304 and fresh headers. It records the validators
// it was sent.
type validatingOrigin struct {
	*testOrigin
	revs    atomic.Int64
	lastINM atomic.Value // string
	lastIMS atomic.Value // string
}

func newValidatingOrigin(t *testing.T, clk *fakeClock, cc, cc304 string) *validatingOrigin {
	vo := &validatingOrigin{}
	vo.lastINM.Store("")
	vo.lastIMS.Store("")
	lm := httpDate(epoch.Add(-time.Hour))
	vo.testOrigin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		vo.lastINM.Store(r.Header.Get("If-None-Match"))
		vo.lastIMS.Store(r.Header.Get("If-Modified-Since"))
		w.Header().Set("Date", httpDate(clk.Now()))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", cc304)
			w.Header().Set("X-Rev", strconv.FormatInt(vo.revs.Add(1), 10))
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", lm)
		w.Header().Set("X-Rev", "0")
		_, _ = w.Write([]byte("version one"))
	})
	return vo
}

func TestRevalidation304(t *testing.T) {
	c, clk := newCache(t, Config{})
	o := newValidatingOrigin(t, clk, "max-age=10", "max-age=20")
	p := newProxy(t, c, o.testOrigin)

	steps := []struct {
		advance time.Duration
		hdr     []string
		xcache  string
		status  int
		calls   int64
		rev     string
	}{
		{0, nil, XCacheMiss, 200, 1, "0"},
		{5 * time.Second, nil, XCacheHit, 200, 1, "0"},
		{6 * time.Second, nil, XCacheRevalidated, 200, 2, "1"}, // age 11 > 10
		{0, nil, XCacheHit, 200, 2, "1"},
		{15 * time.Second, nil, XCacheHit, 200, 2, "1"}, // the 304 gave 20s
		{6 * time.Second, []string{`If-None-Match: "other"`}, XCacheRevalidated, 200, 3, "2"},
		{0, []string{`If-None-Match: "v1"`}, XCacheHit, 304, 3, ""},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		resp := p.get(t, "/doc", s.hdr...)
		if got := string(resp.Header.Peek(HeaderXCache)); got != s.xcache || resp.StatusCode() != s.status {
			t.Fatalf("step %d: %d %s, want %d %s", i, resp.StatusCode(), got, s.status, s.xcache)
		}
		if n := o.calls.Load(); n != s.calls {
			t.Fatalf("step %d: origin calls %d, want %d", i, n, s.calls)
		}
		if s.status == 200 {
			if string(resp.Body()) != "version one" {
				t.Fatalf("step %d: body %q", i, resp.Body())
			}
			if got := string(resp.Header.Peek("X-Rev")); got != s.rev {
				t.Fatalf("step %d: X-Rev %q, want %q (headers not refreshed)", i, got, s.rev)
			}
		}
	}
	// The origin saw the stored validators, not the client's.
	if got := o.lastINM.Load(); got != `"v1"` {
		t.Errorf("origin If-None-Match %q", got)
	}
	if got := o.lastIMS.Load(); got != httpDate(epoch.Add(-time.Hour)) {
		t.Errorf("origin If-Modified-Since %q", got)
	}
	if s := c.Stats(); s.Revalidated != 2 || s.Stores != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestNoCacheRevalidatesEveryUse(t *testing.T) {
	c, clk := newCache(t, Config{StaleWhileRevalidate: time.Hour, StaleIfError: time.Hour})
	o := newValidatingOrigin(t, clk, "no-cache", "no-cache")
	p := newProxy(t, c, o.testOrigin)
	for i, want := range []string{XCacheMiss, XCacheRevalidated, XCacheRevalidated} {
		resp := p.get(t, "/nc")
		if got := string(resp.Header.Peek(HeaderXCache)); got != want {
			t.Fatalf("request %d: %s, want %s", i, got, want)
		}
	}
	if n := o.calls.Load(); n != 3 {
		t.Fatalf("origin calls %d", n)
	}
}

func TestHonorClientNoCache(t *testing.T) {
	tests := []struct {
		honor  bool
		hdr    string
		xcache string
	}{
		{false, "Cache-Control: no-cache", XCacheHit},
		{false, "Cache-Control: max-age=0", XCacheHit},
		{false, "Pragma: no-cache", XCacheHit},
		{true, "Cache-Control: no-cache", XCacheRevalidated},
		{true, "Cache-Control: max-age=0", XCacheRevalidated},
		{true, "Pragma: no-cache", XCacheRevalidated},
		{true, "Cache-Control: max-age=5", XCacheHit},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatBool(tt.honor)+" "+tt.hdr, func(t *testing.T) {
			c, clk := newCache(t, Config{HonorClientNoCache: tt.honor})
			o := newValidatingOrigin(t, clk, "max-age=60", "max-age=60")
			p := newProxy(t, c, o.testOrigin)
			p.get(t, "/x")
			resp := p.get(t, "/x", tt.hdr)
			if got := string(resp.Header.Peek(HeaderXCache)); got != tt.xcache {
				t.Fatalf("X-Cache %s, want %s", got, tt.xcache)
			}
		})
	}
}

// TestRevalidation304OtherETag checks that a 304 naming another validator
// drops the stored response instead of refreshing it.
func TestRevalidation304OtherETag(t *testing.T) {
	c, clk := newCache(t, Config{})
	fetch(t, c, request(t, "GET", "http://example.com/e"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "old", "Cache-Control: max-age=1", `ETag: "a"`)
	})
	clk.Advance(2 * time.Second)
	req := request(t, "GET", "http://example.com/e")
	res := c.Lookup(req)
	if res.Status != Revalidate {
		t.Fatalf("status %v", res.Status)
	}
	if e := c.Store(&res, req, response(t, clk.Now(), 304, "", `ETag: "b"`, "Cache-Control: max-age=60"), nil); e != nil {
		t.Fatal("a mismatched 304 refreshed the entry")
	}
	if res.Status != Miss {
		t.Fatalf("status %v after a mismatched 304, want Miss (fetch again)", res.Status)
	}
	up := new(fasthttp.Request)
	req.CopyTo(up)
	res.PrepareUpstream(&up.Header)
	if len(up.Header.Peek("If-None-Match")) != 0 {
		t.Fatal("the refetch still carries validators")
	}
	res = c.Lookup(req)
	defer res.Release()
	if res.Status != Miss {
		t.Fatalf("status %v after mismatched 304", res.Status)
	}
}

// TestRevalidationHeadRequest checks that a HEAD revalidation refreshes
// the GET entry with a 304.
func TestRevalidationHeadRequest(t *testing.T) {
	c, clk := newCache(t, Config{})
	fetch(t, c, request(t, "GET", "http://example.com/hd"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "body", "Cache-Control: max-age=1", `ETag: "a"`)
	})
	clk.Advance(2 * time.Second)
	req := request(t, "HEAD", "http://example.com/hd")
	res := c.Lookup(req)
	if res.Status != Revalidate || res.Leader() {
		t.Fatalf("status %v leader %v", res.Status, res.Leader())
	}
	up := new(fasthttp.Request)
	req.CopyTo(up)
	res.PrepareUpstream(&up.Header)
	if string(up.Header.Peek("If-None-Match")) != `"a"` {
		t.Fatalf("no validator sent: %q", up.Header.Peek("If-None-Match"))
	}
	if c.Store(&res, req, response(t, clk.Now(), 304, "", `ETag: "a"`, "Cache-Control: max-age=60"), nil) == nil || res.Status != Revalidated {
		t.Fatal("HEAD 304 did not refresh")
	}
	got := c.Lookup(request(t, "GET", "http://example.com/hd"))
	defer got.Release()
	if got.Status != Hit || string(got.Entry.Body()) != "body" {
		t.Fatalf("GET after HEAD revalidation: %v", got.Status)
	}
}

// TestRevalidation304NoStore checks that a 304 whose new headers forbid
// storing still answers the request that asked, then the entry is gone.
func TestRevalidation304NoStore(t *testing.T) {
	c, clk := newCache(t, Config{})
	fetch(t, c, request(t, "GET", "http://example.com/ns"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "body", "Cache-Control: max-age=1", `ETag: "a"`)
	})
	clk.Advance(2 * time.Second)
	out := fetch(t, c, request(t, "GET", "http://example.com/ns"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 304, "", `ETag: "a"`, "Cache-Control: no-store")
	})
	if out.StatusCode() != 200 || string(out.Body()) != "body" || string(out.Header.Peek(HeaderXCache)) != XCacheRevalidated {
		t.Fatalf("got %d %q %s", out.StatusCode(), out.Body(), out.Header.Peek(HeaderXCache))
	}
	if got := string(out.Header.Peek("Cache-Control")); got != "no-store" {
		t.Fatalf("Cache-Control %q: the 304's headers not applied", got)
	}
	res := c.Lookup(request(t, "GET", "http://example.com/ns"))
	defer res.Release()
	if res.Status != Miss {
		t.Fatalf("status %v: kept against no-store", res.Status)
	}
}

// TestRangedRevalidationKeepsEntry checks that a 206 answer to a ranged
// request for a stale entry does not evict it.
func TestRangedRevalidationKeepsEntry(t *testing.T) {
	c, clk := newCache(t, Config{})
	fetch(t, c, request(t, "GET", "http://example.com/rg"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "0123456789", "Cache-Control: max-age=1", `ETag: "a"`)
	})
	clk.Advance(2 * time.Second)
	fetch(t, c, request(t, "GET", "http://example.com/rg", "Range: bytes=0-1"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 206, "01", "Content-Range: bytes 0-1/10", `ETag: "a"`)
	})
	res := c.Lookup(request(t, "GET", "http://example.com/rg"))
	defer res.Release()
	if res.Status != Revalidate {
		t.Fatalf("status %v: entry lost to a 206", res.Status)
	}
}
