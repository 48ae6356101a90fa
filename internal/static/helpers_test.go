package static

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

const secret = "TOP SECRET outside the root"

// tree is the served directory: name -> content ("" entries are dirs).
type tree struct {
	root, outside string
	data          []byte // /data.bin
	js            string // /app.3f9a1c.js
	jsBr, jsGz    []byte // its precompressed siblings (distinct markers)
	css           string // compressible, no siblings
}

func newTree(t testing.TB) *tree {
	t.Helper()
	base := t.TempDir()
	tr := &tree{root: filepath.Join(base, "www"), outside: filepath.Join(base, "outside")}
	rng := rand.New(rand.NewPCG(1, 2))
	tr.data = make([]byte, 10000)
	for i := range tr.data {
		tr.data[i] = byte(rng.UintN(256))
	}
	tr.js = "console.log('app');\n"
	tr.jsBr = []byte("BROTLI-SIBLING")
	tr.jsGz = gz(t, "GZIP SIBLING")
	tr.css = strings.Repeat("body { color: red; }\n", 200)
	files := map[string][]byte{
		"index.html":               []byte("<h1>home</h1>"),
		"app.3f9a1c.js":            []byte(tr.js),
		"app.3f9a1c.js.br":         tr.jsBr,
		"app.3f9a1c.js.gz":         tr.jsGz,
		"style.css":                []byte(tr.css),
		"data.bin":                 tr.data,
		"dir/index.html":           []byte("<h1>dir</h1>"),
		"dir/page.txt":             []byte("page"),
		"emptydir/.keep":           nil,
		".env":                     []byte(secret),
		".git/config":              []byte(secret),
		".well-known/security.txt": []byte("Contact: mailto:sec@example.com"),
		"100%.txt":                 []byte("percent"),
		"a b.txt":                  []byte("space"),
	}
	for name, content := range files {
		p := filepath.Join(tr.root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(tr.outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.outside, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"link-out.txt": "../outside/secret.txt",
		"link-abs.txt": filepath.Join(tr.outside, "secret.txt"),
		"link-dir":     "../outside",
		"link-in.txt":  "dir/page.txt",
	} {
		if err := os.Symlink(target, filepath.Join(tr.root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// serve runs one request through h.Serve(ctx, ctx.Path()) and returns the
// response with its body read.
func serve(t testing.TB, h *Handler, method, uri string, headers ...string) *fasthttp.Response {
	t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	for _, hd := range headers {
		k, v, _ := strings.Cut(hd, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nopLogger{})
	h.Serve(&ctx, ctx.Path())
	body := append([]byte(nil), ctx.Response.Body()...) // drains and closes a stream
	resp := new(fasthttp.Response)
	ctx.Response.CopyTo(resp)
	resp.SetBody(body)
	return resp
}

func osReadDirNames(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, filepath.Base(p))
		return nil
	})
	return names, err
}
