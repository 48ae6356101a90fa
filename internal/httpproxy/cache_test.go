package httpproxy

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/httpcache"
	"github.com/tiergate/tiergate/internal/static"
	"github.com/tiergate/tiergate/router/httproute"
)

// cacheOrigin answers by path: /public (max-age), /vary (Vary: Accept-Language),
// /nostore, /private, /swr (stale-if-error), /etag (revalidation).
func cacheOrigin(t *testing.T) (*testBackend, *atomic.Int64) {
	b := startBackend(t, "origin")
	var upstream atomic.Int64
	b.set(func(w http.ResponseWriter, r *http.Request) {
		upstream.Add(1)
		switch r.URL.Path {
		case "/public":
			time.Sleep(20 * time.Millisecond) // a slow origin, so concurrent misses overlap
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("Surrogate-Key", "catalog")
			fmt.Fprint(w, "public body")
		case "/vary":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Vary", "Accept-Language")
			fmt.Fprint(w, "lang=", r.Header.Get("Accept-Language"))
		case "/nostore":
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprint(w, "x")
		case "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
			fmt.Fprint(w, "x")
		case "/sie":
			w.Header().Set("Cache-Control", "max-age=0, stale-if-error=2")
			fmt.Fprint(w, "survives")
		case "/etag":
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Cache-Control", "max-age=0")
			w.Header().Set("ETag", `"v1"`)
			fmt.Fprint(w, "etag body")
		default:
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprint(w, r.URL.Path)
		}
	})
	return b, &upstream
}

func cachedEdge(t *testing.T, origin *testBackend) *testEdge {
	cfg := baseConfig(origin)
	zero := 0
	cfg.Upstreams[0].Retry.Attempts = &zero
	cfg.Routes = []httproute.RouteConfig{{Upstream: "web", Cache: &httpcache.Config{Enabled: true}}}
	return startEdge(t, cfg)
}

func TestEdgeCache(t *testing.T) {
	origin, upstream := cacheOrigin(t)
	te := cachedEdge(t, origin)
	c := newHTTPClient()

	t.Run("fetched once for 1000 requests", func(t *testing.T) {
		upstream.Store(0)
		for i := range 1000 {
			resp, body := get(t, c, te.url+"/public")
			if resp.StatusCode != 200 || body != "public body" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
			if i > 0 && resp.Header.Get("X-Cache") != "HIT" {
				t.Fatalf("request %d: X-Cache %q", i, resp.Header.Get("X-Cache"))
			}
		}
		if n := upstream.Load(); n != 1 {
			t.Fatalf("origin saw %d requests", n)
		}
	})
	t.Run("vary keeps variants apart", func(t *testing.T) {
		for range 3 {
			for _, lang := range []string{"en", "fr"} {
				if _, body := get(t, c, te.url+"/vary", "Accept-Language", lang); body != "lang="+lang {
					t.Fatalf("%s got %q", lang, body)
				}
			}
		}
	})
	t.Run("never cached", func(t *testing.T) {
		for _, tc := range []struct{ path, hdr, val string }{{"/nostore", "", ""}, {"/private", "", ""}, {"/other-auth", "Authorization", "Bearer x"}} {
			upstream.Store(0)
			for range 3 {
				get(t, c, te.url+tc.path, tc.hdr, tc.val)
			}
			if n := upstream.Load(); n != 3 {
				t.Errorf("%s: origin saw %d of 3 requests", tc.path, n)
			}
		}
	})
	t.Run("revalidation", func(t *testing.T) {
		upstream.Store(0)
		_, b1 := get(t, c, te.url+"/etag")
		resp, b2 := get(t, c, te.url+"/etag")
		if b1 != "etag body" || b2 != "etag body" || resp.Header.Get("X-Cache") != "REVALIDATED" {
			t.Fatalf("bodies %q %q, X-Cache %q", b1, b2, resp.Header.Get("X-Cache"))
		}
		if upstream.Load() != 2 {
			t.Fatalf("origin saw %d requests", upstream.Load())
		}
	})
	t.Run("100 concurrent misses, one upstream request", func(t *testing.T) {
		upstream.Store(0)
		var wg sync.WaitGroup
		var bad atomic.Int64
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Get(te.url + "/public?coalesce")
				if err != nil {
					bad.Add(1)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "public body" {
					bad.Add(1)
				}
			}()
		}
		wg.Wait()
		if bad.Load() != 0 || upstream.Load() != 1 {
			t.Fatalf("%d bad answers, origin saw %d requests", bad.Load(), upstream.Load())
		}
	})
	t.Run("purge", func(t *testing.T) {
		srv := httptest.NewServer(te.eng.PurgeHandler())
		defer srv.Close()
		upstream.Store(0)
		get(t, c, te.url+"/public")
		resp, err := http.Post(srv.URL+"/cache/purge?key=catalog", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"purged":`) || strings.Contains(string(body), `"purged":0`) {
			t.Fatalf("purge answered %s", body)
		}
		get(t, c, te.url+"/public")
		if upstream.Load() != 1 {
			t.Fatalf("after purge the origin saw %d requests, want 1", upstream.Load())
		}
	})
}

// TestStaleIfError: with the origin dead, a stale entry keeps serving within
// its stale-if-error window, and errors follow after it.
func TestStaleIfError(t *testing.T) {
	origin, _ := cacheOrigin(t)
	te := cachedEdge(t, origin)
	c := newHTTPClient()
	if _, body := get(t, c, te.url+"/sie"); body != "survives" {
		t.Fatal(body)
	}
	origin.kill()
	resp, body := get(t, c, te.url+"/sie")
	if resp.StatusCode != 200 || body != "survives" {
		t.Fatalf("within the window: %d %q", resp.StatusCode, body)
	}
	pollUntil(t, 10*time.Second, "the stale-if-error window to close", func() bool {
		resp, _ := get(t, c, te.url+"/sie")
		return resp.StatusCode >= 500
	})
}

func TestStaticRoute(t *testing.T) {
	dir := t.TempDir()
	css := strings.Repeat("body { color: black; }\n", 200)
	if err := os.WriteFile(filepath.Join(dir, "app.3f9a1c.css"), []byte(css), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBackend(t, "a")
	cfg := baseConfig(b)
	cfg.Routes = []httproute.RouteConfig{
		{Name: "assets", Match: httproute.MatchConfig{PathPrefix: "/static/"}, Static: &static.Config{Root: dir, StripPrefix: "/static"}},
		{Name: "app", Upstream: "web"},
	}
	te := startEdge(t, cfg)
	c := newHTTPClient()
	resp, body := get(t, c, te.url+"/static/app.3f9a1c.css")
	if resp.StatusCode != 200 || body != css || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("%d %q %q", resp.StatusCode, resp.Header.Get("Cache-Control"), body[:20])
	}
	etag := resp.Header.Get("ETag")
	if r, _ := get(t, c, te.url+"/static/app.3f9a1c.css", "If-None-Match", etag); etag == "" || r.StatusCode != 304 {
		t.Fatalf("ETag %q revalidation: %d", etag, r.StatusCode)
	}
	if r, body := get(t, c, te.url+"/static/app.3f9a1c.css", "Range", "bytes=0-3"); r.StatusCode != 206 || body != "body" {
		t.Fatalf("range: %d %q", r.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", te.url+"/static/app.3f9a1c.css", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(zr)
		if string(got) != css {
			t.Fatal("gzip body differs")
		}
	}
	r.Body.Close()
	for _, p := range []string{"/static/../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%5c..%5cetc"} {
		if r, body := get(t, c, te.url+p); r.StatusCode == 200 {
			t.Fatalf("%s served: %q", p, body)
		}
	}
	if r, body := get(t, c, te.url+"/app"); r.StatusCode != 200 || body != "hello from a" {
		t.Fatalf("proxy route: %d %q", r.StatusCode, body)
	}
}
