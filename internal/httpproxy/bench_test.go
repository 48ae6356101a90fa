package httpproxy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/router/httproute"
)

// startHelloBackend runs a fasthttp hello server on 127.0.0.1.
func startHelloBackend(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello world") }}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// benchEdge serves an engine on an in-memory listener and returns a client
// connected to it.
func benchEdge(b *testing.B, cfg *Config) *fasthttp.HostClient {
	mustValid(b, cfg)
	eng, err := New(cfg, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = eng.Serve(ctx, []net.Listener{ln}); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return &fasthttp.HostClient{Addr: "edge", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConns: 1024}
}

// BenchmarkProxy measures one proxied GET end to end (client → edge →
// loopback backend → client). Allocations count the whole process: the
// fasthttp client and backend allocate nothing in the steady state, so
// allocs/op is the edge's.
func BenchmarkProxy(b *testing.B) {
	cases := []struct {
		name   string
		modify func(*Config)
	}{
		{"round_robin", func(*Config) {}},
		{"p2c_ewma", func(c *Config) { c.Upstreams[0].Balancer.Policy = "p2c_ewma" }},
		{"consistent_hash", func(c *Config) {
			c.Upstreams[0].Balancer.Policy = "consistent_hash"
			c.Upstreams[0].Balancer.HashKey = "header:X-User"
		}},
		{"header_rewrite", func(c *Config) {
			c.Routes = []httproute.RouteConfig{{Upstream: "web", RequestHeaders: httproute.HeaderOpsConfig{Set: map[string]string{"X-Env": "bench"}, Remove: []string{"X-Debug"}}, ResponseHeaders: httproute.HeaderOpsConfig{Set: map[string]string{"X-Served-By": "edge"}}}}
		}},
		{"access_log", func(c *Config) {
			c.AccessLog = AccessLogConfig{Enabled: true, Output: filepath.Join(os.TempDir(), "tiergate-bench-access.log")}
		}},
		{"expr_route", func(c *Config) {
			c.Routes = []httproute.RouteConfig{{Upstream: "web", Match: httproute.MatchConfig{Expr: `Header("X-User") != "" && Path startsWith "/"`}}}
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cfg := &Config{
				Listeners: []ListenerConfig{{Name: "bench", Address: "127.0.0.1:0"}},
				Upstreams: []UpstreamConfig{{Name: "web", Backends: []BackendConfig{{Address: startHelloBackend(b)}, {Address: startHelloBackend(b)}}}},
			}
			tc.modify(cfg)
			c := benchEdge(b, cfg)
			b.Cleanup(func() { _ = os.Remove(filepath.Join(os.TempDir(), "tiergate-bench-access.log")) })
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				req.SetRequestURI("http://edge/hello")
				req.Header.Set("X-User", "user-42")
				for pb.Next() {
					if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("%v %d", err, resp.StatusCode())
					}
				}
			})
		})
	}
}
