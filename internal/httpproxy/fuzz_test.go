package httpproxy

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOversizedHead: a request head over max_header_bytes gets 431 and the
// edge keeps serving others.
func TestOversizedHead(t *testing.T) {
	b := startBackend(t, "a")
	cfg := baseConfig(b)
	cfg.Listeners[0].MaxHeaderBytes = 4096
	te := startEdge(t, cfg)
	conn, err := net.Dial("tcp", te.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8192) + "\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 431 {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	if r, _ := get(t, newHTTPClient(), te.url+"/"); r.StatusCode != 200 {
		t.Fatal("edge stopped serving")
	}
}

// FuzzEdgeRequest sends arbitrary bytes as a request: the edge must answer
// with some HTTP status or close, never crash, and keep serving.
func FuzzEdgeRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: X-A, close\r\nX-A: 1\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET http://other/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01garbage\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	b := startBackend(f, "a")
	te := startEdge(f, baseConfig(b))
	f.Fuzz(func(t *testing.T, raw []byte) {
		conn, err := net.Dial("tcp", te.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Write(raw)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(conn)
		conn.Close()
		if buf.Len() > 0 && !bytes.HasPrefix(buf.Bytes(), []byte("HTTP/1.")) {
			t.Fatalf("answer is not HTTP: %q", buf.Bytes()[:min(buf.Len(), 80)])
		}
		// Still serving.
		c, err := net.Dial("tcp", te.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("edge not serving after input %q: %v", raw, err)
		}
	})
}
