package httpcache

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestAuthorization(t *testing.T) {
	tests := []struct {
		name       string
		cc         string
		storedAuth bool // the request that filled the cache carried Authorization
		stored     bool
		servesAuth bool // a later request with Authorization is served from it
		servesAnon bool
	}{
		{name: "max-age, anonymous fill", cc: "max-age=60", stored: true, servesAnon: true},
		{name: "max-age, authorized fill", cc: "max-age=60", storedAuth: true},
		{name: "public", cc: "public, max-age=60", storedAuth: true, stored: true, servesAuth: true, servesAnon: true},
		{name: "s-maxage", cc: "s-maxage=60", storedAuth: true, stored: true, servesAuth: true, servesAnon: true},
		{name: "must-revalidate", cc: "max-age=60, must-revalidate", storedAuth: true, stored: true, servesAuth: true, servesAnon: true},
		{name: "private", cc: "private, max-age=60", storedAuth: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, Config{})
			var hdr []string
			if tt.storedAuth {
				hdr = []string{"Authorization: Bearer one"}
			}
			req := request(t, "GET", "http://example.com/me", hdr...)
			res := c.Lookup(req)
			resp := response(t, clk.Now(), 200, "x", "Cache-Control: "+tt.cc)
			if got := c.Store(&res, req, resp, resp.Body()) != nil; got != tt.stored {
				t.Fatalf("stored = %v, want %v", got, tt.stored)
			}
			if !tt.stored && !tt.storedAuth {
				return
			}
			check := func(want bool, hdr ...string) {
				t.Helper()
				res := c.Lookup(request(t, "GET", "http://example.com/me", hdr...))
				defer res.Release()
				if got := res.Status == Hit; got != want {
					t.Errorf("%q: status %v, want hit=%v", hdr, res.Status, want)
				}
			}
			check(tt.servesAnon)
			check(tt.servesAuth, "Authorization: Bearer two")
		})
	}
}

// TestAuthorizationNeverLeads checks that a request with Authorization
// neither leads nor waits for a coalesced fetch: its response may be
// personal.
func TestAuthorizationNeverLeads(t *testing.T) {
	c, _ := newCache(t, Config{})
	res := c.Lookup(request(t, "GET", "http://example.com/me", "Authorization: Basic x"))
	defer res.Release()
	if res.Status != Miss || res.Leader() {
		t.Fatalf("status %v leader %v", res.Status, res.Leader())
	}
	// An anonymous request is not blocked by it.
	res2 := c.Lookup(request(t, "GET", "http://example.com/me"))
	defer res2.Release()
	if !res2.Leader() {
		t.Fatal("anonymous request does not lead")
	}
	_ = fasthttp.StatusOK
}
