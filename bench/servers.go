package main

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// helloBody is what the hello backends answer: the classic 13-byte
// "hello world" of proxy benchmarks.
const helloBody = "Hello, World!"

// serveHello runs a fasthttp hello backend on addr until ctx ends. Every
// path answers 200 with helloBody; /healthz answers "ok" (health checks).
func serveHello(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	body := []byte(helloBody)
	srv := &fasthttp.Server{
		Name:                  "hello",
		NoDefaultDate:         true,
		NoDefaultServerHeader: true,
		Handler: func(c *fasthttp.RequestCtx) {
			if string(c.Path()) == "/healthz" {
				c.SetBodyString("ok")
				return
			}
			c.SetContentType("text/plain")
			c.SetBody(body)
		},
	}
	return serveUntil(ctx, srv, ln)
}

// servePassthrough runs the bare fasthttp pass-through proxy: the ceiling
// a fasthttp-based proxy can reach. It forwards every request to the
// upstreams in turn over one HostClient each, dropping only the Connection
// header; no routing, health, retries, metrics or header hygiene.
func servePassthrough(ctx context.Context, addr string, upstreams []string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	clients := make([]*fasthttp.HostClient, len(upstreams))
	for i, u := range upstreams {
		clients[i] = &fasthttp.HostClient{Addr: u, MaxConns: 1024}
	}
	var next atomic.Uint32
	srv := &fasthttp.Server{
		Name:                          "passthrough",
		NoDefaultDate:                 true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: true,
		Handler: func(c *fasthttp.RequestCtx) {
			hc := clients[int(next.Add(1))%len(clients)]
			c.Request.Header.Del("Connection")
			if err := hc.Do(&c.Request, &c.Response); err != nil {
				c.Error("bad gateway: "+err.Error(), fasthttp.StatusBadGateway)
				return
			}
			c.Response.Header.Del("Connection")
		},
	}
	return serveUntil(ctx, srv, ln)
}

func serveUntil(ctx context.Context, srv *fasthttp.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Shutdown()
	}
}
