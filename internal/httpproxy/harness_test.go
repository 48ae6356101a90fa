package httpproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tiergate/tiergate/router/httproute"
)

// testBackend is a real HTTP server on 127.0.0.1 that names itself in the
// X-Backend header; its behaviour can be changed while it runs.
type testBackend struct {
	name    string
	addr    string
	ln      net.Listener
	srv     *http.Server
	hits    atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]
}

func startBackend(t testing.TB, name string) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{name: name, addr: ln.Addr().String(), ln: ln}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", b.name)
		if h := b.handler.Load(); h != nil {
			(*h)(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "hello from %s", b.name)
	})}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

func (b *testBackend) set(h http.HandlerFunc) { b.handler.Store(&h) }

// kill stops the backend abruptly: listener and every connection closed.
func (b *testBackend) kill() { _ = b.srv.Close() }

// restart listens again on the same address.
func (b *testBackend) restart(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err = net.Listen("tcp", b.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // port still in TIME_WAIT teardown
	}
	if err != nil {
		t.Fatal(err)
	}
	old := b.srv
	b.srv = &http.Server{Handler: old.Handler}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
}

// testEdge runs an Engine on a free loopback port.
type testEdge struct {
	eng    *Engine
	url    string
	addr   string
	cancel context.CancelFunc
	done   chan error // closed when Serve has returned; err holds its result
	err    error
}

func baseConfig(backends ...*testBackend) *Config {
	cfg := &Config{
		Listeners: []ListenerConfig{{Name: "test", Address: "127.0.0.1:0"}},
		Upstreams: []UpstreamConfig{{Name: "web"}},
	}
	for _, b := range backends {
		cfg.Upstreams[0].Backends = append(cfg.Upstreams[0].Backends, BackendConfig{Address: b.addr})
	}
	return cfg
}

func mustValid(t testing.TB, cfg *Config) *Config {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startEdge(t testing.TB, cfg *Config) *testEdge {
	t.Helper()
	mustValid(t, cfg)
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	} else {
		log = zap.NewNop()
	}
	eng, err := New(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	lns, err := eng.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	te := &testEdge{eng: eng, addr: lns[0].Addr().String(), cancel: cancel, done: make(chan error)}
	te.url = "http://" + te.addr
	go func() { te.err = eng.Serve(ctx, lns); close(te.done) }()
	t.Cleanup(te.stop)
	return te
}

func (te *testEdge) stop() {
	te.cancel()
	select {
	case <-te.done:
	case <-time.After(40 * time.Second):
	}
}

// newClient returns an HTTP client with its own keep-alive pool.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
}

func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "" {
			continue
		}
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// pollUntil polls cond until it holds or the deadline passes.
func pollUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func routeTo(upstream string) httproute.RouteConfig {
	return httproute.RouteConfig{Upstream: upstream}
}

type routeConfig = httproute.RouteConfig

func matchPrefix(p string) httproute.MatchConfig { return httproute.MatchConfig{PathPrefix: p} }
