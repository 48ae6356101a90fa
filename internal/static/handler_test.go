package static

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestServe(t *testing.T) {
	tr := newTree(t)
	h := newHandler(t, Config{Root: tr.root})
	tests := []struct {
		name     string
		method   string
		uri      string
		hdr      []string
		status   int
		body     string
		ctype    string
		encoding string
		cc       string
		location string
	}{
		{name: "file", uri: "/dir/page.txt", status: 200, body: "page", ctype: "text/plain; charset=utf-8", cc: "public, max-age=3600"},
		{name: "root index", uri: "/", status: 200, body: "<h1>home</h1>", ctype: "text/html; charset=utf-8", cc: "public, max-age=3600"},
		{name: "dir index", uri: "/dir/", status: 200, body: "<h1>dir</h1>", cc: "public, max-age=3600"},
		{name: "dir redirect", uri: "/dir", status: 301, location: "./dir/"},
		{name: "dir without index", uri: "/emptydir/", status: 404},
		{name: "dir without index, no slash", uri: "/emptydir", status: 301, location: "./emptydir/"},
		{name: "missing", uri: "/nope.txt", status: 404},
		{name: "head", method: "HEAD", uri: "/dir/page.txt", status: 200, body: "", cc: "public, max-age=3600"},
		{name: "post", method: "POST", uri: "/dir/page.txt", status: 405},
		{name: "fingerprinted", uri: "/app.3f9a1c.js", status: 200, body: "console.log('app');\n", ctype: "text/javascript; charset=utf-8", cc: immutableCacheControl},
		{name: "brotli sibling", uri: "/app.3f9a1c.js", hdr: []string{"Accept-Encoding: gzip, deflate, br"}, status: 200, body: "BROTLI-SIBLING", ctype: "text/javascript; charset=utf-8", encoding: "br", cc: immutableCacheControl},
		{name: "gzip sibling", uri: "/app.3f9a1c.js", hdr: []string{"Accept-Encoding: gzip"}, status: 200, body: string(tr.jsGz), encoding: "gzip", cc: immutableCacheControl},
		{name: "identity", uri: "/app.3f9a1c.js", hdr: []string{"Accept-Encoding: identity"}, status: 200, body: tr.js, cc: immutableCacheControl},
		{name: "well-known", uri: "/.well-known/security.txt", status: 200, body: "Contact: mailto:sec@example.com"},
		{name: "dotfile", uri: "/.env", status: 404},
		{name: "dot dir", uri: "/.git/config", status: 404},
		{name: "symlink inside", uri: "/link-in.txt", status: 200, body: "page"},
		{name: "symlink outside", uri: "/link-out.txt", status: 404},
		{name: "absolute symlink", uri: "/link-abs.txt", status: 404},
		{name: "symlinked dir outside", uri: "/link-dir/secret.txt", status: 404},
		{name: "encoded space", uri: "/a%20b.txt", status: 200, body: "space"},
		{name: "percent in name", uri: "/100%25.txt", status: 200, body: "percent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			resp := serve(t, h, method, "http://cdn.example"+tt.uri, tt.hdr...)
			if resp.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode(), tt.status, resp.Body())
			}
			if tt.body != "" || tt.status == 200 {
				if string(resp.Body()) != tt.body {
					t.Errorf("body %q, want %q", resp.Body(), tt.body)
				}
			}
			if bytes.Contains(resp.Body(), []byte(secret)) {
				t.Fatal("secret leaked")
			}
			if tt.ctype != "" && string(resp.Header.ContentType()) != tt.ctype {
				t.Errorf("Content-Type %q, want %q", resp.Header.ContentType(), tt.ctype)
			}
			if got := string(resp.Header.ContentEncoding()); got != tt.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.encoding)
			}
			if tt.cc != "" && string(resp.Header.Peek("Cache-Control")) != tt.cc {
				t.Errorf("Cache-Control %q, want %q", resp.Header.Peek("Cache-Control"), tt.cc)
			}
			if tt.status == 200 && string(resp.Header.Peek("Vary")) != "Accept-Encoding" {
				t.Errorf("Vary %q", resp.Header.Peek("Vary"))
			}
			if tt.status >= 400 && len(resp.Header.Peek("Cache-Control")) != 0 {
				t.Errorf("error with Cache-Control %q", resp.Header.Peek("Cache-Control"))
			}
			if got := string(resp.Header.Peek("Location")); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if tt.method == "POST" && string(resp.Header.Peek("Allow")) != "GET, HEAD" {
				t.Errorf("Allow %q", resp.Header.Peek("Allow"))
			}
		})
	}
}

func TestRanges(t *testing.T) {
	tr := newTree(t)
	h := newHandler(t, Config{Root: tr.root})
	n := len(tr.data)
	tests := []struct {
		rng    string
		status int
		from   int
		to     int // inclusive
	}{
		{"bytes=0-99", 206, 0, 99},
		{"bytes=100-", 206, 100, n - 1},
		{"bytes=-10", 206, n - 10, n - 1},
		{"bytes=9990-20000", 206, 9990, n - 1},
		{"bytes=20000-30000", 416, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			resp := serve(t, h, "GET", "http://x/data.bin", "Range: "+tt.rng, "Accept-Encoding: gzip, br")
			if resp.StatusCode() != tt.status {
				t.Fatalf("status %d", resp.StatusCode())
			}
			if tt.status == 416 {
				if got := string(resp.Header.Peek("Content-Range")); got != "bytes */"+strconv.Itoa(n) {
					t.Errorf("Content-Range %q", got)
				}
				return
			}
			if !bytes.Equal(resp.Body(), tr.data[tt.from:tt.to+1]) {
				t.Fatalf("got %d bytes, want [%d,%d]", len(resp.Body()), tt.from, tt.to)
			}
			want := "bytes " + strconv.Itoa(tt.from) + "-" + strconv.Itoa(tt.to) + "/" + strconv.Itoa(n)
			if got := string(resp.Header.Peek("Content-Range")); got != want {
				t.Errorf("Content-Range %q, want %q", got, want)
			}
			if len(resp.Header.ContentEncoding()) != 0 {
				t.Error("range answered compressed")
			}
			if string(resp.Header.Peek("Cache-Control")) == "" {
				t.Error("206 without Cache-Control")
			}
		})
	}
}

func TestETag304(t *testing.T) {
	tr := newTree(t)
	h := newHandler(t, Config{Root: tr.root})
	first := serve(t, h, "GET", "http://x/style.css")
	etag := string(first.Header.Peek("ETag"))
	lm := string(first.Header.Peek("Last-Modified"))
	if etag == "" || lm == "" {
		t.Fatalf("no validators: ETag %q Last-Modified %q", etag, lm)
	}
	tests := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"matching etag", []string{"If-None-Match: " + etag}, 304},
		{"etag in list", []string{`If-None-Match: "nope", ` + etag}, 304},
		{"other etag", []string{`If-None-Match: "nope"`}, 200},
		{"if-modified-since", []string{"If-Modified-Since: " + lm}, 304},
		{"older if-modified-since", []string{"If-Modified-Since: " + string(fasthttp.AppendHTTPDate(nil, time.Unix(0, 0)))}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := serve(t, h, "GET", "http://x/style.css", tt.hdr...)
			if resp.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.status)
			}
			if tt.status == 304 {
				if len(resp.Body()) != 0 {
					t.Error("304 with a body")
				}
				if string(resp.Header.Peek("Cache-Control")) != "public, max-age=3600" {
					t.Errorf("304 Cache-Control %q", resp.Header.Peek("Cache-Control"))
				}
			}
		})
	}
}

// TestCompressWithoutSibling checks that a compressible file without a
// precompressed sibling is compressed in memory, and that nothing is
// written into the root.
func TestCompressWithoutSibling(t *testing.T) {
	tr := newTree(t)
	h := newHandler(t, Config{Root: tr.root})
	resp := serve(t, h, "GET", "http://x/style.css", "Accept-Encoding: gzip")
	if string(resp.Header.ContentEncoding()) != "gzip" {
		t.Fatalf("Content-Encoding %q", resp.Header.ContentEncoding())
	}
	plain, err := fasthttp.AppendGunzipBytes(nil, resp.Body())
	if err != nil || string(plain) != tr.css {
		t.Fatalf("gunzip: %v, %d bytes", err, len(plain))
	}
	entries, err := osReadDirNames(tr.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e, "fasthttp") || e == "style.css.gz" {
			t.Fatalf("wrote %s into the root", e)
		}
	}
}

func TestCompressOff(t *testing.T) {
	tr := newTree(t)
	off := false
	h := newHandler(t, Config{Root: tr.root, Compress: &off})
	resp := serve(t, h, "GET", "http://x/app.3f9a1c.js", "Accept-Encoding: br, gzip")
	if len(resp.Header.ContentEncoding()) != 0 || string(resp.Body()) != tr.js {
		t.Fatalf("compressed with compress off: %q", resp.Header.ContentEncoding())
	}
	if len(resp.Header.Peek("Vary")) != 0 {
		t.Fatal("Vary with compress off")
	}
}

func TestCacheControl(t *testing.T) {
	tr := newTree(t)
	zero, ten := time.Duration(0), 10*time.Minute
	off := false
	tests := []struct {
		name string
		cfg  Config
		uri  string
		want string
	}{
		{"default", Config{}, "/style.css", "public, max-age=3600"},
		{"custom max_age", Config{MaxAge: &ten}, "/style.css", "public, max-age=600"},
		{"zero max_age", Config{MaxAge: &zero}, "/style.css", "no-cache"},
		{"fingerprint", Config{MaxAge: &zero}, "/app.3f9a1c.js", immutableCacheControl},
		{"fingerprints off", Config{ImmutableFingerprints: &off}, "/app.3f9a1c.js", "public, max-age=3600"},
		{"index never immutable", Config{}, "/", "public, max-age=3600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Root = tr.root
			h := newHandler(t, cfg)
			resp := serve(t, h, "GET", "http://x"+tt.uri)
			if got := string(resp.Header.Peek("Cache-Control")); got != tt.want {
				t.Fatalf("Cache-Control %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprinted(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/app.3f9a1c.js", true},
		{"/js/vendor.chunk.0a1b2c3d4e.css", true},
		{"/APP.3F9A1C.JS", true},
		{"/app.3f9a1.js", false},      // 5 chars
		{"/3f9a1c.js", false},         // the name itself, not a part
		{"/app.js.3f9a1c", false},     // the extension
		{"/report.202401.pdf", false}, // digits only: a date
		{"/site.facade.css", false},   // letters only: a word
		{"/app-3f9a1c.js", false},     // not dot-separated
		{"/app.3f9a1g.js", false},     // not hex
		{"/dir.3f9a1c/app.js", false}, // a directory part
		{"/", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := fingerprinted([]byte(tt.path)); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestStripPrefix(t *testing.T) {
	tr := newTree(t)
	for _, prefix := range []string{"/assets", "/assets/"} {
		t.Run(prefix, func(t *testing.T) {
			h := newHandler(t, Config{Root: tr.root, StripPrefix: prefix})
			tests := []struct {
				path     string
				status   int
				body     string
				location string
			}{
				{"/assets/dir/page.txt", 200, "page", ""},
				{"/assets/", 200, "<h1>home</h1>", ""},
				{"/assets", 301, "", "./assets/"},
				{"/assets/dir", 301, "", "./dir/"},
				{"/assetsdir/page.txt", 404, "", ""},
				{"/dir/page.txt", 404, "", ""},
				{"/assets/../outside/secret.txt", 400, "", ""},
			}
			for _, tt := range tests {
				// Pass the path as the engine would: raw, not normalised.
				var ctx fasthttp.RequestCtx
				var req fasthttp.Request
				req.SetRequestURI("http://x/")
				ctx.Init(&req, nil, nopLogger{})
				h.Serve(&ctx, []byte(tt.path))
				if ctx.Response.StatusCode() != tt.status {
					t.Errorf("%s: status %d, want %d", tt.path, ctx.Response.StatusCode(), tt.status)
					continue
				}
				if tt.body != "" && string(ctx.Response.Body()) != tt.body {
					t.Errorf("%s: body %q", tt.path, ctx.Response.Body())
				}
				if got := string(ctx.Response.Header.Peek("Location")); got != tt.location {
					t.Errorf("%s: Location %q, want %q", tt.path, got, tt.location)
				}
			}
		})
	}
}

func TestIndexDisabled(t *testing.T) {
	tr := newTree(t)
	none := ""
	h := newHandler(t, Config{Root: tr.root, Index: &none})
	for _, uri := range []string{"/", "/dir/", "/dir"} {
		if resp := serve(t, h, "GET", "http://x"+uri); resp.StatusCode() != 404 {
			t.Errorf("%s: status %d, want 404", uri, resp.StatusCode())
		}
	}
	if resp := serve(t, h, "GET", "http://x/dir/index.html"); resp.StatusCode() != 200 {
		t.Errorf("the file itself: %d", resp.StatusCode())
	}
}

func TestCustomIndex(t *testing.T) {
	tr := newTree(t)
	ix := "page.txt"
	h := newHandler(t, Config{Root: tr.root, Index: &ix})
	if resp := serve(t, h, "GET", "http://x/dir/"); string(resp.Body()) != "page" {
		t.Fatalf("index: %d %q", resp.StatusCode(), resp.Body())
	}
}
