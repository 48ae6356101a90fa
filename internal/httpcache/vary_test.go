package httpcache

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestVaryVariants(t *testing.T) {
	c, clk := newCache(t, Config{})
	origin := func(up *fasthttp.Request) *fasthttp.Response {
		enc := string(up.Header.Peek("Accept-Encoding"))
		return response(t, clk.Now(), 200, "body for "+enc, "Cache-Control: max-age=60", "Vary: Accept-Encoding", `ETag: "`+enc+`"`)
	}
	// Two variants stored apart.
	gz := fetch(t, c, request(t, "GET", "http://example.com/v", "Accept-Encoding: gzip"), origin)
	br := fetch(t, c, request(t, "GET", "http://example.com/v", "Accept-Encoding: br"), origin)
	if string(gz.Body()) == string(br.Body()) {
		t.Fatalf("variants share a body: %q", gz.Body())
	}
	tests := []struct {
		name   string
		hdr    []string
		status Status
		body   string
	}{
		{"gzip hit", []string{"Accept-Encoding: gzip"}, Hit, "body for gzip"},
		{"br hit", []string{"Accept-Encoding: br"}, Hit, "body for br"},
		{"case and spaces normalised", []string{"Accept-Encoding:  GZIP "}, Hit, "body for gzip"},
		{"other value misses", []string{"Accept-Encoding: gzip, br"}, Miss, ""},
		{"absent header misses", nil, Miss, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, "GET", "http://example.com/v", tt.hdr...)
			res := c.Lookup(req)
			defer res.Release()
			if res.Status != tt.status {
				t.Fatalf("status %v, want %v", res.Status, tt.status)
			}
			if tt.status == Hit && string(res.Entry.Body()) != tt.body {
				t.Fatalf("body %q, want %q", res.Entry.Body(), tt.body)
			}
		})
	}
	// Both variants and the absent-header one live under one key.
	fetch(t, c, request(t, "GET", "http://example.com/v"), origin)
	o, _ := c.store.GetIfPresent("hexample.com/v")
	if len(o.variants) != 3 {
		t.Fatalf("%d variants, want 3", len(o.variants))
	}
	// A refetch of one variant replaces it rather than adding one (the
	// ETags keep the stale variants around for revalidation).
	clk.Advance(61e9)
	fetch(t, c, request(t, "GET", "http://example.com/v", "Accept-Encoding: gzip"), origin)
	o, _ = c.store.GetIfPresent("hexample.com/v")
	if len(o.variants) != 3 {
		t.Fatalf("%d variants after refresh, want 3", len(o.variants))
	}
}

func TestVaryMultipleHeadersAndLines(t *testing.T) {
	c, clk := newCache(t, Config{})
	origin := func(up *fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "x", "Cache-Control: max-age=60", "Vary: accept-language", "Vary: X-Device, Accept-Language")
	}
	fetch(t, c, request(t, "GET", "http://example.com/m", "Accept-Language: en", "X-Device: a, b"), origin)
	tests := []struct {
		hdr  []string
		want Status
	}{
		{[]string{"Accept-Language: en", "X-Device: a,b"}, Hit},
		{[]string{"Accept-Language: en", "X-Device: a", "X-Device: b"}, Hit},
		{[]string{"Accept-Language: EN", "X-Device: a, b"}, Hit},
		{[]string{"Accept-Language: en", "X-Device: A, b"}, Miss}, // X-Device is case-sensitive
		{[]string{"Accept-Language: en"}, Miss},
	}
	for i, tt := range tests {
		res := c.Lookup(request(t, "GET", "http://example.com/m", tt.hdr...))
		res.Release()
		if res.Status != tt.want {
			t.Errorf("%d %q: status %v, want %v", i, tt.hdr, res.Status, tt.want)
		}
	}
}

func TestVaryVariantLimit(t *testing.T) {
	c, clk := newCache(t, Config{})
	origin := func(up *fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "x", "Cache-Control: max-age=60", "Vary: X-Id")
	}
	for i := range maxVariants + 5 {
		fetch(t, c, request(t, "GET", "http://example.com/many", fmt.Sprintf("X-Id: %d", i)), origin)
	}
	o, _ := c.store.GetIfPresent("hexample.com/many")
	if len(o.variants) != maxVariants {
		t.Fatalf("%d variants, want %d", len(o.variants), maxVariants)
	}
	// The newest survive.
	res := c.Lookup(request(t, "GET", "http://example.com/many", fmt.Sprintf("X-Id: %d", maxVariants+4)))
	res.Release()
	if res.Status != Hit {
		t.Fatalf("newest variant: %v", res.Status)
	}
	res = c.Lookup(request(t, "GET", "http://example.com/many", "X-Id: 0"))
	res.Release()
	if res.Status != Miss {
		t.Fatalf("oldest variant: %v", res.Status)
	}
}

func TestKeys(t *testing.T) {
	c, clk := newCache(t, Config{})
	fetch(t, c, request(t, "GET", "http://Example.COM:8080/a/b?q=1&r=2"), func(*fasthttp.Request) *fasthttp.Response {
		return response(t, clk.Now(), 200, "x", "Cache-Control: max-age=60")
	})
	tests := []struct {
		method, url string
		want        Status
	}{
		{"GET", "http://example.com:8080/a/b?q=1&r=2", Hit},
		{"HEAD", "http://EXAMPLE.com:8080/a/b?q=1&r=2", Hit},
		{"GET", "http://example.com/a/b?q=1&r=2", Miss},       // port kept
		{"GET", "http://example.com:8080/a/b?r=2&q=1", Miss},  // raw query
		{"GET", "http://example.com:8080/a/B?q=1&r=2", Miss},  // path is case-sensitive
		{"GET", "http://example.com:8080/a/b", Miss},          // query matters
		{"GET", "https://example.com:8080/a/b?q=1&r=2", Miss}, // scheme matters
		{"POST", "http://example.com:8080/a/b?q=1&r=2", Bypass},
	}
	for _, tt := range tests {
		res := c.Lookup(request(t, tt.method, tt.url))
		res.Release()
		if res.Status != tt.want {
			t.Errorf("%s %s: %v, want %v", tt.method, tt.url, res.Status, tt.want)
		}
	}
}
