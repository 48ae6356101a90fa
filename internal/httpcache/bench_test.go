package httpcache

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func benchCache(b *testing.B, vary bool) (*Cache, *fasthttp.Request) {
	c, err := New(Config{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	hdr := []string{"Cache-Control: public, max-age=3600", "Content-Type: text/html; charset=utf-8", `ETag: "abc123"`}
	reqHdr := []string{"User-Agent: bench", "Accept: */*"}
	if vary {
		hdr = append(hdr, "Vary: Accept-Encoding")
		reqHdr = append(reqHdr, "Accept-Encoding: gzip, br")
	}
	// Other keys so the lookup is not alone in the table.
	for i := range 1000 {
		req := request(b, "GET", fmt.Sprintf("http://example.com/other/%d", i), reqHdr...)
		res := c.Lookup(req)
		resp := response(b, c.clock.Now(), 200, "x", hdr...)
		c.Store(&res, req, resp, resp.Body())
	}
	req := request(b, "GET", "http://example.com/static/app.js?v=3", reqHdr...)
	res := c.Lookup(req)
	resp := response(b, c.clock.Now(), 200, strings.Repeat("b", 2048), hdr...)
	if c.Store(&res, req, resp, resp.Body()) == nil {
		b.Fatal("not stored")
	}
	return c, req
}

// BenchmarkLookupHit is the hot path of a cached route: key, table read,
// variant selection and freshness.
func BenchmarkLookupHit(b *testing.B) {
	for _, vary := range []bool{false, true} {
		b.Run(fmt.Sprintf("vary=%v", vary), func(b *testing.B) {
			c, req := benchCache(b, vary)
			b.ReportAllocs()
			for b.Loop() {
				res := c.Lookup(req)
				if res.Status != Hit {
					b.Fatal(res.Status)
				}
			}
		})
	}
}

func BenchmarkLookupHitParallel(b *testing.B) {
	c, _ := benchCache(b, true)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := request(b, "GET", "http://example.com/static/app.js?v=3", "Accept-Encoding: gzip, br")
		for pb.Next() {
			if res := c.Lookup(req); res.Status != Hit {
				b.Error(res.Status)
				return
			}
		}
	})
}

// BenchmarkServeHit is a lookup plus writing the entry into a response.
func BenchmarkServeHit(b *testing.B) {
	c, req := benchCache(b, true)
	resp := new(fasthttp.Response)
	b.ReportAllocs()
	for b.Loop() {
		res := c.Lookup(req)
		resp.Reset()
		c.Serve(&res, req, resp)
	}
}

// BenchmarkMissStore is a miss led, stored and released.
func BenchmarkMissStore(b *testing.B) {
	c, err := New(Config{MaxSize: 8 << 20}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	resp := response(b, c.clock.Now(), 200, strings.Repeat("b", 1024), "Cache-Control: max-age=60", "Content-Type: text/plain")
	reqs := make([]*fasthttp.Request, 4096)
	for i := range reqs {
		reqs[i] = request(b, "GET", fmt.Sprintf("http://example.com/m/%d", i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := reqs[i%len(reqs)]
		i++
		res := c.Lookup(req)
		c.Store(&res, req, resp, resp.Body())
		res.Release()
		if i%len(reqs) == 0 {
			c.PurgeAll()
		}
	}
}
