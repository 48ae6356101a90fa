package httproute

import (
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"regexp"
	"slices"
	"strings"

	"github.com/tiergate/tiergate/internal/config"
)

// Compile checks routes against the upstream names and builds the
// immutable Table the engine matches against. Errors carry field paths
// rooted at the engine's `routes:` key ("routes[3].match.path_regex: ...")
// and report every problem at once. Compile does not modify routes; zero
// values take their documented defaults. Upstream.Index in the result is
// the position of the name in upstreams.
func Compile(routes []RouteConfig, upstreams []string) (*Table, error) {
	idx := make(map[string]int, len(upstreams))
	for i, name := range upstreams {
		if _, dup := idx[name]; !dup {
			idx[name] = i
		}
	}
	var errs []error
	specs := make([]*routeSpec, 0, len(routes))
	names := make(map[string]int, len(routes))
	for i := range routes {
		spec, err := compileRoute(i, &routes[i], idx)
		if err != nil {
			errs = append(errs, config.At("routes", i, err))
			continue
		}
		if prev, dup := names[spec.route.Name]; dup {
			errs = append(errs, config.At("routes", i, config.Errorf("name", "%q is already used by routes[%d]", spec.route.Name, prev)))
			continue
		}
		names[spec.route.Name] = i
		specs = append(specs, spec)
	}
	if err := config.Join(errs...); err != nil {
		return nil, err
	}
	return newTable(specs), nil
}

// ValidateRoutes reports what Compile would, without keeping the result;
// the engine's config Validate calls it with its upstream names.
func ValidateRoutes(routes []RouteConfig, upstreams []string) error {
	_, err := Compile(routes, upstreams)
	return err
}

// routeSpec is a compiled route before it is placed in a Table.
type routeSpec struct {
	route *Route
	hosts []hostPattern
}

type hostPattern struct {
	kind hostKind
	host string // exact host, or wildcard suffix ".example.com"
}

// compileRoute compiles the i-th route. upstreams maps names to indexes;
// nil skips the upstream name checks (RouteConfig.Validate).
func compileRoute(i int, rc *RouteConfig, upstreams map[string]int) (*routeSpec, error) {
	var errs []error
	rt := &Route{Name: rc.Name, Index: i, Priority: rc.Priority}
	if rt.Name == "" {
		rt.Name = config.Index("routes", i)
	}
	m, hosts, err := compileMatch(&rc.Match)
	errs = append(errs, config.In("match", err))
	rt.m = m
	act, err := compileAction(rc, upstreams)
	errs = append(errs, err)
	rt.Action = act
	if err := config.Join(errs...); err != nil {
		return nil, err
	}
	return &routeSpec{route: rt, hosts: hosts}, nil
}

func compileMatch(mc *MatchConfig) (matcher, []hostPattern, error) {
	var errs []error
	var m matcher

	var hosts []hostPattern
	seen := map[string]bool{}
	for i, h := range mc.Hosts {
		p, err := parseHostPattern(h)
		if err != nil {
			errs = append(errs, config.At("hosts", i, config.Errorf("", "%v", err)))
			continue
		}
		key := fmt.Sprint(p.kind, p.host)
		if seen[key] {
			errs = append(errs, config.At("hosts", i, config.Errorf("", "%q is listed twice", h)))
			continue
		}
		seen[key] = true
		hosts = append(hosts, p)
	}
	if len(hosts) == 0 {
		hosts = []hostPattern{{kind: hostAny}}
	}

	var pathFields []string
	if mc.Path != "" {
		pathFields = append(pathFields, "path")
		m.pathKind, m.path = pathExact, mc.Path
		if mc.Path != "*" && !strings.HasPrefix(mc.Path, "/") {
			errs = append(errs, config.Errorf("path", "%q must start with / (or be *)", mc.Path))
		}
	}
	if mc.PathPrefix != "" {
		pathFields = append(pathFields, "path_prefix")
		m.pathKind, m.path = pathPrefix, mc.PathPrefix
		if !strings.HasPrefix(mc.PathPrefix, "/") {
			errs = append(errs, config.Errorf("path_prefix", "%q must start with /", mc.PathPrefix))
		}
	}
	if mc.PathRegex != "" {
		pathFields = append(pathFields, "path_regex")
		m.pathKind, m.path = pathRegex, ""
		re, err := regexp.Compile(mc.PathRegex)
		if err != nil {
			errs = append(errs, config.Errorf("path_regex", "%v", err))
		}
		m.pathRE = re
	}
	if len(pathFields) > 1 {
		errs = append(errs, config.Errorf(pathFields[1], "cannot be combined with %s", pathFields[0]))
	}

	for i, method := range mc.Methods {
		if err := checkMethod(method); err != nil {
			errs = append(errs, config.At("methods", i, config.Errorf("", "%v", err)))
			continue
		}
		if slices.Contains(m.methods, method) {
			errs = append(errs, config.At("methods", i, config.Errorf("", "%q is listed twice", method)))
			continue
		}
		m.methods = append(m.methods, method)
	}

	for i := range mc.Headers {
		f, err := compileField(&mc.Headers[i], true)
		if err != nil {
			errs = append(errs, config.At("headers", i, err))
			continue
		}
		m.headers = append(m.headers, f)
	}
	for i := range mc.Query {
		f, err := compileField(&mc.Query[i], false)
		if err != nil {
			errs = append(errs, config.At("query", i, err))
			continue
		}
		m.query = append(m.query, f)
	}

	if strings.TrimSpace(mc.Expr) != "" {
		p, err := compileExpr(mc.Expr)
		if err != nil {
			errs = append(errs, config.Errorf("expr", "%v", err))
		}
		m.expr = p
	}
	return m, hosts, config.Join(errs...)
}

// parseHostPattern accepts "example.com", "*.example.com", "*", and IP
// literals ("10.0.0.1", "[::1]"), without a port.
func parseHostPattern(h string) (hostPattern, error) {
	if h == "*" {
		return hostPattern{kind: hostAny}, nil
	}
	orig := h
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if strings.HasPrefix(h, "[") {
		inner, ok := strings.CutSuffix(h[1:], "]")
		if ip, err := netip.ParseAddr(inner); !ok || err != nil || !ip.Is6() {
			return hostPattern{}, fmt.Errorf("%q is not a bracketed IPv6 address (ports are not matched; drop any :port)", orig)
		}
		return hostPattern{kind: hostExact, host: h}, nil
	}
	kind := hostExact
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		kind, name = hostWildcard, rest
	}
	if strings.Contains(name, ":") {
		return hostPattern{}, fmt.Errorf("%q has a port or is an unbracketed IPv6 address; ports are not matched", orig)
	}
	if err := checkDNSName(name); err != nil {
		return hostPattern{}, fmt.Errorf("%q: %v", orig, err)
	}
	if kind == hostWildcard {
		return hostPattern{kind: hostWildcard, host: "." + name}, nil
	}
	return hostPattern{kind: hostExact, host: name}, nil
}

func checkDNSName(name string) error {
	if name == "" || len(name) > 253 {
		return errors.New("is not a host name")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return errors.New("has an empty label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				if c == '*' {
					return errors.New("a wildcard is only allowed as the whole first label (*.example.com)")
				}
				return fmt.Errorf("has invalid character %q (write internationalised names in punycode)", c)
			}
		}
	}
	return nil
}

func checkMethod(m string) error {
	if err := checkToken(m); err != nil {
		return fmt.Errorf("method %q %v", m, err)
	}
	if strings.ToUpper(m) != m {
		return fmt.Errorf("method %q has lower-case letters; methods are case-sensitive (write %q)", m, strings.ToUpper(m))
	}
	return nil
}

// checkToken reports whether s is an RFC 9110 token (header names, methods).
func checkToken(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return fmt.Errorf("has invalid character %q", s[i])
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// checkHeaderValue rejects values that would corrupt a header block.
func checkHeaderValue(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("%q contains a control character", v)
		}
	}
	return nil
}

func compileField(fc *FieldMatchConfig, header bool) (fieldMatcher, error) {
	var errs []error
	f := fieldMatcher{name: fc.Name, kind: fieldPresent}
	if header {
		if err := checkToken(fc.Name); err != nil {
			errs = append(errs, config.Errorf("name", "header name %q %v", fc.Name, err))
		}
		f.name = textproto.CanonicalMIMEHeaderKey(fc.Name)
	} else if fc.Name == "" {
		errs = append(errs, config.Errorf("name", "is required"))
	}
	var set []string
	if fc.Value != nil {
		set = append(set, "value")
		f.kind, f.value = fieldExact, *fc.Value
	}
	if fc.Regex != "" {
		set = append(set, "regex")
		f.kind = fieldRegex
		re, err := regexp.Compile(fc.Regex)
		if err != nil {
			errs = append(errs, config.Errorf("regex", "%v", err))
		}
		f.re = re
	}
	if fc.Absent {
		set = append(set, "absent")
		f.kind = fieldAbsent
	}
	if len(set) > 1 {
		errs = append(errs, config.Errorf(set[1], "cannot be combined with %s", set[0]))
	}
	return f, config.Join(errs...)
}

// compileAction checks the terminal action, the rewrites and the header
// edits of a route; errors name RouteConfig fields.
func compileAction(rc *RouteConfig, upstreams map[string]int) (Action, error) {
	var errs []error
	var act Action
	var kinds []string
	if rc.Upstream != "" {
		kinds = append(kinds, "upstream")
		act.Kind = ActionProxy
		up, err := lookupUpstream(rc.Upstream, upstreams)
		if err != nil {
			errs = append(errs, config.Errorf("upstream", "%v", err))
		}
		act.Split = newSplit([]WeightedUpstream{{Upstream: up, Weight: 1}})
	}
	if rc.Split != nil {
		kinds = append(kinds, "split")
		act.Kind = ActionProxy
		s, err := compileSplit(rc.Split, upstreams)
		errs = append(errs, config.In("split", err))
		act.Split = s
	}
	if rc.Redirect != nil {
		kinds = append(kinds, "redirect")
		act.Kind = ActionRedirect
		r, err := compileRedirect(rc.Redirect)
		errs = append(errs, config.In("redirect", err))
		act.Redirect = r
	}
	if rc.Respond != nil {
		kinds = append(kinds, "respond")
		act.Kind = ActionRespond
		r, err := compileRespond(rc.Respond)
		errs = append(errs, config.In("respond", err))
		act.Respond = r
	}
	if rc.Static != nil {
		kinds = append(kinds, "static")
		act.Kind = ActionStatic
		sc := *rc.Static
		sc.SetDefaults()
		errs = append(errs, config.In("static", sc.Validate()))
		act.Static = &sc
	}
	if rc.Cache != nil {
		cc := *rc.Cache
		cc.SetDefaults()
		errs = append(errs, config.In("cache", cc.Validate()))
		act.Cache = &cc
	}
	switch {
	case len(kinds) == 0:
		errs = append(errs, config.Errorf("", "needs an action: one of upstream, split, redirect, respond, static"))
	case len(kinds) > 1:
		errs = append(errs, config.Errorf(kinds[1], "cannot be combined with %s (a route has one action)", kinds[0]))
	}
	proxy := act.Kind == ActionProxy || len(kinds) == 0
	if rc.Cache != nil && !proxy {
		errs = append(errs, config.Errorf("cache", "only applies to upstream and split routes"))
	}

	rw, err := compileRewrite(rc)
	errs = append(errs, err)
	act.Rewrite = rw
	if !proxy && rw.active {
		field := "strip_prefix"
		switch {
		case rc.RewritePrefix != nil:
			field = "rewrite_prefix"
		case rc.StripPrefix == "":
			field = "add_prefix"
		}
		errs = append(errs, config.Errorf(field, "only applies to upstream and split routes"))
	}

	ops, err := compileHeaderOps(&rc.RequestHeaders)
	errs = append(errs, config.In("request_headers", err))
	act.RequestHeaders = ops
	if !proxy && !ops.IsZero() {
		errs = append(errs, config.Errorf("request_headers", "only applies to upstream and split routes"))
	}
	ops, err = compileHeaderOps(&rc.ResponseHeaders)
	errs = append(errs, config.In("response_headers", err))
	act.ResponseHeaders = ops
	return act, config.Join(errs...)
}

func lookupUpstream(name string, upstreams map[string]int) (Upstream, error) {
	if upstreams == nil {
		return Upstream{Name: name, Index: -1}, nil
	}
	i, ok := upstreams[name]
	if !ok {
		known := make([]string, 0, len(upstreams))
		for n := range upstreams {
			known = append(known, n)
		}
		slices.Sort(known)
		return Upstream{}, fmt.Errorf("unknown upstream %q (known: %s)", name, strings.Join(known, ", "))
	}
	return Upstream{Name: name, Index: i}, nil
}

// maxWeight bounds split weights so sums cannot overflow.
const maxWeight = 1_000_000

func compileSplit(sc []SplitConfig, upstreams map[string]int) (Split, error) {
	if len(sc) == 0 {
		return Split{}, config.Errorf("", "is empty; list at least one {upstream, weight}")
	}
	var errs []error
	targets := make([]WeightedUpstream, 0, len(sc))
	total := 0
	seen := map[string]int{}
	for i, t := range sc {
		var terr []error
		if t.Upstream == "" {
			terr = append(terr, config.Errorf("upstream", "is required"))
		} else if prev, dup := seen[t.Upstream]; dup {
			terr = append(terr, config.Errorf("upstream", "%q is already listed at split[%d]", t.Upstream, prev))
		} else {
			seen[t.Upstream] = i
		}
		up, err := lookupUpstream(t.Upstream, upstreams)
		if err != nil && t.Upstream != "" {
			terr = append(terr, config.Errorf("upstream", "%v", err))
		}
		if t.Weight < 0 || t.Weight > maxWeight {
			terr = append(terr, config.Errorf("weight", "%d is outside 0..%d", t.Weight, maxWeight))
		} else {
			total += t.Weight
		}
		errs = append(errs, config.At("", i, config.Join(terr...)))
		targets = append(targets, WeightedUpstream{Upstream: up, Weight: t.Weight})
	}
	if total == 0 {
		errs = append(errs, config.Errorf("", "weights sum to 0; give at least one target a positive weight"))
	}
	return newSplit(targets), config.Join(errs...)
}

func compileRewrite(rc *RouteConfig) (PathRewrite, error) {
	var errs []error
	var rw PathRewrite
	if rc.StripPrefix != "" {
		rw.active, rw.from = true, rc.StripPrefix
		if !strings.HasPrefix(rc.StripPrefix, "/") {
			errs = append(errs, config.Errorf("strip_prefix", "%q must start with /", rc.StripPrefix))
		}
	}
	if rc.AddPrefix != "" {
		rw.active, rw.to = true, rc.AddPrefix
		if err := checkPathLiteral(rc.AddPrefix); err != nil {
			errs = append(errs, config.Errorf("add_prefix", "%v", err))
		}
	}
	if rp := rc.RewritePrefix; rp != nil {
		switch {
		case rc.StripPrefix != "":
			errs = append(errs, config.Errorf("rewrite_prefix", "cannot be combined with strip_prefix"))
		case rc.AddPrefix != "":
			errs = append(errs, config.Errorf("rewrite_prefix", "cannot be combined with add_prefix"))
		}
		rw = PathRewrite{active: true, from: rp.From, to: rp.To}
		if !strings.HasPrefix(rp.From, "/") {
			errs = append(errs, config.Errorf("rewrite_prefix.from", "%q must start with /", rp.From))
		}
		if rp.To != "" {
			if err := checkPathLiteral(rp.To); err != nil {
				errs = append(errs, config.Errorf("rewrite_prefix.to", "%v", err))
			}
		}
	}
	return rw, config.Join(errs...)
}

// checkPathLiteral checks a path fragment the router writes upstream.
func checkPathLiteral(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /", p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
			return fmt.Errorf("%q contains %q, which is not allowed in a path", p, c)
		}
	}
	return nil
}

// isManagedHeader reports whether header edits may not set or add the
// (canonical) name: the engine owns connection management and framing.
func isManagedHeader(canon string) bool {
	switch canon {
	case "Connection", "Content-Length", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

func compileHeaderOps(hc *HeaderOpsConfig) (HeaderOps, error) {
	var errs []error
	var ops HeaderOps
	for i, name := range hc.Remove {
		if err := checkToken(name); err != nil {
			errs = append(errs, config.At("remove", i, config.Errorf("", "header name %q %v", name, err)))
			continue
		}
		ops.Remove = append(ops.Remove, textproto.CanonicalMIMEHeaderKey(name))
	}
	fields := func(section string, m map[string]string) []HeaderField {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		var out []HeaderField
		for _, n := range names {
			path := config.Key(section, n)
			canon := textproto.CanonicalMIMEHeaderKey(n)
			if err := checkToken(n); err != nil {
				errs = append(errs, config.Errorf(path, "header name %q %v", n, err))
				continue
			}
			if isManagedHeader(canon) {
				errs = append(errs, config.Errorf(path, "%s is managed by the proxy and cannot be set", canon))
				continue
			}
			if err := checkHeaderValue(m[n]); err != nil {
				errs = append(errs, config.Errorf(path, "%v", err))
				continue
			}
			out = append(out, HeaderField{Name: canon, Value: m[n]})
		}
		return out
	}
	ops.Set = fields("set", hc.Set)
	ops.Add = fields("add", hc.Add)
	return ops, config.Join(errs...)
}
