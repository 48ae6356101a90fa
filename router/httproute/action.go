package httproute

import (
	"math/bits"

	"github.com/valyala/fasthttp"

	"github.com/tiergate/tiergate/internal/httpcache"
	"github.com/tiergate/tiergate/internal/static"
)

// ActionKind says what a route does with a matched request.
type ActionKind uint8

const (
	// ActionProxy forwards to an upstream picked by Action.Split, after
	// Action.Rewrite and Action.RequestHeaders.
	ActionProxy ActionKind = iota + 1
	// ActionRedirect answers with Action.Redirect.
	ActionRedirect
	// ActionRespond answers with Action.Respond.
	ActionRespond
	// ActionStatic serves files as Action.Static says.
	ActionStatic ActionKind = 16
)

// String returns the config name of the kind.
func (k ActionKind) String() string {
	switch k {
	case ActionProxy:
		return "proxy"
	case ActionRedirect:
		return "redirect"
	case ActionRespond:
		return "respond"
	case ActionStatic:
		return "static"
	}
	return "unknown"
}

// Action is what a matched route does. It is part of an immutable Table:
// read it, do not modify it. Fields that do not apply to Kind are zero.
type Action struct {
	Kind ActionKind
	// Split picks the upstream of an ActionProxy route (one target when the
	// route names a single upstream).
	Split Split
	// Rewrite maps the request path to the upstream path (ActionProxy).
	Rewrite PathRewrite
	// RequestHeaders edits the upstream request (ActionProxy).
	RequestHeaders HeaderOps
	// ResponseHeaders edits the client response (every kind).
	ResponseHeaders HeaderOps
	// Redirect describes the answer of an ActionRedirect route.
	Redirect Redirect
	// Respond describes the answer of an ActionRespond route.
	Respond Respond

	// Static configures an ActionStatic route (defaults applied, validated);
	// the engine builds the file handler.
	Static *static.Config
	// Cache, when set on an ActionProxy route, is its response cache
	// configuration (defaults applied, validated); the engine builds and
	// keeps the cache.
	Cache *httpcache.Config
}

// Upstream identifies a proxy target: its name, and its index in the
// upstream names given to Compile, so the engine can keep its upstreams in
// a slice in the same order and skip a map lookup per request.
type Upstream struct {
	Name  string
	Index int
}

// WeightedUpstream is one target of a Split.
type WeightedUpstream struct {
	Upstream
	Weight int
}

// Split picks an upstream in proportion to weights. The pick is a pure
// function of the random number the caller passes, so it is reproducible in
// tests; callers pass a uniformly distributed uint64 (e.g. rand.Uint64 from
// math/rand/v2, which is safe for concurrent use).
type Split struct {
	targets []WeightedUpstream
	cum     []uint64 // cum[i] = sum of weights[0..i]
}

func newSplit(targets []WeightedUpstream) Split {
	s := Split{targets: targets, cum: make([]uint64, len(targets))}
	var sum uint64
	for i, t := range targets {
		sum += uint64(t.Weight)
		s.cum[i] = sum
	}
	return s
}

// Pick returns the target whose share of [0, total weight) contains
// rnd scaled to that range: rnd*total/2^64, which is unbiased for uniform
// rnd. A zero-weight target is never picked. The zero Split returns the zero
// Upstream.
func (s *Split) Pick(rnd uint64) Upstream {
	n := len(s.cum)
	if n == 0 {
		return Upstream{}
	}
	if n == 1 {
		return s.targets[0].Upstream
	}
	x, _ := bits.Mul64(rnd, s.cum[n-1])
	for i, c := range s.cum {
		if x < c {
			return s.targets[i].Upstream
		}
	}
	return s.targets[n-1].Upstream
}

// Targets returns a copy of the split's targets, in config order.
func (s *Split) Targets() []WeightedUpstream {
	return append([]WeightedUpstream(nil), s.targets...)
}

// PathRewrite maps a request path to the upstream path by replacing a
// leading From with To. The zero value leaves paths unchanged.
type PathRewrite struct {
	from, to string
	active   bool
}

// IsZero reports whether the rewrite leaves every path unchanged.
func (p *PathRewrite) IsZero() bool { return !p.active }

// Append appends the rewritten path to dst. A path that does not start with
// From is appended unchanged. After replacement, a doubled slash at the
// junction of To and the rest is collapsed, the result always starts with
// "/", and an empty result becomes "/".
func (p *PathRewrite) Append(dst, path []byte) []byte {
	if !p.active || len(path) < len(p.from) || string(path[:len(p.from)]) != p.from {
		return append(dst, path...)
	}
	rest := path[len(p.from):]
	to := p.to
	if len(to) > 0 && to[len(to)-1] == '/' && len(rest) > 0 && rest[0] == '/' {
		rest = rest[1:]
	}
	var first byte
	switch {
	case len(to) > 0:
		first = to[0]
	case len(rest) > 0:
		first = rest[0]
	default:
		return append(dst, '/')
	}
	if first != '/' {
		dst = append(dst, '/')
	}
	dst = append(dst, to...)
	return append(dst, rest...)
}

// HeaderEditor is the part of a header set that HeaderOps changes.
// *fasthttp.RequestHeader and *fasthttp.ResponseHeader implement it.
type HeaderEditor interface {
	Set(key, value string)
	Add(key, value string)
	Del(key string)
}

var (
	_ HeaderEditor = (*fasthttp.RequestHeader)(nil)
	_ HeaderEditor = (*fasthttp.ResponseHeader)(nil)
)

// HeaderField is one name/value pair of a HeaderOps.
type HeaderField struct {
	Name, Value string
}

// HeaderOps is a compiled list of header edits: Remove, then Set, then Add,
// each in name order. Names are canonical ("X-Request-Id").
type HeaderOps struct {
	Remove []string
	Set    []HeaderField
	Add    []HeaderField
}

// IsZero reports whether there is nothing to do.
func (o *HeaderOps) IsZero() bool {
	return len(o.Remove) == 0 && len(o.Set) == 0 && len(o.Add) == 0
}

// Apply performs the edits on h.
func (o *HeaderOps) Apply(h HeaderEditor) {
	for _, name := range o.Remove {
		h.Del(name)
	}
	for _, f := range o.Set {
		h.Set(f.Name, f.Value)
	}
	for _, f := range o.Add {
		h.Add(f.Name, f.Value)
	}
}
