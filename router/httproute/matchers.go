package httproute

import (
	"bytes"
	"regexp"
)

// pathKind values are ordered by precedence: a higher kind is more specific.
type pathKind uint8

const (
	pathAny pathKind = iota
	pathRegex
	pathPrefix
	pathExact
)

// hostKind values are ordered by precedence, like pathKind.
type hostKind uint8

const (
	hostAny hostKind = iota
	hostWildcard
	hostExact
)

type fieldKind uint8

const (
	fieldPresent fieldKind = iota
	fieldAbsent
	fieldExact
	fieldRegex
)

// fieldMatcher is one compiled header or query condition.
type fieldMatcher struct {
	name  string // canonical header name, or raw query key
	kind  fieldKind
	value string
	re    *regexp.Regexp
}

func (f *fieldMatcher) match(v []byte, present bool) bool {
	switch f.kind {
	case fieldPresent:
		return present
	case fieldAbsent:
		return !present
	case fieldExact:
		return present && string(v) == f.value
	default:
		return present && f.re.Match(v)
	}
}

// matcher holds a route's conditions other than its hosts (a route with
// several hosts has one entry per host sharing one matcher).
type matcher struct {
	pathKind pathKind
	path     string // exact path or prefix
	pathRE   *regexp.Regexp
	methods  []string
	headers  []fieldMatcher
	query    []fieldMatcher
	expr     *exprProgram
}

// conditions counts the non-host, non-path conditions, for precedence.
func (m *matcher) conditions() int {
	n := len(m.headers) + len(m.query)
	if len(m.methods) > 0 {
		n++
	}
	if m.expr != nil {
		n++
	}
	return n
}

// matchStatic checks every condition except the host and the expression,
// cheapest first.
func (m *matcher) matchStatic(r Request) bool {
	if len(m.methods) > 0 {
		method := r.Method()
		found := false
		for _, want := range m.methods {
			if string(method) == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	switch m.pathKind {
	case pathExact:
		if string(r.Path()) != m.path {
			return false
		}
	case pathPrefix:
		p := r.Path()
		if len(p) < len(m.path) || string(p[:len(m.path)]) != m.path {
			return false
		}
	case pathRegex:
		if !m.pathRE.Match(r.Path()) {
			return false
		}
	}
	for i := range m.headers {
		f := &m.headers[i]
		v, ok := r.Header(f.name)
		if !f.match(v, ok) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := r.Query()
		for i := range m.query {
			f := &m.query[i]
			v, ok := queryValue(q, f.name)
			if !f.match(v, ok) {
				return false
			}
		}
	}
	return true
}

// queryValue returns the raw value of the first occurrence of key in the raw
// query q ("a=1&b" has a="1" and b=""), and whether the key occurs.
func queryValue(q []byte, key string) ([]byte, bool) {
	for len(q) > 0 {
		seg := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			seg, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		k, v := seg, seg[len(seg):]
		if i := bytes.IndexByte(seg, '='); i >= 0 {
			k, v = seg[:i], seg[i+1:]
		}
		if len(k) == 0 && len(v) == 0 {
			continue
		}
		if string(k) == key {
			return v, true
		}
	}
	return nil, false
}

// maxHostLen bounds the request hosts that can match an exact or wildcard
// host: a DNS name has at most 253 characters, plus brackets or a dot.
const maxHostLen = 256

// normalizeHost writes h lower-cased, without its port and one trailing
// dot, into buf and returns that slice. ok is false when h does not fit,
// in which case only routes for any host can match.
func normalizeHost(buf *[maxHostLen]byte, h []byte) (host []byte, ok bool) {
	h = stripPort(h)
	if n := len(h); n > 1 && h[n-1] == '.' {
		h = h[:n-1]
	}
	if len(h) > len(buf) {
		return nil, false
	}
	for i, c := range h {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(h)], true
}

// stripPort removes ":port" from "host:port" and "[v6]:port". A bare IPv6
// address (several colons, no brackets) is returned unchanged.
func stripPort(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h
}

// matchWildcard reports whether the normalised host ends with suffix
// (".example.com") and has at least one character before it.
func matchWildcard(host []byte, suffix string) bool {
	return len(host) > len(suffix) && string(host[len(host)-len(suffix):]) == suffix
}
