package httpcache

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"
)

// fill stores a fresh response for each URL, tagged with the given
// Surrogate-Key value.
func fill(t *testing.T, c *Cache, clk *fakeClock, urls map[string]string) {
	t.Helper()
	for u, keys := range urls {
		hdr := []string{"Cache-Control: max-age=600"}
		if keys != "" {
			hdr = append(hdr, "Surrogate-Key: "+keys)
		}
		fetch(t, c, request(t, "GET", u), func(*fasthttp.Request) *fasthttp.Response {
			return response(t, clk.Now(), 200, u, hdr...)
		})
	}
}

func cached(t *testing.T, c *Cache, url string) bool {
	t.Helper()
	res := c.Lookup(request(t, "GET", url))
	defer res.Release()
	return res.Status == Hit
}

func TestPurge(t *testing.T) {
	urls := map[string]string{
		"http://example.com/a":           "page blog",
		"https://example.com/a":          "page",
		"http://example.com/a?x=1":       "blog",
		"http://example.com/static/1.js": "static",
		"http://example.com/static/2.js": "static js",
		"http://other.com/static/1.js":   "static",
	}
	tests := []struct {
		name  string
		purge func(c *Cache) int
		n     int
		gone  []string
	}{
		{"url one scheme", func(c *Cache) int { return c.PurgeURL("http://EXAMPLE.com/a") }, 1, []string{"http://example.com/a"}},
		{"url both schemes", func(c *Cache) int { return c.PurgeURL("example.com/a") }, 2, []string{"http://example.com/a", "https://example.com/a"}},
		{"url with query", func(c *Cache) int { return c.PurgeURL("example.com/a?x=1") }, 1, []string{"http://example.com/a?x=1"}},
		{"url not stored", func(c *Cache) int { return c.PurgeURL("example.com/none") }, 0, nil},
		{"prefix", func(c *Cache) int { return c.PurgePrefix("example.com/static/") }, 2, []string{"http://example.com/static/1.js", "http://example.com/static/2.js"}},
		{"prefix covers queries", func(c *Cache) int { return c.PurgePrefix("http://example.com/a") }, 2, []string{"http://example.com/a", "http://example.com/a?x=1"}},
		{"prefix https only", func(c *Cache) int { return c.PurgePrefix("https://example.com/") }, 1, []string{"https://example.com/a"}},
		{"surrogate key", func(c *Cache) int { return c.PurgeSurrogateKey("static") }, 3, []string{"http://example.com/static/1.js", "http://example.com/static/2.js", "http://other.com/static/1.js"}},
		{"surrogate key 2", func(c *Cache) int { return c.PurgeSurrogateKey("blog") }, 2, []string{"http://example.com/a", "http://example.com/a?x=1"}},
		{"surrogate key unknown", func(c *Cache) int { return c.PurgeSurrogateKey("nope") }, 0, nil},
		{"all", func(c *Cache) int { c.PurgeAll(); return 6 }, 6, []string{"http://example.com/a", "https://example.com/a", "http://example.com/a?x=1", "http://example.com/static/1.js", "http://example.com/static/2.js", "http://other.com/static/1.js"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, Config{})
			fill(t, c, clk, urls)
			if n := tt.purge(c); n != tt.n {
				t.Errorf("purged %d, want %d", n, tt.n)
			}
			gone := map[string]bool{}
			for _, u := range tt.gone {
				gone[u] = true
			}
			for u := range urls {
				if cached(t, c, u) == gone[u] {
					t.Errorf("%s: cached=%v, want %v", u, !gone[u], !gone[u])
				}
			}
		})
	}
}

// TestPurgeSurrogateKeyKeepsOtherVariants checks that a surrogate-key
// purge removes only the variants tagged with the key.
func TestPurgeSurrogateKeyKeepsOtherVariants(t *testing.T) {
	c, clk := newCache(t, Config{})
	for _, lang := range []string{"en", "fr"} {
		fetch(t, c, request(t, "GET", "http://example.com/v", "Accept-Language: "+lang), func(*fasthttp.Request) *fasthttp.Response {
			return response(t, clk.Now(), 200, lang, "Cache-Control: max-age=60", "Vary: Accept-Language", "Surrogate-Key: lang-"+lang)
		})
	}
	if n := c.PurgeSurrogateKey("lang-fr"); n != 1 {
		t.Fatalf("purged %d", n)
	}
	for lang, want := range map[string]Status{"en": Hit, "fr": Miss} {
		res := c.Lookup(request(t, "GET", "http://example.com/v", "Accept-Language: "+lang))
		res.Release()
		if res.Status != want {
			t.Errorf("%s: %v, want %v", lang, res.Status, want)
		}
	}
}

// TestPurgeDuringFetch checks that a response fetched before a purge ran
// is not stored after it (it may predate the change the purge announces).
func TestPurgeDuringFetch(t *testing.T) {
	c, clk := newCache(t, Config{})
	req := request(t, "GET", "http://example.com/race")
	res := c.Lookup(req)
	c.PurgeURL("example.com/race")
	if c.Store(&res, req, response(t, clk.Now(), 200, "old", "Cache-Control: max-age=60"), []byte("old")) != nil {
		t.Fatal("stored a response fetched before the purge")
	}
	// The next fetch stores normally.
	res = c.Lookup(req)
	if c.Store(&res, req, response(t, clk.Now(), 200, "new", "Cache-Control: max-age=60"), []byte("new")) == nil {
		t.Fatal("not stored after the purge")
	}
}

func TestPurgeCounters(t *testing.T) {
	c, clk := newCache(t, Config{})
	m := map[string]string{}
	for i := range 5 {
		m[fmt.Sprintf("http://example.com/%d", i)] = ""
	}
	fill(t, c, clk, m)
	c.PurgePrefix("example.com/")
	if s := c.Stats(); s.Purged != 5 || s.Stores != 5 {
		t.Fatalf("stats %+v", s)
	}
}
