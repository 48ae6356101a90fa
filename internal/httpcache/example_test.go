package httpcache_test

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/tiergate/tiergate/internal/httpcache"
)

// Example walks one URL through a miss, its store and a hit, the way the
// engine calls the cache.
func Example() {
	cache, err := httpcache.New(httpcache.Config{Enabled: true}, httpcache.Options{})
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	req := new(fasthttp.Request)
	req.SetRequestURI("http://example.com/logo.svg")

	for range 2 {
		res := cache.Lookup(req)
		out := new(fasthttp.Response)
		switch res.Status {
		case httpcache.Hit:
			cache.Serve(&res, req, out)
		case httpcache.Miss:
			up := new(fasthttp.Request)
			req.CopyTo(up)
			res.PrepareUpstream(&up.Header)
			resp := originFetch(up)
			if cache.Store(&res, req, resp, resp.Body()) != nil {
				cache.Serve(&res, req, out)
			}
		}
		res.Release()
		fmt.Println(res.Status, string(out.Header.Peek(httpcache.HeaderXCache)), string(out.Body()))
	}
	s := cache.Stats()
	fmt.Println("hits", s.Hits, "misses", s.Misses, "stores", s.Stores)
	// Output:
	// miss MISS <svg/>
	// hit HIT <svg/>
	// hits 1 misses 1 stores 1
}

// originFetch stands in for the engine's round trip.
func originFetch(*fasthttp.Request) *fasthttp.Response {
	raw := "HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nContent-Type: image/svg+xml\r\nContent-Length: 6\r\n\r\n<svg/>"
	resp := new(fasthttp.Response)
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		panic(err)
	}
	return resp
}
