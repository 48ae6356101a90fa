package static

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkStatic serves a small file (held in memory by fasthttp.FS)
// through Serve: path checks, FS lookup, headers.
func BenchmarkStatic(b *testing.B) {
	tr := newTree(b)
	h := newHandler(b, Config{Root: tr.root, StripPrefix: "/assets"})
	for _, bc := range []struct{ name, path, ae string }{
		{"identity", "/assets/dir/page.txt", ""},
		{"fingerprinted-br", "/assets/app.3f9a1c.js", "gzip, br"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var req fasthttp.Request
			req.SetRequestURI("http://x" + bc.path)
			if bc.ae != "" {
				req.Header.Set("Accept-Encoding", bc.ae)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, nil, nopLogger{})
			path := []byte(bc.path)
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				h.Serve(&ctx, path)
				if ctx.Response.StatusCode() != 200 {
					b.Fatal(ctx.Response.StatusCode())
				}
			}
		})
	}
}
