package httpcache

import (
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestClientConditionals(t *testing.T) {
	lm := epoch.Add(-time.Hour)
	tests := []struct {
		name   string
		etag   string // stored ETag ("" for none)
		hdr    []string
		status int
	}{
		{"inm strong match", `"v1"`, []string{`If-None-Match: "v1"`}, 304},
		{"inm weak request", `"v1"`, []string{`If-None-Match: W/"v1"`}, 304},
		{"inm weak stored", `W/"v1"`, []string{`If-None-Match: "v1"`}, 304},
		{"inm in list", `"v1"`, []string{`If-None-Match: "a", "v1" ,"b"`}, 304},
		{"inm over lines", `"v1"`, []string{`If-None-Match: "a"`, `If-None-Match: "v1"`}, 304},
		{"inm comma inside tag", `"a,b"`, []string{`If-None-Match: "x", "a,b"`}, 304},
		{"inm star", `"v1"`, []string{`If-None-Match: *`}, 304},
		{"inm mismatch", `"v1"`, []string{`If-None-Match: "v2"`}, 200},
		{"inm wins over ims", `"v1"`, []string{`If-None-Match: "v2"`, "If-Modified-Since: " + httpDate(epoch)}, 200},
		{"inm without stored etag", "", []string{`If-None-Match: "v1"`}, 200},
		{"ims not modified", `"v1"`, []string{"If-Modified-Since: " + httpDate(lm)}, 304},
		{"ims later", `"v1"`, []string{"If-Modified-Since: " + httpDate(epoch)}, 304},
		{"ims earlier", `"v1"`, []string{"If-Modified-Since: " + httpDate(lm.Add(-time.Second))}, 200},
		{"ims invalid", `"v1"`, []string{"If-Modified-Since: yesterday"}, 200},
		{"unconditional", `"v1"`, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, Config{})
			hdr := []string{"Cache-Control: max-age=60", "Last-Modified: " + httpDate(lm), "Content-Type: text/plain", "X-Extra: 1"}
			if tt.etag != "" {
				hdr = append(hdr, "ETag: "+tt.etag)
			}
			fetch(t, c, request(t, "GET", "http://example.com/c"), func(*fasthttp.Request) *fasthttp.Response {
				return response(t, clk.Now(), 200, "hello", hdr...)
			})
			clk.Advance(5 * time.Second)
			out := fetch(t, c, request(t, "GET", "http://example.com/c", tt.hdr...), nil)
			if out.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d", out.StatusCode(), tt.status)
			}
			if got := string(out.Header.Peek("Age")); got != "5" {
				t.Errorf("Age = %q, want 5", got)
			}
			if tt.status == 304 {
				if len(out.Body()) != 0 {
					t.Errorf("304 with body %q", out.Body())
				}
				if len(out.Header.Peek("X-Extra")) != 0 {
					t.Error("304 repeats representation fields")
				}
				if string(out.Header.Peek("Cache-Control")) != "max-age=60" {
					t.Error("304 lacks Cache-Control")
				}
			} else if string(out.Body()) != "hello" {
				t.Errorf("body %q", out.Body())
			}
		})
	}
}

func TestConditionalOnlyFor200(t *testing.T) {
	c, clk := newCache(t, Config{})
	fetch(t, c, request(t, "GET", "http://example.com/404"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 404, "gone", "Cache-Control: max-age=60", `ETag: "n"`)
	})
	out := fetch(t, c, request(t, "GET", "http://example.com/404", `If-None-Match: "n"`), nil)
	if out.StatusCode() != 404 {
		t.Fatalf("status %d", out.StatusCode())
	}
}

func TestRangesFromCache(t *testing.T) {
	body := "0123456789"
	tests := []struct {
		name   string
		hdr    []string
		status int
		body   string
		crange string
	}{
		{"first bytes", []string{"Range: bytes=0-3"}, 206, "0123", "bytes 0-3/10"},
		{"suffix", []string{"Range: bytes=-2"}, 206, "89", "bytes 8-9/10"},
		{"open end", []string{"Range: bytes=7-"}, 206, "789", "bytes 7-9/10"},
		{"past the end clipped", []string{"Range: bytes=8-100"}, 206, "89", "bytes 8-9/10"},
		{"unsatisfiable", []string{"Range: bytes=20-30"}, 416, "", "bytes */10"},
		{"multiple ranges: whole body", []string{"Range: bytes=0-1,4-5"}, 200, body, ""},
		{"if-range etag match", []string{"Range: bytes=0-1", `If-Range: "r1"`}, 206, "01", "bytes 0-1/10"},
		{"if-range etag mismatch", []string{"Range: bytes=0-1", `If-Range: "old"`}, 200, body, ""},
		{"if-range date match", []string{"Range: bytes=0-1", "If-Range: " + httpDate(epoch.Add(-time.Hour))}, 206, "01", "bytes 0-1/10"},
		{"if-range date mismatch", []string{"Range: bytes=0-1", "If-Range: " + httpDate(epoch)}, 200, body, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, Config{})
			fetch(t, c, request(t, "GET", "http://example.com/r"), func(*fasthttp.Request) *fasthttp.Response {
				return response(t, clk.Now(), 200, body, "Cache-Control: max-age=60", `ETag: "r1"`, "Last-Modified: "+httpDate(epoch.Add(-time.Hour)))
			})
			out := fetch(t, c, request(t, "GET", "http://example.com/r", tt.hdr...), nil)
			if out.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d", out.StatusCode(), tt.status)
			}
			if string(out.Body()) != tt.body {
				t.Errorf("body %q, want %q", out.Body(), tt.body)
			}
			if got := string(out.Header.Peek("Content-Range")); got != tt.crange {
				t.Errorf("Content-Range %q, want %q", got, tt.crange)
			}
		})
	}
}

// TestRangeMissNotCoalesced checks that a Range request on a miss fetches
// on its own (its 206 is not stored) without blocking others.
func TestRangeMissNotCoalesced(t *testing.T) {
	c, _ := newCache(t, Config{})
	res := c.Lookup(request(t, "GET", "http://example.com/big", "Range: bytes=0-10"))
	defer res.Release()
	if res.Status != Miss || res.Leader() {
		t.Fatalf("status %v leader %v", res.Status, res.Leader())
	}
}

func TestHeadFromGetEntry(t *testing.T) {
	c, clk := newCache(t, Config{})
	fetch(t, c, request(t, "GET", "http://example.com/h"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "twelve bytes", "Cache-Control: max-age=60", "Content-Type: text/plain")
	})
	req := request(t, "HEAD", "http://example.com/h")
	res := c.Lookup(req)
	defer res.Release()
	if res.Status != Hit {
		t.Fatalf("status %v", res.Status)
	}
	out := new(fasthttp.Response)
	c.Serve(&res, req, out)
	if !out.SkipBody || len(out.Body()) != 0 {
		t.Fatalf("HEAD got a body %q", out.Body())
	}
	if out.Header.ContentLength() != 12 {
		t.Fatalf("Content-Length %d", out.Header.ContentLength())
	}
}

// TestServeOverWire checks hits as a client sees them through a real
// server: X-Cache, Age, HEAD framing and 304s.
func TestServeOverWire(t *testing.T) {
	c, _ := newCache(t, Config{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"w1"`)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("over the wire"))
	})
	p := newProxy(t, c, o)
	tests := []struct {
		name   string
		method string
		hdr    []string
		status int
		xcache string
		body   string
	}{
		{"miss", "GET", nil, 200, XCacheMiss, "over the wire"},
		{"hit", "GET", nil, 200, XCacheHit, "over the wire"},
		{"head hit", "HEAD", nil, 200, XCacheHit, ""},
		{"conditional hit", "GET", []string{`If-None-Match: "w1"`}, 304, XCacheHit, ""},
		{"range hit", "GET", []string{"Range: bytes=5-7"}, 206, XCacheHit, "the"},
	}
	for _, tt := range tests {
		req := fasthttp.AcquireRequest()
		req.Header.SetMethod(tt.method)
		req.SetRequestURI("http://example.com/wire")
		for _, h := range tt.hdr {
			k, v, _ := cut(h)
			req.Header.Set(k, v)
		}
		resp := new(fasthttp.Response)
		if tt.method == "HEAD" {
			resp.SkipBody = true
		}
		if err := p.client.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		fasthttp.ReleaseRequest(req)
		if resp.StatusCode() != tt.status || string(resp.Header.Peek(HeaderXCache)) != tt.xcache || string(resp.Body()) != tt.body {
			t.Errorf("%s: %d %s %q, want %d %s %q", tt.name, resp.StatusCode(), resp.Header.Peek(HeaderXCache), resp.Body(), tt.status, tt.xcache, tt.body)
		}
		if tt.method == "HEAD" && resp.Header.ContentLength() != len("over the wire") {
			t.Errorf("HEAD Content-Length %d", resp.Header.ContentLength())
		}
		if len(resp.Header.Peek("Age")) == 0 && tt.xcache == XCacheHit {
			t.Errorf("%s: no Age", tt.name)
		}
	}
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("origin called %d times", n)
	}
}
