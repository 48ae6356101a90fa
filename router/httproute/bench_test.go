package httproute

import (
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// benchCases are the BenchmarkMatch requests against the 20-route fixture.
var benchCases = []struct {
	name, want, method, host, target string
	headers                          []string
}{
	{"host+prefix", "api-v1", "GET", "api.example.com", "/v1/users/42", nil},
	{"regex", "users-regex", "GET", "api.example.com", "/users/42/profile", nil},
	{"expr", "beta", "GET", "www.example.com", "/app/home", []string{"Cookie: session=abc; beta=1"}},
	{"miss", "", "GET", "nosuch.example.net", "/nothing/here", nil},
}

func BenchmarkMatch(b *testing.B) {
	tbl := compileYAML(b, fixture20)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			r := newReq(bc.method, bc.host, bc.target, bc.headers...)
			if got := routeName(tbl, r); got != bc.want {
				b.Fatalf("matched %q, want %q", got, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				tbl.Match(r)
			}
		})
	}
}

// BenchmarkMatchParallel shares the table between goroutines, as the
// engine does (run with -cpu=1,2,4).
func BenchmarkMatchParallel(b *testing.B) {
	tbl := compileYAML(b, fixture20)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := newReq(bc.method, bc.host, bc.target, bc.headers...)
				for pb.Next() {
					tbl.Match(r)
				}
			})
		})
	}
}

// BenchmarkMatchFastHTTP measures Reset plus Match on a parsed fasthttp
// request, the engine's per-request cost.
func BenchmarkMatchFastHTTP(b *testing.B) {
	tbl := compileYAML(b, fixture20)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			raw := bc.method + " " + bc.target + " HTTP/1.1\r\nHost: " + bc.host + "\r\n"
			for _, h := range bc.headers {
				raw += h + "\r\n"
			}
			req := readRequest(b, raw+"\r\n")
			ip := netip.MustParseAddr("192.0.2.1")
			var a FastHTTPRequest
			b.ReportAllocs()
			for b.Loop() {
				a.Reset(req, ip)
				tbl.Match(&a)
			}
		})
	}
}

func BenchmarkActions(b *testing.B) {
	tbl := compileYAML(b, fixture20)
	r := newReq("GET", "old.example.com", "/a/b?c=1")
	redirect, _ := tbl.Match(r)
	proxy, _ := tbl.Match(newReq("GET", "api.example.com", "/v1/users/42"))
	canary, _ := tbl.Match(newReq("GET", "api.example.com", "/v1/users/42", "X-Canary: 1"))
	buf := make([]byte, 0, 256)
	b.Run("redirect-location", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = redirect.Action.Redirect.AppendLocation(buf[:0], r)
		}
	})
	b.Run("strip-prefix", func(b *testing.B) {
		p := []byte("/v1/users/42")
		b.ReportAllocs()
		for b.Loop() {
			buf = proxy.Action.Rewrite.Append(buf[:0], p)
		}
	})
	b.Run("split-pick", func(b *testing.B) {
		b.ReportAllocs()
		var x uint64
		for b.Loop() {
			x += 0x9e3779b97f4a7c15
			_ = canary.Action.Split.Pick(x)
		}
	})
	b.Run("request-headers", func(b *testing.B) {
		var req fasthttp.Request
		admin, _ := tbl.Match(newReq("GET", "admin.example.com", "/", "Authorization: x"))
		b.ReportAllocs()
		for b.Loop() {
			admin.Action.RequestHeaders.Apply(&req.Header)
		}
	})
}

func BenchmarkHeaderHelpers(b *testing.B) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		b.Fatal(err)
	}
	xff := lines("203.0.113.7, 198.51.100.4", "10.9.9.9")
	peer := netip.MustParseAddr("10.0.0.2")
	buf := make([]byte, 0, 128)
	names := make([]string, 0, 16)
	b.Run("xff-append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = tp.AppendXFF(buf[:0], peer, xff)
		}
	})
	b.Run("xff-client-ip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = tp.ClientIP(peer, xff)
		}
	})
	b.Run("strip-list", func(b *testing.B) {
		conn := []byte("keep-alive, Upgrade")
		b.ReportAllocs()
		for b.Loop() {
			names = AppendHeadersToStrip(names[:0], conn)
		}
	})
	b.Run("framing", func(b *testing.B) {
		te := lines("gzip, chunked")
		b.ReportAllocs()
		for b.Loop() {
			_, _ = CheckFraming(nil, te)
		}
	})
}
