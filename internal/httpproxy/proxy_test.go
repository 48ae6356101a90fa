package httpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestProxyBasics(t *testing.T) {
	b := startBackend(t, "a")
	var seen http.Header
	var seenURI string
	b.set(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		seenURI = r.RequestURI
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "leak")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprint(w, "ok")
	})
	te := startEdge(t, baseConfig(b))
	c := newHTTPClient()
	resp, body := get(t, c, te.url+"/p/a%2Fb//c?x=1&y=%20", "Connection", "X-Hop-Me", "X-Hop-Me", "1", "X-Forwarded-For", "1.2.3.4", "X-Keep", "yes")
	if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if seenURI != "/p/a%2Fb//c?x=1&y=%20" {
		t.Errorf("path was normalised: %q", seenURI)
	}
	if seen.Get("X-Hop-Me") != "" {
		t.Errorf("header named in Connection was forwarded")
	}
	if seen.Get("X-Keep") != "yes" {
		t.Errorf("ordinary header dropped")
	}
	if got := seen.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("untrusted X-Forwarded-For not replaced: %q", got)
	}
	if seen.Get("X-Forwarded-Proto") != "http" || seen.Get("X-Forwarded-Host") == "" || len(seen.Get("X-Request-Id")) != 16 {
		t.Errorf("forwarding headers: %v", seen)
	}
	if resp.Header.Get("X-Secret-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("response hop-by-hop headers leaked: %v", resp.Header)
	}
}

func TestTrustedForwardedFor(t *testing.T) {
	b := startBackend(t, "a")
	var xff []string
	b.set(func(w http.ResponseWriter, r *http.Request) { xff = r.Header.Values("X-Forwarded-For") })
	cfg := baseConfig(b)
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	te := startEdge(t, cfg)
	get(t, newHTTPClient(), te.url+"/", "X-Forwarded-For", "10.1.1.1, 10.2.2.2", "X-Forwarded-For", "10.3.3.3")
	if len(xff) != 1 || xff[0] != "10.1.1.1, 10.2.2.2, 10.3.3.3, 127.0.0.1" {
		t.Fatalf("X-Forwarded-For = %q", xff)
	}
}

func TestErrorStatuses(t *testing.T) {
	slow := startBackend(t, "slow")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.set(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// A port nobody listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()

	cfg := &Config{
		Listeners: []ListenerConfig{{Name: "t", Address: "127.0.0.1:0"}},
		Upstreams: []UpstreamConfig{
			{Name: "dead", Backends: []BackendConfig{{Address: dead}}},
			{Name: "slow", Backends: []BackendConfig{{Address: slow.addr}}, ResponseTimeout: 200 * time.Millisecond},
		},
	}
	cfg.Routes = []routeConfig{
		{Name: "dead", Match: matchPrefix("/dead"), Upstream: "dead"},
		{Name: "slow", Match: matchPrefix("/slow"), Upstream: "slow"},
	}
	te := startEdge(t, cfg)
	c := newHTTPClient()
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/dead", 502, "connect"},
		{"/slow", 504, "timeout"},
		{"/nothing", 404, "no route"},
	}
	for _, tc := range tests {
		resp, body := get(t, c, te.url+tc.path)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q", tc.path, resp.StatusCode, body)
		}
	}
}

func TestSmugglingRejected(t *testing.T) {
	b := startBackend(t, "a")
	te := startEdge(t, baseConfig(b))
	tests := []struct {
		name string
		req  string
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"differing CLs", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
		{"obfuscated TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", te.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
	if b.hits.Load() != 0 {
		t.Fatalf("backend saw %d smuggling attempts", b.hits.Load())
	}
	// The edge keeps serving.
	if resp, _ := get(t, newHTTPClient(), te.url+"/"); resp.StatusCode != 200 {
		t.Fatal("edge stopped serving after bad requests")
	}
}
