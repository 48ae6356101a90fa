package httproute

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/tiergate/tiergate/internal/config"
)

// testReq is a Request over plain byte slices; it does not allocate, so
// benchmarks measure the router alone.
type testReq struct {
	method, host, path, query []byte
	headers                   [][2][]byte
	cookies                   [][2][]byte
	ip                        netip.Addr
}

var _ Request = (*testReq)(nil)

// newReq builds a request from a target ("/p?q") and "Name: value" lines;
// a "Cookie: a=1; b=2" line also fills the cookies.
func newReq(method, host, target string, headers ...string) *testReq {
	r := &testReq{method: []byte(method), host: []byte(host), ip: netip.MustParseAddr("192.0.2.10")}
	path, query, hasQuery := strings.Cut(target, "?")
	r.path = []byte(path)
	if hasQuery {
		r.query = []byte(query)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		r.headers = append(r.headers, [2][]byte{[]byte(name), []byte(value)})
		if strings.EqualFold(name, "Cookie") {
			for _, c := range strings.Split(value, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(c), "=")
				r.cookies = append(r.cookies, [2][]byte{[]byte(k), []byte(v)})
			}
		}
	}
	return r
}

func (r *testReq) Method() []byte { return r.method }
func (r *testReq) Host() []byte   { return r.host }
func (r *testReq) Path() []byte   { return r.path }
func (r *testReq) Query() []byte  { return r.query }
func (r *testReq) Header(name string) ([]byte, bool) {
	for _, kv := range r.headers {
		if bytes.EqualFold(kv[0], []byte(name)) {
			return kv[1], true
		}
	}
	return nil, false
}
func (r *testReq) Cookie(name string) []byte {
	for _, kv := range r.cookies {
		if string(kv[0]) == name {
			return kv[1]
		}
	}
	return nil
}
func (r *testReq) ClientIP() netip.Addr { return r.ip }

// edgeConfig stands in for the engine's config: upstream names plus the
// embedded routes section.
type edgeConfig struct {
	Upstreams []string      `yaml:"upstreams"`
	Routes    []RouteConfig `yaml:"routes"`
}

func (c *edgeConfig) SetDefaults() {
	for i := range c.Routes {
		c.Routes[i].SetDefaults()
	}
}

func (c *edgeConfig) Validate() error { return ValidateRoutes(c.Routes, c.Upstreams) }

// parseEdge loads YAML the way the engine will, through internal/config.
func parseEdge(t testing.TB, src string) *edgeConfig {
	t.Helper()
	var c edgeConfig
	if err := config.Parse("edge.yaml", []byte(src), &c, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c
}

func compileYAML(t testing.TB, src string) *Table {
	t.Helper()
	c := parseEdge(t, src)
	tbl, err := Compile(c.Routes, c.Upstreams)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return tbl
}

// fixture20 is the 20-route table of the benchmarks and the fuzz target.
const fixture20 = `
upstreams: [api, api-next, users, static, tenants, admin, web-beta, web, graphql, mobile]
routes:
  - name: api-canary
    match:
      hosts: [api.example.com]
      path_prefix: /v1/
      headers: [{name: X-Canary, value: "1"}]
    split: [{upstream: api, weight: 90}, {upstream: api-next, weight: 10}]
  - name: api-v1
    match: {hosts: [api.example.com], path_prefix: /v1/}
    upstream: api
    strip_prefix: /v1
  - name: api-v2
    match: {hosts: [api.example.com], path_prefix: /v2/}
    upstream: api-next
    rewrite_prefix: {from: /v2/, to: /}
  - name: api-health
    match: {hosts: [api.example.com], path: /healthz}
    respond: {body: "ok\n"}
  - name: users-regex
    match: {hosts: [api.example.com], path_regex: '^/users/[0-9]+/profile$'}
    upstream: users
  - name: static
    match: {hosts: [static.example.com, cdn.example.com], path_prefix: /assets/}
    upstream: static
    response_headers: {set: {Cache-Control: "public, max-age=3600"}}
  - name: tenants
    match: {hosts: ["*.tenant.example.com"]}
    upstream: tenants
  - name: admin
    match:
      hosts: [admin.example.com]
      methods: [GET, POST]
      headers: [{name: Authorization}]
    upstream: admin
    request_headers: {set: {X-Admin: "1"}, remove: [Cookie]}
  - name: admin-deny
    match: {hosts: [admin.example.com]}
    respond: {status: 403, body: forbidden}
  - name: old-site
    match: {hosts: [old.example.com]}
    redirect: {status: 301, to: "https://www.example.com$path$query"}
  - name: beta
    match:
      hosts: [www.example.com]
      path_prefix: /app/
      expr: 'Cookie("beta") == "1" && Path startsWith "/app/"'
    upstream: web-beta
  - name: www-app
    match: {hosts: [www.example.com], path_prefix: /app/}
    upstream: web
  - name: www
    match: {hosts: [www.example.com, example.com]}
    upstream: web
  - name: graphql
    match: {path: /graphql, methods: [POST]}
    upstream: graphql
  - name: api-v3
    match:
      hosts: [api.example.com]
      path_prefix: /v3/
      query: [{name: version, value: "3"}]
    upstream: api-next
  - name: mobile
    match:
      path_prefix: /m/
      headers: [{name: User-Agent, regex: '(?i)android|iphone'}]
    upstream: mobile
  - name: internal
    match: {path_prefix: /internal/}
    respond: {status: 404}
  - name: files
    match: {path_regex: '\.(png|jpg|css|js)$'}
    upstream: static
  - name: maintenance
    priority: 100
    match: {hosts: [maint.example.com]}
    respond: {status: 503, body: "maintenance\n"}
  - name: org
    match: {hosts: [example.org]}
    respond: {status: 404, body: "no such site\n"}
`
