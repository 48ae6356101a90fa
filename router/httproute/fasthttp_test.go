package httproute

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func readRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("read %q: %v", raw, err)
	}
	return &req
}

func TestFastHTTPRequest(t *testing.T) {
	tests := []struct {
		name, raw             string
		method, host, path, q string
		hasQuery              bool
	}{
		{"origin form", "GET /a/b?x=1&y HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n", "GET", "Example.COM:8080", "/a/b", "x=1&y", true},
		{"raw path kept", "GET /a/../b//c%2Fd HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "h", "/a/../b//c%2Fd", "", false},
		{"empty query", "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "h", "/a", "", true},
		{"absolute form wins over Host", "GET http://real.example:81/p?q=1 HTTP/1.1\r\nHost: spoof.example\r\n\r\n", "GET", "real.example:81", "/p", "q=1", true},
		{"absolute form without path", "GET https://user@real.example HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "real.example", "/", "", false},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "OPTIONS", "h", "*", "", false},
		{"custom method", "PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n", "PURGE", "h", "/x", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := readRequest(t, tc.raw)
			var a FastHTTPRequest
			a.Reset(req, netip.MustParseAddr("192.0.2.1"))
			if string(a.Method()) != tc.method || string(a.Host()) != tc.host || string(a.Path()) != tc.path || string(a.Query()) != tc.q || (a.Query() != nil) != tc.hasQuery {
				t.Errorf("got method %q host %q path %q query %q (nil %v)", a.Method(), a.Host(), a.Path(), a.Query(), a.Query() == nil)
			}
			if a.ClientIP() != netip.MustParseAddr("192.0.2.1") {
				t.Errorf("ClientIP %v", a.ClientIP())
			}
		})
	}
}

func TestFastHTTPRequestHeaders(t *testing.T) {
	req := readRequest(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nx-canary: 1\r\nX-Multi: a\r\nX-Multi: b\r\nUser-Agent: ua\r\nCookie: a=1; beta=on\r\n\r\n")
	var a FastHTTPRequest
	a.Reset(req, netip.Addr{})
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"X-Canary", "1", true},
		{"x-canary", "1", true},
		{"X-Empty", "", true},
		{"X-Multi", "a", true},
		{"User-Agent", "ua", true},
		{"Host", "h", true},
		{"X-None", "", false},
	}
	for _, tc := range tests {
		v, ok := a.Header(tc.name)
		if string(v) != tc.want || ok != tc.ok {
			t.Errorf("Header(%s) = %q, %v; want %q, %v", tc.name, v, ok, tc.want, tc.ok)
		}
	}
	if string(a.Cookie("beta")) != "on" || a.Cookie("none") != nil {
		t.Errorf("cookies %q %q", a.Cookie("beta"), a.Cookie("none"))
	}
}

// TestFastHTTPMatch routes real parsed requests through the fixture table.
func TestFastHTTPMatch(t *testing.T) {
	tbl := compileYAML(t, fixture20)
	tests := []struct{ raw, want string }{
		{"GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\nX-Canary: 1\r\n\r\n", "api-canary"},
		{"GET /v1/x HTTP/1.1\r\nHost: API.example.com:443\r\n\r\n", "api-v1"},
		{"GET /app/home HTTP/1.1\r\nHost: www.example.com\r\nCookie: beta=1\r\n\r\n", "beta"},
		{"POST http://anything.net/graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "graphql"},
		{"GET /v3/a?version=3 HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "api-v3"},
		{"GET /nothing HTTP/1.1\r\nHost: nosuch.example.net\r\n\r\n", ""},
	}
	var a FastHTTPRequest
	for _, tc := range tests {
		a.Reset(readRequest(t, tc.raw), netip.MustParseAddr("192.0.2.1"))
		if got := routeName(tbl, &a); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.raw, got, tc.want)
		}
	}
	req := readRequest(t, "GET /users/42/profile HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() {
		a.Reset(req, netip.Addr{})
		tbl.Match(&a)
	}); n != 0 {
		t.Errorf("fasthttp Reset+Match: %v allocs", n)
	}
}
