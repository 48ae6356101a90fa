package httproute

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/valyala/fasthttp"
)

func mustRoute(t *testing.T, tbl *Table, r Request) *Route {
	t.Helper()
	rt, ok := tbl.Match(r)
	if !ok {
		t.Fatal("no route matched")
	}
	return rt
}

func TestSplitPick(t *testing.T) {
	tbl := compileYAML(t, `
upstreams: [a, b, c]
routes:
  - name: canary
    split: [{upstream: a, weight: 90}, {upstream: b, weight: 0}, {upstream: c, weight: 10}]
`)
	s := &mustRoute(t, tbl, newReq("GET", "h", "/")).Action.Split
	tests := []struct {
		rnd  uint64
		want string
	}{
		{0, "a"},
		{math.MaxUint64 / 10 * 9, "a"},       // just below 90%
		{math.MaxUint64/10*9 + 1<<32, "c"},   // just above 90%
		{math.MaxUint64, "c"},                // the top of the range
		{math.MaxUint64 / 2, "a"},            // 50%
		{math.MaxUint64 / 100 * 95, "c"},     // 95%
		{math.MaxUint64/100*90 - 1<<40, "a"}, // 89.99...%
		{math.MaxUint64/100*90 + 1<<40, "c"}, // 90.00...%
		{16602069666338596455, "c"},          // ceil(0.9 * 2^64): the first draw for c
		{16602069666338596454, "a"},          // the last draw for a
	}
	for _, tc := range tests {
		for range 3 { // deterministic: same input, same answer
			if got := s.Pick(tc.rnd); got.Name != tc.want {
				t.Errorf("Pick(%d) = %s, want %s", tc.rnd, got.Name, tc.want)
			}
		}
	}
	if got := s.Pick(0); got.Index != 0 {
		t.Errorf("index of a = %d", got.Index)
	}
	if got := s.Pick(math.MaxUint64); got.Index != 2 {
		t.Errorf("index of c = %d, want its position in the upstream list", got.Index)
	}
	if ts := s.Targets(); len(ts) != 3 || ts[1].Weight != 0 || ts[2].Name != "c" {
		t.Errorf("Targets = %+v", ts)
	}

	// Ratio over 10k draws from a seeded generator: 90/0/10 within 1.5
	// points (about 5 standard deviations for p=0.1, n=10000).
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	const n = 10000
	for range n {
		counts[s.Pick(rng.Uint64()).Name]++
	}
	if counts["b"] != 0 {
		t.Errorf("zero-weight target picked %d times", counts["b"])
	}
	if c := counts["c"]; c < 850 || c > 1150 {
		t.Errorf("c picked %d/%d, want about 1000", c, n)
	}
	if counts["a"]+counts["c"] != n {
		t.Errorf("counts %v", counts)
	}

	var zero Split
	if got := zero.Pick(42); got != (Upstream{}) {
		t.Errorf("zero Split picked %+v", got)
	}
	single := &mustRoute(t, compileYAML(t, "upstreams: [x, y]\nroutes: [{upstream: y}]\n"), newReq("GET", "h", "/")).Action.Split
	if got := single.Pick(12345); got != (Upstream{Name: "y", Index: 1}) {
		t.Errorf("single upstream picked %+v", got)
	}
}

func TestPathRewrite(t *testing.T) {
	tests := []struct {
		name, cfg, path, want string
	}{
		{"none", "", "/a/b", "/a/b"},
		{"strip", "strip_prefix: /api", "/api/users", "/users"},
		{"strip to empty", "strip_prefix: /api", "/api", "/"},
		{"strip with slash", "strip_prefix: /api/", "/api/users", "/users"},
		{"strip with slash to empty", "strip_prefix: /api/", "/api/", "/"},
		{"strip not matching", "strip_prefix: /api", "/other", "/other"},
		{"strip is plain bytes", "strip_prefix: /api", "/apiary", "/ary"},
		{"strip keeps raw bytes", "strip_prefix: /api", "/api/a%2Fb/../c", "/a%2Fb/../c"},
		{"add", "add_prefix: /v2", "/users", "/v2/users"},
		{"add collapses junction", "add_prefix: /v2/", "/users", "/v2/users"},
		{"add to root", "add_prefix: /v2", "/", "/v2/"},
		{"strip and add", "{strip_prefix: /api, add_prefix: /internal}", "/api/users", "/internal/users"},
		{"strip and add to empty", "{strip_prefix: /api, add_prefix: /internal}", "/api", "/internal"},
		{"strip and add not matching", "{strip_prefix: /api, add_prefix: /internal}", "/x", "/x"},
		{"rewrite", "rewrite_prefix: {from: /old/, to: /new/}", "/old/a", "/new/a"},
		{"rewrite to root", "rewrite_prefix: {from: /v2/, to: /}", "/v2/a", "/a"},
		{"rewrite to empty", "rewrite_prefix: {from: /v2}", "/v2/a", "/a"},
		{"rewrite whole path", "rewrite_prefix: {from: /v2, to: /x}", "/v2", "/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if len(cfg) > 0 && cfg[0] == '{' {
				cfg = cfg[1 : len(cfg)-1]
			}
			src := "upstreams: [u]\nroutes:\n  - {upstream: u"
			if cfg != "" {
				src += ", " + cfg
			}
			src += "}\n"
			rt := mustRoute(t, compileYAML(t, src), newReq("GET", "h", tc.path))
			dst := []byte("keep:")
			got := rt.Action.Rewrite.Append(dst, []byte(tc.path))
			if string(got) != "keep:"+tc.want {
				t.Errorf("Append(%q) = %q, want %q", tc.path, got[5:], tc.want)
			}
			if rt.Action.Rewrite.IsZero() != (tc.cfg == "") {
				t.Errorf("IsZero = %v", rt.Action.Rewrite.IsZero())
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	tests := []struct {
		name, to string
		status   int
		req      *testReq
		want     string
		wantStat int
	}{
		{"fixed", "https://example.com/", 0, newReq("GET", "h", "/x?y"), "https://example.com/", 302},
		{"https upgrade", "https://$host$path$query", 308, newReq("GET", "Www.Example.com:80", "/a/b?c=1&d"), "https://www.example.com/a/b?c=1&d", 308},
		{"no query", "https://$host$path$query", 301, newReq("GET", "h.com", "/a"), "https://h.com/a", 301},
		{"empty query", "https://$host$path$query", 301, newReq("GET", "h.com", "/a?"), "https://h.com/a", 301},
		{"path under new prefix", "/new$path", 307, newReq("GET", "h", "/old"), "/new/old", 307},
		{"path only", "$path/", 302, newReq("GET", "h", "/dir"), "/dir/", 302},
		{"protocol-relative path collapsed", "$path", 302, newReq("GET", "h", "//evil.example/x"), "/evil.example/x", 302},
		{"backslash escaped", "$path", 302, newReq("GET", "h", `/\evil.example`), "/%5Cevil.example", 302},
		{"controls escaped", "https://h$path$query", 302, &testReq{host: []byte("h"), path: []byte("/a b\x00"), query: []byte("x=\r\n")}, "https://h/a%20b%00?x=%0D%0A", 302},
		{"non-ascii escaped", "https://h$path", 302, newReq("GET", "h", "/caf\xc3\xa9"), "https://h/caf%C3%A9", 302},
		{"literal dollar", "https://h/$$5$path", 302, newReq("GET", "h", "/x"), "https://h/$5/x", 302},
		{"ipv6 host", "https://$host/", 302, newReq("GET", "[::1]:8443", "/"), "https://[::1]/", 302},
		{"path not starting with slash", "https://h$path", 302, newReq("OPTIONS", "h", "*"), "https://h/*", 302},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := RouteConfig{Redirect: &RedirectConfig{Status: tc.status, To: tc.to}}
			tbl, err := Compile([]RouteConfig{rc}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rt := mustRoute(t, tbl, tc.req)
			if rt.Action.Kind != ActionRedirect || rt.Action.Redirect.Status != tc.wantStat {
				t.Fatalf("kind %v status %d", rt.Action.Kind, rt.Action.Redirect.Status)
			}
			if got := string(rt.Action.Redirect.AppendLocation(nil, tc.req)); got != tc.want {
				t.Errorf("Location = %q, want %q", got, tc.want)
			}
			fixed, isFixed := rt.Action.Redirect.Fixed()
			if isFixed != (tc.name == "fixed") || isFixed && fixed != tc.want {
				t.Errorf("Fixed() = %q, %v", fixed, isFixed)
			}
		})
	}
	r := newReq("GET", "h.com", "/a?b")
	rd := mustRoute(t, compileYAML(t, "routes: [{redirect: {to: 'https://$host$path$query'}}]\n"), r).Action.Redirect
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = rd.AppendLocation(buf[:0], r) }); n != 0 {
		t.Errorf("AppendLocation: %v allocs", n)
	}
}

func TestRespond(t *testing.T) {
	tbl := compileYAML(t, `
routes:
  - {name: ok, match: {path: /ok}, respond: {body: "ok\n"}}
  - {name: gone, match: {path: /gone}, respond: {status: 410}}
  - {name: json, match: {path: /j}, respond: {status: 503, body: '{"down":true}', content_type: application/json}, response_headers: {set: {Retry-After: "30"}}}
`)
	tests := []struct {
		path string
		want Respond
	}{
		{"/ok", Respond{Status: 200, ContentType: DefaultContentType, Body: "ok\n"}},
		{"/gone", Respond{Status: 410}},
		{"/j", Respond{Status: 503, ContentType: "application/json", Body: `{"down":true}`}},
	}
	for _, tc := range tests {
		rt := mustRoute(t, tbl, newReq("GET", "h", tc.path))
		if rt.Action.Kind != ActionRespond || rt.Action.Respond != tc.want {
			t.Errorf("%s: %v %+v, want %+v", tc.path, rt.Action.Kind, rt.Action.Respond, tc.want)
		}
	}
	rt := mustRoute(t, tbl, newReq("GET", "h", "/j"))
	if got := rt.Action.ResponseHeaders.Set; len(got) != 1 || got[0] != (HeaderField{"Retry-After", "30"}) {
		t.Errorf("response headers %+v", got)
	}
}

func TestHeaderOps(t *testing.T) {
	tbl := compileYAML(t, `
upstreams: [u]
routes:
  - upstream: u
    request_headers:
      remove: [x-debug, Cookie]
      set: {x-env: prod, Host: internal.svc}
      add: {Via: 1.1 tiergate}
    response_headers:
      set: {Strict-Transport-Security: max-age=63072000}
      remove: [server]
`)
	act := mustRoute(t, tbl, newReq("GET", "h", "/")).Action
	if act.Kind != ActionProxy || act.Kind.String() != "proxy" {
		t.Fatalf("kind %v", act.Kind)
	}
	want := HeaderOps{
		Remove: []string{"X-Debug", "Cookie"},
		Set:    []HeaderField{{"Host", "internal.svc"}, {"X-Env", "prod"}},
		Add:    []HeaderField{{"Via", "1.1 tiergate"}},
	}
	if !slices.Equal(act.RequestHeaders.Remove, want.Remove) || !slices.Equal(act.RequestHeaders.Set, want.Set) || !slices.Equal(act.RequestHeaders.Add, want.Add) {
		t.Fatalf("ops %+v, want %+v", act.RequestHeaders, want)
	}

	var req fasthttp.Request
	req.Header.Set("X-Debug", "1")
	req.Header.Set("X-Env", "dev")
	req.Header.Set("Via", "1.0 cdn")
	req.Header.SetCookie("s", "1")
	req.Header.SetHost("public.example.com")
	act.RequestHeaders.Apply(&req.Header)
	checks := map[string]string{"X-Debug": "", "X-Env": "prod", "Host": "internal.svc", "Cookie": ""}
	for k, v := range checks {
		if got := string(req.Header.Peek(k)); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if via := req.Header.PeekAll("Via"); len(via) != 2 || string(via[1]) != "1.1 tiergate" {
		t.Errorf("Via = %q", via)
	}

	var resp fasthttp.Response
	resp.Header.Set("Server", "origin")
	act.ResponseHeaders.Apply(&resp.Header)
	if string(resp.Header.Peek("Server")) != "" || string(resp.Header.Peek("Strict-Transport-Security")) != "max-age=63072000" {
		t.Errorf("response headers: %s", resp.Header.String())
	}
	var empty HeaderOps
	if !empty.IsZero() || act.RequestHeaders.IsZero() {
		t.Error("IsZero")
	}
}
