package httproute

import (
	"errors"
	"strings"
	"testing"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		routes string // YAML under "routes:", upstreams are [api, web]
		want   []string
	}{
		{"unknown upstream", `
  - upstream: apii`, []string{`edge.yaml:3: routes[0].upstream: unknown upstream "apii" (known: api, web)`}},
		{"unknown upstream in split", `
  - upstream: api
  - split:
      - {upstream: api, weight: 1}
      - {upstream: nope, weight: 1}`, []string{`edge.yaml:6: routes[1].split[1].upstream: unknown upstream "nope"`}},
		{"bad path regex", `
  - {upstream: api}
  - {upstream: api}
  - {upstream: api}
  - match:
      path_regex: '^/(a'
    upstream: api`, []string{"edge.yaml:7: routes[3].match.path_regex: error parsing regexp: missing closing )"}},
		{"bad header regex", `
  - match: {headers: [{name: X, regex: '[z-a]'}]}
    upstream: api`, []string{"routes[0].match.headers[0].regex: error parsing regexp: invalid character class range"}},
		{"bad expression", `
  - match: {expr: 'Heder("X") == "1"'}
    upstream: api`, []string{"edge.yaml:3: routes[0].match.expr: unknown name Heder"}},
		{"expression not bool", `
  - match: {expr: 'Path + "x"'}
    upstream: api`, []string{"routes[0].match.expr: expected bool"}},
		{"empty split", `
  - split: []`, []string{"edge.yaml:3: routes[0].split: is empty"}},
		{"split weights zero", `
  - split: [{upstream: api}, {upstream: web}]`, []string{"routes[0].split: weights sum to 0"}},
		{"split weight range", `
  - split: [{upstream: api, weight: -1}, {upstream: web, weight: 2000000}]`, []string{"routes[0].split[0].weight: -1 is outside 0..1000000", "routes[0].split[1].weight: 2000000 is outside"}},
		{"split duplicate and missing upstream", `
  - split: [{upstream: api, weight: 1}, {upstream: api, weight: 1}, {weight: 1}]`, []string{"routes[0].split[1].upstream: \"api\" is already listed at split[0]", "routes[0].split[2].upstream: is required"}},
		{"bad redirect status", `
  - redirect: {status: 200, to: /x}`, []string{"edge.yaml:3: routes[0].redirect.status: 200 is not a redirect status"}},
		{"redirect without target", `
  - redirect: {status: 301}`, []string{"routes[0].redirect.to: is required"}},
		{"redirect unknown variable", `
  - redirect: {to: 'https://h/$uri'}`, []string{"routes[0].redirect.to: unknown variable $uri"}},
		{"redirect relative", `
  - redirect: {to: 'example.com/x'}`, []string{"routes[0].redirect.to: \"example.com/x\" must be an http(s) URL"}},
		{"redirect protocol-relative", `
  - redirect: {to: '//example.com/x'}`, []string{"routes[0].redirect.to: \"//example.com/x\" is protocol-relative"}},
		{"respond status", `
  - respond: {status: 99}`, []string{"routes[0].respond.status: 99 is outside 200..599"}},
		{"respond 204 with body", `
  - respond: {status: 204, body: x}`, []string{"routes[0].respond.body: status 204 cannot have a body"}},
		{"no action", `
  - name: lonely
    match: {path: /x}`, []string{"edge.yaml:3: routes[0]: needs an action"}},
		{"two actions", `
  - upstream: api
    respond: {status: 200}`, []string{"routes[0].respond: cannot be combined with upstream"}},
		{"path and prefix", `
  - match: {path: /a, path_prefix: /b}
    upstream: api`, []string{"routes[0].match.path_prefix: cannot be combined with path"}},
		{"paths must be absolute", `
  - match: {path: a}
    upstream: api
  - match: {path_prefix: b}
    upstream: api`, []string{"routes[0].match.path: \"a\" must start with /", "routes[1].match.path_prefix: \"b\" must start with /"}},
		{"hosts", `
  - match: {hosts: [a.com, "a.com:8080", "*.b.com", "c.*.com", "d..com", "A.COM", "bad_host!", "[::1]:80", "::1", "ex\u00e4mple.com"]}
    upstream: api`, []string{
			`routes[0].match.hosts[1]: "a.com:8080" has a port`,
			`routes[0].match.hosts[3]: "c.*.com": a wildcard is only allowed as the whole first label`,
			`routes[0].match.hosts[4]: "d..com": has an empty label`,
			`routes[0].match.hosts[5]: "A.COM" is listed twice`,
			`routes[0].match.hosts[6]: "bad_host!": has invalid character '!'`,
			`routes[0].match.hosts[7]: "[::1]:80" is not a bracketed IPv6 address`,
			`routes[0].match.hosts[8]: "::1" has a port or is an unbracketed IPv6 address`,
			`routes[0].match.hosts[9]: "exämple.com": has invalid character`,
		}},
		{"methods", `
  - match: {methods: [GET, get, "GE T", GET]}
    upstream: api`, []string{`routes[0].match.methods[1]: method "get" has lower-case letters`, `routes[0].match.methods[2]: method "GE T" has invalid character ' '`, `routes[0].match.methods[3]: "GET" is listed twice`}},
		{"field conditions", `
  - match:
      headers: [{name: "X Y"}, {name: A, value: "1", regex: "1"}, {name: B, regex: x, absent: true}]
      query: [{value: "1"}]
    upstream: api`, []string{`routes[0].match.headers[0].name: header name "X Y" has invalid character ' '`, "routes[0].match.headers[1].regex: cannot be combined with value", "routes[0].match.headers[2].absent: cannot be combined with regex", "routes[0].match.query[0].name: is required"}},
		{"rewrite on redirect", `
  - redirect: {to: /x}
    strip_prefix: /a`, []string{"routes[0].strip_prefix: only applies to upstream and split routes"}},
		{"request headers on respond", `
  - respond: {status: 200}
    request_headers: {set: {X: "1"}}`, []string{"routes[0].request_headers: only applies to upstream and split routes"}},
		{"rewrite conflicts", `
  - upstream: api
    strip_prefix: a
    add_prefix: /b?x
    rewrite_prefix: {from: c, to: d}`, []string{`routes[0].strip_prefix: "a" must start with /`, `routes[0].add_prefix: "/b?x" contains '?'`, "routes[0].rewrite_prefix: cannot be combined with strip_prefix", `routes[0].rewrite_prefix.from: "c" must start with /`, `routes[0].rewrite_prefix.to: "d" must start with /`}},
		{"header edits", `
  - upstream: api
    request_headers:
      set: {Content-Length: "1", "Bad Name": x, X-Ok: "a\nb"}
      add: {transfer-encoding: chunked}
      remove: ["a:b"]`, []string{"routes[0].request_headers.remove[0]: header name \"a:b\" has invalid character ':'", "routes[0].request_headers.set.Bad Name: header name", "routes[0].request_headers.set.Content-Length: Content-Length is managed by the proxy", "routes[0].request_headers.set.X-Ok: \"a\\nb\" contains a control character", "routes[0].request_headers.add.transfer-encoding: Transfer-Encoding is managed by the proxy"}},
		{"duplicate names", `
  - {name: a, upstream: api}
  - {name: a, upstream: web}`, []string{`edge.yaml:4: routes[1].name: "a" is already used by routes[0]`}},
		{"default name collides", `
  - {upstream: api}
  - {name: "routes[0]", upstream: web}`, []string{`routes[1].name: "routes[0]" is already used by routes[0]`}},
		{"several routes at once", `
  - upstream: nope
  - match: {path_regex: '('}
    upstream: api
  - redirect: {status: 300, to: /}`, []string{"edge.yaml:3: routes[0].upstream", "edge.yaml:4: routes[1].match.path_regex", "edge.yaml:6: routes[2].redirect.status"}},
		{"unknown field from the loader", `
  - upstream: api
    strip: /x`, []string{"edge.yaml:4: routes[0].strip: unknown field"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "upstreams: [api, web]\nroutes:" + tc.routes + "\n"
			var c edgeConfig
			err := config.Parse("edge.yaml", []byte(src), &c, func(string) (string, bool) { return "", false })
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("not config.ErrInvalid: %v", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
		})
	}
}

func TestRouteValidateWithoutUpstreams(t *testing.T) {
	r := RouteConfig{Upstream: "not-checked-here", Match: MatchConfig{PathRegex: "("}}
	err := r.Validate()
	if err == nil || !strings.Contains(err.Error(), "match.path_regex: error parsing regexp") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "upstream") {
		t.Errorf("upstream reported without upstream names: %v", err)
	}
	ok := RouteConfig{Split: []SplitConfig{{Upstream: "a", Weight: 1}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid route: %v", err)
	}
}

func TestSetDefaults(t *testing.T) {
	c := parseEdge(t, `
upstreams: [u]
routes:
  - {redirect: {to: /x}}
  - {respond: {body: hi}}
  - {respond: {}}
`)
	if c.Routes[0].Redirect.Status != 302 {
		t.Errorf("redirect status %d", c.Routes[0].Redirect.Status)
	}
	if r := c.Routes[1].Respond; r.Status != 200 || r.ContentType != DefaultContentType {
		t.Errorf("respond %+v", r)
	}
	if r := c.Routes[2].Respond; r.Status != 200 || r.ContentType != "" {
		t.Errorf("empty respond %+v", r)
	}
	tbl, err := Compile(c.Routes, c.Upstreams)
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.Routes()[2].Name; got != "routes[2]" {
		t.Errorf("default name %q", got)
	}
}

// TestCompileDoesNotModify checks that Compile leaves its input alone:
// the engine may keep the config for display or diffing.
func TestCompileDoesNotModify(t *testing.T) {
	routes := []RouteConfig{{Redirect: &RedirectConfig{To: "/x"}}, {Respond: &RespondConfig{Body: "b"}}}
	if _, err := Compile(routes, nil); err != nil {
		t.Fatal(err)
	}
	if routes[0].Redirect.Status != 0 || routes[1].Respond.Status != 0 || routes[0].Name != "" {
		t.Errorf("Compile modified its input: %+v %+v", routes[0], routes[1].Respond)
	}
}
