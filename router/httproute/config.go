package httproute

import (
	"github.com/tiergate/tiergate/internal/httpcache"
	"github.com/tiergate/tiergate/internal/static"
)

// RouteConfig is one entry of the edge's `routes:` list. A route has a match
// and exactly one terminal action: upstream, split, redirect or respond.
//
//	routes:
//	  - name: api-canary
//	    priority: 10
//	    match:
//	      hosts: [api.example.com]
//	      path_prefix: /v1/
//	      headers: [{name: X-Canary, value: "1"}]
//	    split: [{upstream: api, weight: 90}, {upstream: api-next, weight: 10}]
//	    strip_prefix: /v1
//	    request_headers: {set: {X-Env: prod}, remove: [X-Debug]}
//
// Compile (or ValidateRoutes) checks a list of routes against the upstream
// names; Validate checks one route on its own, without upstream names.
type RouteConfig struct {
	// Name identifies the route in logs, metrics and errors; names must be
	// unique. Default: "routes[<index>]".
	Name string `yaml:"name"`
	// Priority orders routes before specificity, higher first. Default 0.
	Priority int `yaml:"priority"`
	// Match selects the requests this route handles. Default: all requests.
	Match MatchConfig `yaml:"match"`

	// Upstream proxies to the named upstream.
	Upstream string `yaml:"upstream"`
	// Split proxies to one of several upstreams, chosen in proportion to
	// their weights (canary releases, blue/green).
	Split []SplitConfig `yaml:"split"`
	// Redirect answers with a redirect instead of proxying.
	Redirect *RedirectConfig `yaml:"redirect"`
	// Respond answers with a fixed response instead of proxying.
	Respond *RespondConfig `yaml:"respond"`

	// StripPrefix removes this prefix from the path sent upstream when the
	// path starts with it ("/api" turns "/api/x" into "/x"; a path left
	// empty becomes "/"). Proxy routes only. Default: none.
	StripPrefix string `yaml:"strip_prefix"`
	// AddPrefix prepends this prefix to the path sent upstream (after
	// StripPrefix when both are set); a doubled slash at the junction is
	// collapsed. Proxy routes only. Default: none.
	AddPrefix string `yaml:"add_prefix"`
	// RewritePrefix replaces a leading From with To; it cannot be combined
	// with StripPrefix or AddPrefix. Proxy routes only. Default: none.
	RewritePrefix *RewritePrefixConfig `yaml:"rewrite_prefix"`

	// RequestHeaders edits the request sent upstream. Proxy routes only.
	RequestHeaders HeaderOpsConfig `yaml:"request_headers"`
	// ResponseHeaders edits the response sent to the client, for every
	// action kind.
	ResponseHeaders HeaderOpsConfig `yaml:"response_headers"`

	// Static serves files from a directory instead of proxying: the CDN
	// node action (ranges, ETags, precompressed variants, immutable
	// caching of fingerprinted names).
	Static *static.Config `yaml:"static"`
	// Cache stores this route's upstream responses (RFC 9111 shared-cache
	// rules, per route, opt-in). Proxy routes only.
	Cache *httpcache.Config `yaml:"cache"`
}

// MatchConfig lists the conditions of a route; all listed conditions must
// hold. At most one of Path, PathPrefix and PathRegex may be set. See the
// package documentation for the exact semantics of each.
type MatchConfig struct {
	// Hosts matches any of these hosts: "example.com", "*.example.com" or
	// "*" (any). No ports. Default: any host.
	Hosts []string `yaml:"hosts"`
	// Path matches this raw path exactly. Default: none.
	Path string `yaml:"path"`
	// PathPrefix matches raw paths starting with this prefix. Default: none.
	PathPrefix string `yaml:"path_prefix"`
	// PathRegex matches raw paths matching this RE2 regexp (unanchored).
	// Default: none.
	PathRegex string `yaml:"path_regex"`
	// Methods matches any of these methods. Default: any method.
	Methods []string `yaml:"methods"`
	// Headers lists header conditions, all of which must hold.
	Headers []FieldMatchConfig `yaml:"headers"`
	// Query lists query-parameter conditions, all of which must hold.
	Query []FieldMatchConfig `yaml:"query"`
	// Expr is an expr-lang boolean expression, e.g.
	// `Header("X-Canary") == "1" && Path startsWith "/api/"`. Default: none.
	Expr string `yaml:"expr"`
}

// FieldMatchConfig is one header or query-parameter condition. With only a
// name it requires presence; otherwise set exactly one of Value, Regex and
// Absent.
type FieldMatchConfig struct {
	// Name of the header (case-insensitive) or query key (exact, raw).
	Name string `yaml:"name"`
	// Value requires this exact (case-sensitive) value; "" is allowed.
	Value *string `yaml:"value"`
	// Regex requires the value to match this RE2 regexp (unanchored).
	Regex string `yaml:"regex"`
	// Absent requires the field to be missing.
	Absent bool `yaml:"absent"`
}

// SplitConfig is one weighted target of a split.
type SplitConfig struct {
	// Upstream names the target upstream. Required.
	Upstream string `yaml:"upstream"`
	// Weight is the relative share of requests, 0..1000000. 0 sends no
	// traffic (draining). Required in the sense that the default is 0; the
	// weights of a split must not all be 0.
	Weight int `yaml:"weight"`
}

// RewritePrefixConfig replaces a leading From with To in the upstream path.
type RewritePrefixConfig struct {
	// From is the prefix to replace; it must start with "/". Required.
	From string `yaml:"from"`
	// To replaces From; "" strips it. Default "".
	To string `yaml:"to"`
}

// HeaderOpsConfig edits headers: Remove first, then Set, then Add.
type HeaderOpsConfig struct {
	// Set replaces each named header with the value (adding it if absent).
	Set map[string]string `yaml:"set"`
	// Add appends a field line per entry, keeping existing ones.
	Add map[string]string `yaml:"add"`
	// Remove deletes every field line of each named header.
	Remove []string `yaml:"remove"`
}

// RedirectConfig answers with a redirect.
type RedirectConfig struct {
	// Status is 301, 302, 303, 307 or 308. Default 302.
	Status int `yaml:"status"`
	// To is the Location: an absolute http(s) URL or a path starting with
	// "/", optionally with $host (request host, no port), $path (raw path)
	// and $query ("?" plus the raw query, or "" when there is none); "$$"
	// is a literal "$" (write "$$$$" in YAML, where the loader also
	// expands "$$"). Example: "https://$host$path$query". Required.
	To string `yaml:"to"`
}

// RespondConfig answers with a fixed response.
type RespondConfig struct {
	// Status is the response status, 200..599. Default 200.
	Status int `yaml:"status"`
	// Body is sent as is. Default: empty. Not allowed with 204 and 304.
	Body string `yaml:"body"`
	// ContentType of the body. Default "text/plain; charset=utf-8" when
	// Body is set, none otherwise.
	ContentType string `yaml:"content_type"`
}

// Defaults applied by SetDefaults and, for zero values, by Compile.
const (
	DefaultRedirectStatus = 302
	DefaultRespondStatus  = 200
	DefaultContentType    = "text/plain; charset=utf-8"
)

// SetDefaults fills zero values with their documented defaults (Name is
// filled by Compile, which knows the route's index).
func (r *RouteConfig) SetDefaults() {
	if r.Static != nil {
		r.Static.SetDefaults()
	}
	if r.Cache != nil {
		r.Cache.SetDefaults()
	}
	if r.Redirect != nil && r.Redirect.Status == 0 {
		r.Redirect.Status = DefaultRedirectStatus
	}
	if r.Respond != nil {
		if r.Respond.Status == 0 {
			r.Respond.Status = DefaultRespondStatus
		}
		if r.Respond.ContentType == "" && r.Respond.Body != "" {
			r.Respond.ContentType = DefaultContentType
		}
	}
}

// Validate reports every problem in this route that can be found without
// the upstream names (regexps, expressions, action shape, statuses), with
// paths relative to the route ("match.path_regex").
func (r *RouteConfig) Validate() error {
	_, err := compileRoute(0, r, nil)
	return err
}
