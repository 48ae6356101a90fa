package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tiergate/tiergate/internal/browsertest"
	"github.com/tiergate/tiergate/internal/httpproxy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func backend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fetch(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestServeAndReload runs the edge from a config file, then changes the file:
// the new config takes effect, and an invalid edit is rejected while the old
// config keeps serving.
func TestServeAndReload(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	listen, adminAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.yaml")
	write := func(backendAddr string) {
		cfg := fmt.Sprintf("admin: {listen: %q}\nlisteners: [{name: t, address: %q}]\nupstreams:\n  - name: web\n    backends: [{address: %q}]\n", adminAddr, listen, backendAddr)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a)
	cfg, err := httpproxy.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := zap.New(zapCore(&logs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveWithPoll(ctx, path, cfg, log, 50*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	url := "http://" + listen + "/"
	poll(t, "edge serving A", func() bool { return fetch(url) == "A" })
	if got := fetch("http://" + adminAddr + "/readyz"); got != "ready\n" {
		t.Errorf("readyz: %q", got)
	}
	// A valid change is picked up from the file.
	write(b)
	poll(t, "edge serving B after the file changed", func() bool { return fetch(url) == "B" })
	// An invalid change is rejected and B keeps serving.
	if err := os.WriteFile(path, []byte("listeners: [{name: t, address: nope}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll(t, "the rejection to be logged", func() bool { return bytes.Contains(logs.Bytes(), []byte("config reload rejected")) })
	for range 20 {
		if got := fetch(url); got != "B" {
			t.Fatalf("after a rejected reload: %q", got)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func (s *syncBuffer) Sync() error { return nil }

func zapCore(w *syncBuffer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), w, zap.InfoLevel)
}

// TestDashboardInBrowser opens the admin dashboard in headless Chromium,
// kills a backend, and checks the page shows it down within a few seconds.
func TestDashboardInBrowser(t *testing.T) {
	bin := browsertest.Require(t)
	a := backend(t, "A")
	bLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "B") })}
	go func() { _ = bSrv.Serve(bLn) }()
	t.Cleanup(func() { _ = bSrv.Close() })
	b := bLn.Addr().String()

	listen, adminAddr := freeAddr(t), freeAddr(t)
	path := filepath.Join(t.TempDir(), "edge.yaml")
	cfgText := fmt.Sprintf("admin: {listen: %q}\nlisteners: [{name: t, address: %q}]\nupstreams:\n  - name: web\n    backends: [{address: %q}, {address: %q}]\n    health: {active: {path: /, interval: 200ms, fall: 2, rise: 1}}\n", adminAddr, listen, a, b)
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := httpproxy.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveWithPoll(ctx, path, cfg, zap.NewNop(), time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	dash := "http://" + adminAddr + "/"
	poll(t, "both backends up", func() bool { return strings.Contains(fetch("http://"+adminAddr+"/readyz"), "ready") })

	shots := t.TempDir()
	if dir := os.Getenv("BROWSERTEST_SHOTS"); dir != "" {
		shots = dir // keep them, e.g. for the README
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer bcancel()
	dom, err := browsertest.DumpDOM(bctx, bin, dash, 2500*time.Millisecond, filepath.Join(shots, "edge-up.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, fmt.Sprintf(`data-backend="%s" data-state="up"`, b)) {
		t.Fatalf("dashboard does not show %s up:\n%s", b, dom)
	}
	_ = bSrv.Close() // kill backend B
	killed := time.Now()
	var shown bool
	for time.Since(killed) < 20*time.Second && !shown {
		dom, err = browsertest.DumpDOM(bctx, bin, dash, 2500*time.Millisecond, filepath.Join(shots, "edge-down.png"))
		if err != nil {
			t.Fatal(err)
		}
		shown = strings.Contains(dom, fmt.Sprintf(`data-backend="%s" data-state="down"`, b))
	}
	if !shown {
		t.Fatalf("dashboard never showed the killed backend down:\n%s", dom)
	}
	t.Logf("killed backend shown down after %v; screenshots in %s", time.Since(killed).Round(100*time.Millisecond), shots)
}
