package httpcache

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func httpDate(t time.Time) string { return string(fasthttp.AppendHTTPDate(nil, t)) }

func TestCacheability(t *testing.T) {
	now := epoch
	tests := []struct {
		name      string
		cfg       Config
		method    string
		reqHdr    []string
		status    int
		respHdr   []string
		body      string
		want      reason
		lifetime  time.Duration
		age       time.Duration
		swr, sie  time.Duration
		noCache   bool
		bodyBytes int
	}{
		{name: "max-age", status: 200, respHdr: []string{"Cache-Control: max-age=60"}, lifetime: time.Minute},
		{name: "s-maxage wins over max-age", status: 200, respHdr: []string{"Cache-Control: max-age=10, s-maxage=100"}, lifetime: 100 * time.Second},
		{name: "s-maxage alone", status: 200, respHdr: []string{"Cache-Control: s-maxage=5"}, lifetime: 5 * time.Second},
		{name: "directives split over lines", status: 200, respHdr: []string{"Cache-Control: public", "Cache-Control: max-age=7"}, lifetime: 7 * time.Second},
		{name: "quoted and upper case", status: 200, respHdr: []string{`Cache-Control: PUBLIC, Max-Age="42"`}, lifetime: 42 * time.Second},
		{name: "first max-age wins", status: 200, respHdr: []string{"Cache-Control: max-age=5, max-age=100"}, lifetime: 5 * time.Second},
		{name: "invalid max-age is stale", status: 200, respHdr: []string{"Cache-Control: max-age=abc", `ETag: "x"`}, lifetime: 0},
		{name: "invalid max-age without validator", status: 200, respHdr: []string{"Cache-Control: max-age=abc"}, want: whyNoFreshness},
		{name: "huge max-age capped", status: 200, respHdr: []string{"Cache-Control: max-age=99999999999999"}, lifetime: seconds(maxDelta)},
		{name: "public without freshness", status: 200, respHdr: []string{"Cache-Control: public"}, want: whyNoFreshness},
		{name: "nothing, no default", status: 200, want: whyNoFreshness},
		{name: "default_ttl", cfg: Config{DefaultTTL: 30 * time.Second}, status: 200, lifetime: 30 * time.Second},
		{name: "default_ttl not over explicit", cfg: Config{DefaultTTL: 30 * time.Second}, status: 200, respHdr: []string{"Cache-Control: max-age=3"}, lifetime: 3 * time.Second},
		{name: "default_ttl not over max-age=0", cfg: Config{DefaultTTL: 30 * time.Second}, status: 200, respHdr: []string{"Cache-Control: max-age=0", "Last-Modified: " + httpDate(now.Add(-time.Hour))}, lifetime: 0},
		{name: "validator only", status: 200, respHdr: []string{`ETag: "v1"`}, lifetime: 0},
		{name: "last-modified only", status: 200, respHdr: []string{"Last-Modified: " + httpDate(now.Add(-time.Hour))}, lifetime: 0},
		{name: "expires with date", status: 200, respHdr: []string{"Date: " + httpDate(now), "Expires: " + httpDate(now.Add(2*time.Minute))}, lifetime: 2 * time.Minute},
		{name: "expires in the past", status: 200, respHdr: []string{"Expires: " + httpDate(now.Add(-time.Minute))}, want: whyNoFreshness},
		{name: "invalid expires", status: 200, respHdr: []string{"Expires: 0"}, want: whyNoFreshness},
		{name: "expires ignored under max-age", status: 200, respHdr: []string{"Cache-Control: max-age=9", "Expires: " + httpDate(now.Add(time.Hour))}, lifetime: 9 * time.Second},
		{name: "no-store", status: 200, respHdr: []string{"Cache-Control: no-store, max-age=60"}, want: whyNoStore},
		{name: "private", status: 200, respHdr: []string{"Cache-Control: private, max-age=60"}, want: whyPrivate},
		{name: "private qualified", status: 200, respHdr: []string{`Cache-Control: private="Set-Cookie", max-age=60`}, want: whyPrivate},
		{name: "no-cache stored for revalidation", status: 200, respHdr: []string{"Cache-Control: no-cache, max-age=60", `ETag: "a"`}, lifetime: time.Minute, noCache: true},
		{name: "no-cache without validator", status: 200, respHdr: []string{"Cache-Control: no-cache, max-age=60"}, want: whyNoFreshness},
		{name: "set-cookie", status: 200, respHdr: []string{"Cache-Control: max-age=60", "Set-Cookie: a=b"}, want: whySetCookie},
		{name: "vary star", status: 200, respHdr: []string{"Cache-Control: max-age=60", "Vary: Accept, *"}, want: whyVaryStar},
		{name: "203", status: 203, respHdr: []string{"Cache-Control: max-age=60"}, lifetime: time.Minute},
		{name: "204", status: 204, respHdr: []string{"Cache-Control: max-age=60"}, lifetime: time.Minute},
		{name: "301", status: 301, respHdr: []string{"Cache-Control: max-age=60", "Location: /x"}, lifetime: time.Minute},
		{name: "404", status: 404, respHdr: []string{"Cache-Control: max-age=60"}, lifetime: time.Minute},
		{name: "410", status: 410, respHdr: []string{"Cache-Control: max-age=60"}, lifetime: time.Minute},
		{name: "201 not cached", status: 201, respHdr: []string{"Cache-Control: max-age=60"}, want: whyStatus},
		{name: "302 not cached", status: 302, respHdr: []string{"Cache-Control: max-age=60", "Location: /x"}, want: whyStatus},
		{name: "206 not cached", status: 206, respHdr: []string{"Cache-Control: max-age=60", "Content-Range: bytes 0-1/10"}, want: whyPartial},
		{name: "500 not cached", status: 500, respHdr: []string{"Cache-Control: max-age=60"}, want: whyStatus},
		{name: "HEAD response", method: "HEAD", status: 200, respHdr: []string{"Cache-Control: max-age=60"}, want: whyMethod},
		{name: "request no-store", reqHdr: []string{"Cache-Control: no-store"}, status: 200, respHdr: []string{"Cache-Control: max-age=60"}, want: whyRequestNoStore},
		{name: "Age header", status: 200, respHdr: []string{"Cache-Control: max-age=60", "Age: 50"}, lifetime: time.Minute, age: 50 * time.Second},
		{name: "apparent age from Date", status: 200, respHdr: []string{"Cache-Control: max-age=60", "Date: " + httpDate(now.Add(-30*time.Second))}, lifetime: time.Minute, age: 30 * time.Second},
		{name: "arrived stale without validator", status: 200, respHdr: []string{"Cache-Control: max-age=60", "Age: 61"}, want: whyNoFreshness},
		{name: "swr and sie directives", status: 200, respHdr: []string{"Cache-Control: max-age=1, stale-while-revalidate=30, stale-if-error=600"}, lifetime: time.Second, swr: 30 * time.Second, sie: 10 * time.Minute},
		{name: "config stale defaults", cfg: Config{StaleWhileRevalidate: 5 * time.Second, StaleIfError: time.Hour}, status: 200, respHdr: []string{"Cache-Control: max-age=1"}, lifetime: time.Second, swr: 5 * time.Second, sie: time.Hour},
		{name: "directive wins over config", cfg: Config{StaleWhileRevalidate: 5 * time.Second, StaleIfError: time.Hour}, status: 200, respHdr: []string{"Cache-Control: max-age=1, stale-while-revalidate=2, stale-if-error=0"}, lifetime: time.Second, swr: 2 * time.Second},
		{name: "s-maxage disables config stale defaults", cfg: Config{StaleWhileRevalidate: 5 * time.Second, StaleIfError: time.Hour}, status: 200, respHdr: []string{"Cache-Control: s-maxage=1"}, lifetime: time.Second},
		{name: "s-maxage with explicit swr", status: 200, respHdr: []string{"Cache-Control: s-maxage=1, stale-while-revalidate=9"}, lifetime: time.Second, swr: 9 * time.Second},
		{name: "must-revalidate forbids stale", cfg: Config{StaleIfError: time.Hour}, status: 200, respHdr: []string{"Cache-Control: max-age=1, must-revalidate, stale-if-error=60"}, lifetime: time.Second},
		{name: "proxy-revalidate forbids stale", cfg: Config{StaleWhileRevalidate: time.Hour}, status: 200, respHdr: []string{"Cache-Control: max-age=1, proxy-revalidate"}, lifetime: time.Second},
		{name: "stale-if-error alone keeps it", status: 200, respHdr: []string{"Cache-Control: max-age=0, stale-if-error=60"}, lifetime: 0, sie: time.Minute},
		{name: "too large", cfg: Config{MaxObjectSize: 8}, status: 200, respHdr: []string{"Cache-Control: max-age=60"}, body: "123456789", want: whyTooLarge},
		{name: "at the limit", cfg: Config{MaxObjectSize: 8}, status: 200, respHdr: []string{"Cache-Control: max-age=60"}, body: "12345678", lifetime: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newCache(t, tt.cfg)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := request(t, method, "http://example.com/x", tt.reqHdr...)
			resp := response(t, now, tt.status, tt.body, tt.respHdr...)
			res := c.Lookup(req)
			_, why := c.newEntry(&res, tt.status, readHead(&resp.Header), now)
			e := c.Store(&res, req, resp, resp.Body())
			if why == stored && len(tt.body) > int(c.cfg.MaxObjectSize) {
				why = whyTooLarge
			}
			if why != tt.want {
				t.Fatalf("reason = %q, want %q", why, tt.want)
			}
			if tt.want != stored {
				if e != nil {
					t.Fatalf("stored, want not stored (%s)", tt.want)
				}
				if got := c.Stats().Stores; got != 0 {
					t.Fatalf("Stores = %d", got)
				}
				return
			}
			if e == nil {
				t.Fatal("not stored")
			}
			if e.lifetime != tt.lifetime {
				t.Errorf("lifetime = %v, want %v", e.lifetime, tt.lifetime)
			}
			if got := e.Age(now); got != tt.age {
				t.Errorf("age = %v, want %v", got, tt.age)
			}
			if e.swr != tt.swr || e.sie != tt.sie {
				t.Errorf("swr, sie = %v, %v, want %v, %v", e.swr, e.sie, tt.swr, tt.sie)
			}
			if e.noCache != tt.noCache {
				t.Errorf("noCache = %v", e.noCache)
			}
			if string(e.Body()) != tt.body {
				t.Errorf("body = %q", e.Body())
			}
		})
	}
}

// TestStoredFields checks that hop-by-hop and recomputed fields are not
// replayed and that the others are, in order.
func TestStoredFields(t *testing.T) {
	c, clk := newCache(t, Config{})
	req := request(t, "GET", "http://example.com/f")
	resp := response(t, clk.Now(), 200, "body",
		"Cache-Control: max-age=60", "Content-Type: text/html", "Link: </a>; rel=preload", "Link: </b>; rel=preload",
		"Connection: X-Hop", "X-Hop: 1", "Keep-Alive: timeout=5", "Age: 3", "X-Cache: HIT", "Surrogate-Key: a b", "X-Other: yes")
	if c.Store(ptr(c.Lookup(req)), req, resp, resp.Body()) == nil {
		t.Fatal("not stored")
	}
	out := fetch(t, c, request(t, "GET", "http://example.com/f"), nil)
	for _, gone := range []string{"X-Hop", "Keep-Alive"} {
		if v := out.Header.Peek(gone); len(v) > 0 {
			t.Errorf("%s replayed: %q", gone, v)
		}
	}
	if got := out.Header.PeekAll("Link"); len(got) != 2 {
		t.Errorf("Link = %q, want both lines", got)
	}
	if got := string(out.Header.Peek("X-Other")); got != "yes" {
		t.Errorf("X-Other = %q", got)
	}
	if got := string(out.Header.ContentType()); got != "text/html" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := string(out.Header.Peek(HeaderXCache)); got != XCacheHit {
		t.Errorf("X-Cache = %q", got)
	}
	if got := string(out.Header.Peek("Age")); got != "3" {
		t.Errorf("Age = %q, want 3 (the origin's)", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestStoreIncompleteBody(t *testing.T) {
	c, clk := newCache(t, Config{})
	req := request(t, "GET", "http://example.com/short")
	resp := response(t, clk.Now(), 200, "0123456789", "Cache-Control: max-age=60")
	res := c.Lookup(req)
	if c.Store(&res, req, resp, []byte("01234")) != nil {
		t.Fatal("stored a truncated body")
	}
}

func TestRevalidationDropsUncacheableReplacement(t *testing.T) {
	c, clk := newCache(t, Config{})
	req := request(t, "GET", "http://example.com/p")
	fetch(t, c, req, func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "v1", "Cache-Control: max-age=1", `ETag: "1"`)
	})
	clk.Advance(2 * time.Second)
	out := fetch(t, c, request(t, "GET", "http://example.com/p"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "mine", "Cache-Control: private")
	})
	if string(out.Body()) != "mine" || string(out.Header.Peek(HeaderXCache)) != XCacheMiss {
		t.Fatalf("got %q %q", out.Body(), out.Header.Peek(HeaderXCache))
	}
	res := c.Lookup(request(t, "GET", "http://example.com/p"))
	defer res.Release()
	if res.Status != Miss {
		t.Fatalf("status %v: the outdated entry was kept", res.Status)
	}
}

func TestInvalidateUnsafe(t *testing.T) {
	tests := []struct {
		method string
		status int
		gone   bool
	}{
		{"POST", 200, true},
		{"PUT", 204, true},
		{"DELETE", 302, true},
		{"PATCH", 500, false},
		{"POST", 404, false},
		{"GET", 200, false},
		{"OPTIONS", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+statusText(tt.status), func(t *testing.T) {
			c, clk := newCache(t, Config{})
			fetch(t, c, request(t, "GET", "http://example.com/doc"), func(*fasthttp.Request) *fasthttp.Response {
				return response(t, clk.Now(), 200, "doc", "Cache-Control: max-age=60")
			})
			c.Invalidate(request(t, tt.method, "http://example.com/doc"), tt.status)
			res := c.Lookup(request(t, "GET", "http://example.com/doc"))
			defer res.Release()
			if gone := res.Status == Miss; gone != tt.gone {
				t.Fatalf("status %v, want gone=%v", res.Status, tt.gone)
			}
		})
	}
}

func statusText(status int) string { return strings.TrimSpace(fasthttp.StatusMessage(status)) }
