package httproute

import (
	"net/netip"
	"strings"
	"testing"
)

func TestExprRoutes(t *testing.T) {
	withIP := func(r *testReq, ip string) *testReq {
		r.ip = netip.MustParseAddr(ip)
		return r
	}
	tests := []struct {
		name, expr string
		req        *testReq
		want       bool
	}{
		{"brief example", `Header("X-Canary") == "1" && Path startsWith "/api/"`, newReq("GET", "h", "/api/x", "X-Canary: 1"), true},
		{"brief example header missing", `Header("X-Canary") == "1" && Path startsWith "/api/"`, newReq("GET", "h", "/api/x"), false},
		{"header name any case", `Header("x-canary") == "1"`, newReq("GET", "h", "/", "X-Canary: 1"), true},
		{"missing header is empty", `Header("X-None") == ""`, newReq("GET", "h", "/"), true},
		{"method", `Method in ["PUT", "PATCH"]`, newReq("PATCH", "h", "/"), true},
		{"custom method", `Method == "PURGE"`, newReq("PURGE", "h", "/"), true},
		{"host is normalised", `Host == "api.example.com"`, newReq("GET", "API.Example.com:8443", "/"), true},
		{"host endsWith", `Host endsWith ".example.com"`, newReq("GET", "a.example.com", "/"), true},
		{"query raw", `Query == "a=1&b=2"`, newReq("GET", "h", "/?a=1&b=2"), true},
		{"query param", `QueryParam("b") == "2"`, newReq("GET", "h", "/?a=1&b=2"), true},
		{"query param missing", `QueryParam("c") == ""`, newReq("GET", "h", "/?a=1"), true},
		{"cookie", `Cookie("session") != "" && Cookie("beta") == "on"`, newReq("GET", "h", "/", "Cookie: session=abc; beta=on"), true},
		{"client ip", `ClientIP == "192.0.2.10"`, newReq("GET", "h", "/"), true},
		{"client ip v6", `ClientIP startsWith "2001:db8:"`, withIP(newReq("GET", "h", "/"), "2001:db8::1"), true},
		{"client ip mapped", `ClientIP == "10.1.2.3"`, withIP(newReq("GET", "h", "/"), "::ffff:10.1.2.3"), true},
		{"regex operator", `Path matches "^/v[0-9]+/"`, newReq("GET", "h", "/v2/x"), true},
		{"runtime error is no match", `int(Header("X-N")) > 3`, newReq("GET", "h", "/", "X-N: abc"), false},
		{"runtime ok", `int(Header("X-N")) > 3`, newReq("GET", "h", "/", "X-N: 7"), true},
		{"$env access fills all", `$env.Path == "/p" && $env["Method"] == "GET"`, newReq("GET", "h", "/p"), true},
		{"let binding", `let p = Path; p contains "/x/" || p == "/x"`, newReq("GET", "h", "/x"), true},
		{"pipe call", `"X-Canary" | Header() == "1"`, newReq("GET", "h", "/", "X-Canary: 1"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := compileYAML(t, "upstreams: [u]\nroutes:\n  - name: r\n    match: {expr: '"+strings.ReplaceAll(tc.expr, "'", "''")+"'}\n    upstream: u\n")
			// Twice: the second run reuses a pooled VM and env.
			for i := range 2 {
				if got := routeName(tbl, tc.req) == "r"; got != tc.want {
					t.Fatalf("run %d: got %v, want %v", i, got, tc.want)
				}
			}
		})
	}
}

// TestExprEnvReset checks that values filled for one request do not leak
// into the next evaluation through the pooled state.
func TestExprEnvReset(t *testing.T) {
	tbl := compileYAML(t, `
upstreams: [u]
routes:
  - {name: a, match: {expr: 'Path == "/a"'}, upstream: u}
  - {name: q, match: {expr: 'Query == "" && Method == "GET"'}, upstream: u}
`)
	if got := routeName(tbl, newReq("GET", "h", "/a?x=1")); got != "a" {
		t.Fatalf("got %q", got)
	}
	if got := routeName(tbl, newReq("GET", "h", "/b")); got != "q" {
		t.Fatalf("got %q, want q", got)
	}
	if got := routeName(tbl, newReq("GET", "h", "/b?x=1")); got != "" {
		t.Fatalf("got %q, want no match", got)
	}
}

func TestExprCompileErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{`Foo == 1`, "unknown name Foo"},
		{`Path +`, "unexpected token"},
		{`Path`, "expected bool"},
		{`Header(1) == ""`, "cannot use int"},
		{`Header() == ""`, "not enough arguments"},
		{`req == nil`, "unknown name req"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := compileExpr(tc.expr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExprUses(t *testing.T) {
	tests := []struct {
		expr string
		want int
	}{
		{`Header("A") == "1"`, 0},
		{`Path == "/" && Method == "GET"`, usePath | useMethod},
		{`Host == "h" || ClientIP == "" || Query == ""`, useHost | useClientIP | useQuery},
		{`$env.Path == "/"`, useAll},
	}
	for _, tc := range tests {
		p, err := compileExpr(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if p.uses != tc.want {
			t.Errorf("%s: uses %b, want %b", tc.expr, p.uses, tc.want)
		}
	}
}
