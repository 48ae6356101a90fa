package httproute

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// routeName returns the matched route's name, or "" for no match.
func routeName(tbl *Table, r Request) string {
	rt, ok := tbl.Match(r)
	if !ok {
		return ""
	}
	return rt.Name
}

func TestMatchHost(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "EXAMPLE.com", true},
		{"example.com", "example.com:8443", true},
		{"example.com", "example.com.", true},
		{"example.com", "example.com.:80", true},
		{"example.com", "www.example.com", false},
		{"example.com", "example.co", false},
		{"example.com", "", false},
		{"Example.COM", "example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "A.B.Example.Com:1", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "aexample.com", false},
		{"*.example.com", "a.example.com.evil.net", false},
		{"*", "anything.net", true},
		{"*", "", true},
		{"10.0.0.1", "10.0.0.1:8080", true},
		{"[::1]", "[::1]:8080", true},
		{"[::1]", "[::1]", true},
		{"[::1]", "::1", false},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"/"+tc.host, func(t *testing.T) {
			tbl := compileYAML(t, fmt.Sprintf("upstreams: [u]\nroutes:\n  - {name: r, match: {hosts: [%q]}, upstream: u}\n", tc.pattern))
			got := routeName(tbl, newReq("GET", tc.host, "/")) == "r"
			if got != tc.want {
				t.Errorf("host %q against %q: got %v, want %v", tc.host, tc.pattern, got, tc.want)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		name, match, target string
		want                bool
	}{
		{"exact", "path: /a/b", "/a/b", true},
		{"exact ignores query", "path: /a/b", "/a/b?x=1", true},
		{"exact trailing slash differs", "path: /a/b", "/a/b/", false},
		{"exact case-sensitive", "path: /a/b", "/A/b", false},
		{"exact raw no decoding", "path: /a/b", "/a%2Fb", false},
		{"exact raw encoded", "path: /a%2Fb", "/a%2Fb", true},
		{"exact asterisk", "path: '*'", "*", true},
		{"prefix", "path_prefix: /api/", "/api/x", true},
		{"prefix equal", "path_prefix: /api/", "/api/", true},
		{"prefix shorter path", "path_prefix: /api/", "/api", false},
		{"prefix is plain bytes", "path_prefix: /api", "/apiary", true},
		{"prefix no dot-segment removal", "path_prefix: /admin/", "/public/../admin/x", false},
		{"prefix no slash merging", "path_prefix: /admin/", "//admin/x", false},
		{"regex", `path_regex: '^/u/[0-9]+$'`, "/u/42", true},
		{"regex no match", `path_regex: '^/u/[0-9]+$'`, "/u/42/x", false},
		{"regex unanchored", `path_regex: '\.png'`, "/img/a.png?v=1", true},
		{"regex sees raw", `path_regex: '%20'`, "/a%20b", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := compileYAML(t, "upstreams: [u]\nroutes:\n  - name: r\n    match: {"+tc.match+"}\n    upstream: u\n")
			if got := routeName(tbl, newReq("GET", "h", tc.target)) == "r"; got != tc.want {
				t.Errorf("%s against %q: got %v, want %v", tc.match, tc.target, got, tc.want)
			}
		})
	}
}

func TestMatchMethodHeaderQuery(t *testing.T) {
	tests := []struct {
		name, match string
		req         *testReq
		want        bool
	}{
		{"method in list", "methods: [GET, HEAD]", newReq("HEAD", "h", "/"), true},
		{"method not in list", "methods: [GET, HEAD]", newReq("POST", "h", "/"), false},
		{"method case-sensitive", "methods: [GET]", newReq("get", "h", "/"), false},
		{"header present", "headers: [{name: X-A}]", newReq("GET", "h", "/", "X-A: "), true},
		{"header present any case", "headers: [{name: x-a}]", newReq("GET", "h", "/", "X-A: 1"), true},
		{"header missing", "headers: [{name: X-A}]", newReq("GET", "h", "/"), false},
		{"header absent", "headers: [{name: X-A, absent: true}]", newReq("GET", "h", "/"), true},
		{"header absent but present", "headers: [{name: X-A, absent: true}]", newReq("GET", "h", "/", "X-A: 1"), false},
		{"header exact", `headers: [{name: X-A, value: "1"}]`, newReq("GET", "h", "/", "X-A: 1"), true},
		{"header exact differs", `headers: [{name: X-A, value: "1"}]`, newReq("GET", "h", "/", "X-A: 10"), false},
		{"header exact case-sensitive value", `headers: [{name: X-A, value: "on"}]`, newReq("GET", "h", "/", "X-A: ON"), false},
		{"header exact empty", `headers: [{name: X-A, value: ""}]`, newReq("GET", "h", "/", "X-A:"), true},
		{"header exact empty missing", `headers: [{name: X-A, value: ""}]`, newReq("GET", "h", "/"), false},
		{"header first line counts", `headers: [{name: X-A, value: "2"}]`, newReq("GET", "h", "/", "X-A: 1", "X-A: 2"), false},
		{"header regex", `headers: [{name: User-Agent, regex: "(?i)bot"}]`, newReq("GET", "h", "/", "User-Agent: GoogleBot/2"), true},
		{"header regex missing", `headers: [{name: User-Agent, regex: ".*"}]`, newReq("GET", "h", "/"), false},
		{"headers all must hold", `headers: [{name: A}, {name: B}]`, newReq("GET", "h", "/", "A: 1"), false},
		{"query present", "query: [{name: debug}]", newReq("GET", "h", "/?debug"), true},
		{"query present with value", "query: [{name: debug}]", newReq("GET", "h", "/?x=1&debug=0"), true},
		{"query key is exact", "query: [{name: debug}]", newReq("GET", "h", "/?debugx=1&Debug=1"), false},
		{"query exact", `query: [{name: v, value: "2"}]`, newReq("GET", "h", "/?a=1&v=2"), true},
		{"query first occurrence", `query: [{name: v, value: "2"}]`, newReq("GET", "h", "/?v=1&v=2"), false},
		{"query raw not decoded", `query: [{name: q, value: "a b"}]`, newReq("GET", "h", "/?q=a%20b"), false},
		{"query raw encoded", `query: [{name: q, value: "a%20b"}]`, newReq("GET", "h", "/?q=a%20b"), true},
		{"query regex", `query: [{name: id, regex: "^[0-9]+$"}]`, newReq("GET", "h", "/?id=42"), true},
		{"query absent", "query: [{name: x, absent: true}]", newReq("GET", "h", "/?y=1"), true},
		{"query empty segments", `query: [{name: v, value: "1"}]`, newReq("GET", "h", "/?&&v=1&"), true},
		{"query no query", "query: [{name: v}]", newReq("GET", "h", "/"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := compileYAML(t, "upstreams: [u]\nroutes:\n  - name: r\n    match: {"+tc.match+"}\n    upstream: u\n")
			if got := routeName(tbl, tc.req) == "r"; got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name   string
		routes string // route entries, each "{name: ..., match: {...}}"; upstream u is added
		req    *testReq
		want   string
	}{
		{"file order breaks ties", `
  - {name: first, match: {path_prefix: /a}}
  - {name: second, match: {path_prefix: /a}}`, newReq("GET", "h", "/a"), "first"},
		{"priority beats everything", `
  - {name: specific, match: {hosts: [h.com], path: /a}}
  - {name: urgent, priority: 1, match: {}}`, newReq("GET", "h.com", "/a"), "urgent"},
		{"negative priority sorts last", `
  - {name: low, priority: -1, match: {hosts: [h.com], path: /a}}
  - {name: any, match: {}}`, newReq("GET", "h.com", "/a"), "any"},
		{"exact host beats wildcard", `
  - {name: wild, match: {hosts: ["*.h.com"], path: /a}}
  - {name: exact, match: {hosts: [a.h.com]}}`, newReq("GET", "a.h.com", "/a"), "exact"},
		{"longer wildcard beats shorter", `
  - {name: short, match: {hosts: ["*.h.com"]}}
  - {name: long, match: {hosts: ["*.a.h.com"]}}`, newReq("GET", "x.a.h.com", "/"), "long"},
		{"wildcard beats any host", `
  - {name: any, match: {path: /a}}
  - {name: wild, match: {hosts: ["*.h.com"]}}`, newReq("GET", "x.h.com", "/a"), "wild"},
		{"host falls back to any", `
  - {name: other, match: {hosts: [o.com]}}
  - {name: any, match: {}}`, newReq("GET", "h.com", "/a"), "any"},
		{"exact path beats prefix", `
  - {name: prefix, match: {path_prefix: /a}}
  - {name: exact, match: {path: /a/b}}`, newReq("GET", "h", "/a/b"), "exact"},
		{"longer prefix beats shorter", `
  - {name: short, match: {path_prefix: /a/}}
  - {name: long, match: {path_prefix: /a/b/}}`, newReq("GET", "h", "/a/b/c"), "long"},
		{"prefix beats regex", `
  - {name: regex, match: {path_regex: '^/a/b'}}
  - {name: prefix, match: {path_prefix: /a}}`, newReq("GET", "h", "/a/b"), "prefix"},
		{"regex beats no path", `
  - {name: none, match: {}}
  - {name: regex, match: {path_regex: 'b$'}}`, newReq("GET", "h", "/a/b"), "regex"},
		{"more conditions first", `
  - {name: plain, match: {path_prefix: /a}}
  - {name: header, match: {path_prefix: /a, headers: [{name: X}]}}`, newReq("GET", "h", "/a", "X: 1"), "header"},
		{"more conditions fall through", `
  - {name: plain, match: {path_prefix: /a}}
  - {name: header, match: {path_prefix: /a, headers: [{name: X}]}}`, newReq("GET", "h", "/a"), "plain"},
		{"method list counts as a condition", `
  - {name: any, match: {path: /a}}
  - {name: post, match: {path: /a, methods: [POST]}}`, newReq("POST", "h", "/a"), "post"},
		{"expression counts as a condition", `
  - {name: any, match: {path: /a}}
  - {name: expr, match: {path: /a, expr: 'Method == "PUT"'}}`, newReq("PUT", "h", "/a"), "expr"},
		{"host before path", `
  - {name: anyhost-exactpath, match: {path: /a/b}}
  - {name: host-prefix, match: {hosts: [h.com], path_prefix: /}}`, newReq("GET", "h.com", "/a/b"), "host-prefix"},
		{"multi-host route ranked per host", `
  - {name: wild, match: {hosts: ["*.h.com"], path: /x}}
  - {name: both, match: {hosts: [a.h.com, "*.h.com"]}}`, newReq("GET", "b.h.com", "/x"), "wild"},
		{"multi-host route exact side", `
  - {name: wild, match: {hosts: ["*.h.com"], path: /x}}
  - {name: both, match: {hosts: [a.h.com, "*.h.com"]}}`, newReq("GET", "a.h.com", "/x"), "both"},
		{"exact host list merges with fallback by rank", `
  - {name: exact-low, priority: -5, match: {hosts: [h.com]}}
  - {name: any-mid, match: {path_prefix: /z}}
  - {name: exact-high, priority: 5, match: {hosts: [h.com], path: /q}}`, newReq("GET", "h.com", "/z"), "any-mid"},
		{"no match", `
  - {name: a, match: {hosts: [a.com]}}`, newReq("GET", "b.com", "/"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "upstreams: [u]\nroutes:" + strings.ReplaceAll(tc.routes, "}}", "}, upstream: u}")
			src = strings.ReplaceAll(src, "match: {}, upstream: u}", "match: {}, upstream: u}")
			src = strings.ReplaceAll(src, "match: {}}", "match: {}, upstream: u}")
			tbl := compileYAML(t, src)
			if got := routeName(tbl, tc.req); got != tc.want {
				var order []string
				for _, o := range tbl.Order() {
					order = append(order, o.Route.Name+"@"+o.Host)
				}
				t.Errorf("got %q, want %q (order %v)", got, tc.want, order)
			}
		})
	}
}

func TestFixtureRouting(t *testing.T) {
	tbl := compileYAML(t, fixture20)
	tests := []struct {
		req  *testReq
		want string
	}{
		{newReq("GET", "api.example.com", "/v1/users/42", "X-Canary: 1"), "api-canary"},
		{newReq("GET", "API.example.com:443", "/v1/users/42"), "api-v1"},
		{newReq("GET", "api.example.com", "/v2/x"), "api-v2"},
		{newReq("GET", "api.example.com", "/healthz"), "api-health"},
		{newReq("GET", "api.example.com", "/users/42/profile"), "users-regex"},
		{newReq("GET", "api.example.com", "/users/x/profile"), ""},
		{newReq("GET", "api.example.com", "/v3/a?version=3"), "api-v3"},
		{newReq("GET", "api.example.com", "/v3/a?version=2"), ""},
		{newReq("GET", "cdn.example.com", "/assets/app.js"), "static"},
		{newReq("GET", "cdn.example.com", "/other/app.js"), "files"},
		{newReq("GET", "acme.tenant.example.com", "/"), "tenants"},
		{newReq("GET", "admin.example.com", "/", "Authorization: Bearer x"), "admin"},
		{newReq("DELETE", "admin.example.com", "/", "Authorization: Bearer x"), "admin-deny"},
		{newReq("GET", "admin.example.com", "/"), "admin-deny"},
		{newReq("GET", "old.example.com", "/a?b=1"), "old-site"},
		{newReq("GET", "www.example.com", "/app/x", "Cookie: beta=1"), "beta"},
		{newReq("GET", "www.example.com", "/app/x", "Cookie: beta=0"), "www-app"},
		{newReq("GET", "www.example.com", "/other", "Cookie: beta=1"), "www"},
		{newReq("GET", "example.com", "/"), "www"},
		{newReq("POST", "anything.net", "/graphql"), "graphql"},
		{newReq("GET", "anything.net", "/graphql"), ""},
		{newReq("GET", "x.net", "/m/home", "User-Agent: Mozilla (iPhone)"), "mobile"},
		{newReq("GET", "x.net", "/internal/metrics"), "internal"},
		{newReq("GET", "maint.example.com", "/"), "maintenance"},
		{newReq("GET", "example.org", "/"), "org"},
		{newReq("GET", "nosuch.example.net", "/nothing"), ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.req.host)+string(tc.req.path), func(t *testing.T) {
			if got := routeName(tbl, tc.req); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if n := len(tbl.Routes()); n != 20 {
		t.Errorf("Routes: %d, want 20", n)
	}
	if o := tbl.Order(); o[0].Route.Name != "maintenance" {
		t.Errorf("Order[0] = %s, want maintenance", o[0].Route.Name)
	}
}

func TestNilAndEmptyTable(t *testing.T) {
	var nilTable *Table
	if _, ok := nilTable.Match(newReq("GET", "h", "/")); ok {
		t.Error("nil table matched")
	}
	tbl, err := Compile(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tbl.Match(newReq("GET", "h", "/")); ok {
		t.Error("empty table matched")
	}
}

func TestMatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop pooled expression VMs")
	}
	tbl := compileYAML(t, fixture20)
	reqs := []*testReq{
		newReq("GET", "api.example.com", "/v1/users/42"),
		newReq("GET", "API.EXAMPLE.COM:8080", "/users/42/profile"),
		newReq("GET", "x.net", "/m/home", "User-Agent: Android"),
		newReq("GET", "nosuch.example.net", "/nothing"),
		newReq("GET", "old.example.com", "/a?b=1"),
	}
	for _, r := range reqs {
		if n := testing.AllocsPerRun(100, func() { tbl.Match(r) }); n != 0 {
			t.Errorf("%s%s: %v allocs per Match, want 0", r.host, r.path, n)
		}
	}
}

// TestMatchConcurrent shares one table, including expression routes (and
// so the pooled VMs), between goroutines; run with -race.
func TestMatchConcurrent(t *testing.T) {
	tbl := compileYAML(t, fixture20)
	cases := []struct {
		req  *testReq
		want string
	}{
		{newReq("GET", "www.example.com", "/app/x", "Cookie: beta=1"), "beta"},
		{newReq("GET", "www.example.com", "/app/x"), "www-app"},
		{newReq("GET", "api.example.com", "/v1/x"), "api-v1"},
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				c := cases[(g+i)%len(cases)]
				if got := routeName(tbl, c.req); got != c.want {
					errs <- fmt.Sprintf("got %q want %q", got, c.want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
