package static

import (
	"bytes"
	"path"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// attacks are raw paths as an engine might pass them (not normalised).
var attacks = []string{
	"/../outside/secret.txt",
	"/dir/../../outside/secret.txt",
	"/dir/..",
	"/..",
	"/.",
	"/./dir/page.txt",
	"/%2e%2e/outside/secret.txt",
	"/%2E%2e/outside/secret.txt",
	"/..%2foutside%2fsecret.txt",
	"/..%2Foutside/secret.txt",
	"/%252e%252e/outside/secret.txt",
	"/..\\outside\\secret.txt",
	"/\\..\\outside\\secret.txt",
	"/%5c..%5coutside%5csecret.txt",
	"/dir/page.txt%00.js",
	"/dir/page.txt\x00.js",
	"/dir/page\r\n.txt",
	"//outside/secret.txt",
	"/dir//page.txt",
	"outside/secret.txt",
	"../outside/secret.txt",
	"",
	"/link-out.txt",
	"/link-abs.txt",
	"/link-dir/secret.txt",
	"/.env",
	"/.git/config",
	"/...",
	"/.../outside/secret.txt",
	"/" + strings.Repeat("../", 20) + "etc/passwd",
}

func TestTraversalRefused(t *testing.T) {
	tr := newTree(t)
	for _, prefix := range []string{"", "/assets"} {
		h := newHandler(t, Config{Root: tr.root, StripPrefix: prefix})
		for _, a := range attacks {
			p := a
			if prefix != "" && strings.HasPrefix(a, "/") {
				p = prefix + a
			}
			status, body := serveRaw(h, []byte(p))
			if bytes.Contains(body, []byte(secret)) {
				t.Fatalf("%q: secret served", p)
			}
			if status != fasthttp.StatusBadRequest && status != fasthttp.StatusNotFound {
				t.Errorf("%q: status %d, want 400 or 404", p, status)
			}
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		want error
	}{
		{"/a/b.js", nil},
		{"/dir/", nil},
		{"/", nil},
		{"/a b/c%20d", nil},
		{"/100%25", ErrBadPath},
		{"/%41", nil},
		{"/.well-known/x", nil},
		{"/a/.well-known/", nil},
		{"/.hidden", ErrHidden},
		{"/a/.git/", ErrHidden},
		{"/..", ErrBadPath},
		{"/a/./b", ErrBadPath},
		{"//a", ErrBadPath},
		{"/a//", ErrBadPath},
		{"a", ErrBadPath},
		{"", ErrBadPath},
		{"/a\\b", ErrBadPath},
		{"/a\x7fb", ErrBadPath},
		{"/a%2fb", ErrBadPath},
		{"/a%5Cb", ErrBadPath},
		{"/a%00", ErrBadPath},
		{"/a%2", nil},
	}
	for _, tt := range tests {
		if got := checkPath([]byte(tt.path)); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.path, got, tt.want)
		}
	}
}

// serveRaw calls Serve with path as given and returns status and body.
func serveRaw(h *Handler, p []byte) (int, []byte) {
	var req fasthttp.Request
	req.SetRequestURI("http://x/")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nopLogger{})
	h.Serve(&ctx, p)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// FuzzServe feeds arbitrary paths to Serve over a root with a secret next
// to it, symbolic links pointing at the secret and dotfiles holding it:
// the secret is never served, nothing panics, and every accepted path is
// already clean.
func FuzzServe(f *testing.F) {
	for _, a := range attacks {
		f.Add([]byte(a))
	}
	for _, ok := range []string{"/", "/dir/", "/dir/page.txt", "/app.3f9a1c.js", "/a%20b.txt"} {
		f.Add([]byte(ok))
	}
	tr := newTree(f)
	h := newHandler(f, Config{Root: tr.root})
	f.Fuzz(func(t *testing.T, p []byte) {
		status, body := serveRaw(h, p)
		if bytes.Contains(body, []byte(secret)) {
			t.Fatalf("%q: secret served", p)
		}
		switch status {
		case 200, 301, 400, 404:
		default:
			t.Fatalf("%q: status %d", p, status)
		}
		if checkPath(p) == nil {
			clean := path.Clean(string(p))
			if strings.HasSuffix(string(p), "/") && clean != "/" {
				clean += "/"
			}
			if clean != string(p) {
				t.Fatalf("%q accepted but cleans to %q", p, clean)
			}
		}
	})
}
