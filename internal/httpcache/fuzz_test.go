package httpcache

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzStoreServe runs arbitrary freshness, validator and Vary headers and
// arbitrary client conditionals through Store, Lookup and Serve: nothing
// panics, a served body is always the stored body or a slice of it, and
// a hit never serves another variant's body.
func FuzzStoreServe(f *testing.F) {
	f.Add("max-age=60", "Accept-Encoding", "", "0", `"a"`, "gzip", "gzip", "bytes=0-3", `"a"`, int64(30))
	f.Add("s-maxage=1, stale-while-revalidate=5", "X-A, x-b", "Sun, 06 Nov 1994 08:49:37 GMT", "7", `W/"b"`, "1", "2", "bytes=-1", "*", int64(3))
	f.Add("no-cache", "", "0", "-1", "", "", "", "bytes=5-1", `"x", W/"y"`, int64(0))
	f.Add(`private="x, max-age=1`, "*", "", "", "", "", "", "", "", int64(1))
	f.Fuzz(func(t *testing.T, cc, vary, expires, age, etag, v1, v2, rng, inm string, advance int64) {
		c, clk := newCache(t, Config{DefaultTTL: 10 * time.Second, StaleIfError: time.Minute})
		hdr := "HTTP/1.1 200 OK\r\nDate: " + httpDate(clk.Now()) + "\r\nContent-Length: 10\r\n"
		for _, kv := range [][2]string{{"Cache-Control", cc}, {"Vary", vary}, {"Expires", expires}, {"Age", age}, {"ETag", etag}} {
			if kv[1] != "" && !strings.ContainsAny(kv[1], "\r\n") {
				hdr += kv[0] + ": " + kv[1] + "\r\n"
			}
		}
		resp := new(fasthttp.Response)
		if err := resp.Read(bufio.NewReader(strings.NewReader(hdr + "\r\n0123456789"))); err != nil {
			return
		}
		mk := func(v string, extra ...string) *fasthttp.Request {
			req := new(fasthttp.Request)
			req.SetRequestURI("http://example.com/f")
			for _, name := range []string{"Accept-Encoding", "X-A", "X-B"} {
				if v != "" && !strings.ContainsAny(v, "\r\n") {
					req.Header.Set(name, v)
				}
			}
			for i := 0; i+1 < len(extra); i += 2 {
				if extra[i+1] != "" && !strings.ContainsAny(extra[i+1], "\r\n") {
					req.Header.Set(extra[i], extra[i+1])
				}
			}
			return req
		}
		req1 := mk(v1)
		res := c.Lookup(req1)
		stored := c.Store(&res, req1, resp, resp.Body())
		res.Release()
		clk.Advance(time.Duration(advance%3600) * time.Second)

		req2 := mk(v2, "Range", rng, "If-None-Match", inm)
		res2 := c.Lookup(req2)
		defer res2.Release()
		if res2.Status == Hit || res2.Status == Stale {
			if stored == nil {
				t.Fatal("hit without a store")
			}
			out := new(fasthttp.Response)
			c.Serve(&res2, req2, out)
			if body := string(out.Body()); !strings.Contains("0123456789", body) {
				t.Fatalf("served %q", body)
			}
			variesOnAE := false
			for name := range strings.SplitSeq(vary, ",") {
				variesOnAE = variesOnAE || strings.EqualFold(strings.TrimSpace(name), "Accept-Encoding")
			}
			if variesOnAE && strings.TrimSpace(strings.ToLower(v1)) != strings.TrimSpace(strings.ToLower(v2)) && !strings.Contains(v1+v2, ",") {
				t.Fatalf("variant %q served for %q (Vary %q)", v1, v2, vary)
			}
		}
	})
}
