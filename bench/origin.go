package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// The cache scenario's origin: a small cacheable object on every path,
// and a counter of the requests that reached it, so the harness can show
// that the measured requests were cache hits.
const (
	// originBodySize is the object's size: a small static asset.
	originBodySize = 1024
	// originCacheControl makes the object cacheable by a shared cache
	// for an hour: longer than any run.
	originCacheControl = "public, max-age=3600"
	// originStatsPath answers the request count (not counted itself).
	originStatsPath = "/__origin_requests"
)

// serveOrigin runs the cache origin on addr until ctx ends. Every path
// but /healthz (health checks) and originStatsPath answers 200 with a
// 1 KiB body and Cache-Control originCacheControl, and is counted.
func serveOrigin(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	body := []byte(strings.Repeat("tiergate cache bench object.\n", originBodySize/29+1)[:originBodySize])
	var served atomic.Int64
	srv := &fasthttp.Server{
		Name:                  "origin",
		NoDefaultServerHeader: true,
		Handler: func(c *fasthttp.RequestCtx) {
			switch string(c.Path()) {
			case "/healthz":
				c.SetBodyString("ok")
				return
			case originStatsPath:
				c.Response.Header.Set("Cache-Control", "no-store")
				c.SetBody(strconv.AppendInt(nil, served.Load(), 10))
				return
			}
			served.Add(1)
			c.SetContentType("text/plain")
			c.Response.Header.Set("Cache-Control", originCacheControl)
			c.SetBody(body)
		},
	}
	return serveUntil(ctx, srv, ln)
}
