package httpproxy

import (
	"fmt"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

func TestStickyCookie(t *testing.T) {
	bs := []*testBackend{startBackend(t, "0"), startBackend(t, "1"), startBackend(t, "2")}
	cfg := baseConfig(bs...)
	cfg.Upstreams[0].Balancer.Policy = "sticky_cookie"
	cfg.Upstreams[0].Balancer.HashKey = "cookie:srv"
	te := startEdge(t, cfg)
	jar, _ := cookiejar.New(nil)
	c := newHTTPClient()
	c.Jar = jar
	resp, _ := get(t, c, te.url+"/")
	first := resp.Header.Get("X-Backend")
	cookie := resp.Header.Get("Set-Cookie")
	if cookie == "" {
		t.Fatal("no sticky cookie issued")
	}
	for _, b := range bs {
		if strings.Contains(cookie, b.addr) {
			t.Fatalf("cookie reveals the backend address: %s", cookie)
		}
	}
	for i := range 1000 {
		resp, _ := get(t, c, te.url+"/")
		if got := resp.Header.Get("X-Backend"); got != first {
			t.Fatalf("request %d went to %s, pinned to %s", i, got, first)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("cookie re-issued while the backend is healthy")
		}
	}
	// Kill the pinned backend: requests succeed elsewhere and the cookie changes.
	var idx int
	fmt.Sscan(first, &idx)
	bs[idx].kill()
	resp, _ = get(t, c, te.url+"/")
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend") == first {
		t.Fatalf("after kill: %d from %s", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
	second := resp.Header.Get("X-Backend")
	if newCookie := resp.Header.Get("Set-Cookie"); newCookie == "" || newCookie == cookie {
		t.Fatalf("cookie not re-issued: %q", newCookie)
	}
	pollUntil(t, 5*time.Second, "pin to the new backend", func() bool {
		r, _ := get(t, c, te.url+"/")
		return r.Header.Get("X-Backend") == second
	})
	for range 100 {
		if r, _ := get(t, c, te.url+"/"); r.Header.Get("X-Backend") != second {
			t.Fatal("not pinned to the new backend")
		}
	}
}
