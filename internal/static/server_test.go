package static

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startServer serves h on 127.0.0.1 the way the engine will: the route
// handler passes the normalised request path.
func startServer(t *testing.T, h *Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) { h.Serve(ctx, ctx.Path()) },
		Logger:  nopLogger{},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func TestOverHTTP(t *testing.T) {
	tr := newTree(t)
	addr := startServer(t, newHandler(t, Config{Root: tr.root, StripPrefix: "/assets/"}))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	do := func(method, path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	resp, body := do("GET", "/assets/data.bin", "Range: bytes=10-19")
	if resp.StatusCode != 206 || !bytes.Equal(body, tr.data[10:20]) || resp.Header.Get("Content-Range") != "bytes 10-19/10000" {
		t.Fatalf("range: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Range"), body)
	}
	resp, body = do("GET", "/assets/data.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, tr.data) {
		t.Fatalf("whole file: %d, %d bytes", resp.StatusCode, len(body))
	}
	etag := resp.Header.Get("ETag")
	if resp, _ = do("GET", "/assets/data.bin", "If-None-Match: "+etag); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	resp, body = do("GET", "/assets/app.3f9a1c.js", "Accept-Encoding: br")
	if resp.Header.Get("Content-Encoding") != "br" || string(body) != string(tr.jsBr) || resp.Header.Get("Cache-Control") != immutableCacheControl {
		t.Fatalf("brotli: %q %q %q", resp.Header.Get("Content-Encoding"), body, resp.Header.Get("Cache-Control"))
	}
	resp, body = do("GET", "/assets/app.3f9a1c.js", "Accept-Encoding: gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, tr.jsGz) {
		t.Fatalf("gzip: %q", resp.Header.Get("Content-Encoding"))
	}
	resp, body = do("HEAD", "/assets/style.css")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(tr.css)) {
		t.Fatalf("HEAD: %d len %d body %d", resp.StatusCode, resp.ContentLength, len(body))
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ = do("GET", "/assets/dir"); resp.StatusCode != 301 || resp.Header.Get("Location") != "./dir/" {
		t.Fatalf("dir redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestRawTraversalOverTCP sends request lines no well-behaved client
// would, straight over a socket.
func TestRawTraversalOverTCP(t *testing.T) {
	tr := newTree(t)
	addr := startServer(t, newHandler(t, Config{Root: tr.root, StripPrefix: "/assets"}))
	targets := []string{
		"/assets/../outside/secret.txt",
		"/assets/%2e%2e/outside/secret.txt",
		"/assets/%2e%2e%2foutside%2fsecret.txt",
		"/assets/..%5coutside%5csecret.txt",
		"/assets/%252e%252e/outside/secret.txt",
		"/assets/link-out.txt",
		"/assets/link-dir/secret.txt",
		"/assets/.env",
		"/assets//../../outside/secret.txt",
		"http://x/assets/../../outside/secret.txt",
	}
	for _, target := range targets {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if bytes.Contains(body, []byte(secret)) {
			t.Fatalf("%s: secret served", target)
		}
		if resp.StatusCode != 400 && resp.StatusCode != 404 {
			t.Errorf("%s: status %d", target, resp.StatusCode)
		}
	}
}
