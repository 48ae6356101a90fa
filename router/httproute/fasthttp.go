package httproute

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

var _ Request = (*FastHTTPRequest)(nil)

// FastHTTPRequest adapts a *fasthttp.Request to Request. Call Reset once per
// request before Match, and Match before changing the request's URI or Host:
// the adapter caches slices of them.
//
// Passing the adapter to Match makes it escape, so keep one per worker or in
// pooled per-request state rather than declaring a fresh one per request
// (a fresh one costs one allocation).
type FastHTTPRequest struct {
	req   *fasthttp.Request
	ip    netip.Addr
	host  []byte
	path  []byte
	query []byte
	slash [1]byte
}

// Reset points the adapter at req, with clientIP as the client address.
// The request target is split without parsing fasthttp's URI, so the path is
// the raw one from the request line even when the server normalises paths.
func (a *FastHTTPRequest) Reset(req *fasthttp.Request, clientIP netip.Addr) {
	a.req = req
	a.ip = clientIP
	a.host = req.Header.Host()
	target := req.Header.RequestURI()
	if authority, rest, ok := splitAbsoluteForm(target); ok {
		a.host = authority
		target = rest
	}
	if i := bytes.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	a.query = nil
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		a.query = target[i+1:]
		target = target[:i]
	}
	if len(target) == 0 {
		a.slash[0] = '/'
		target = a.slash[:]
	}
	a.path = target
}

// Method implements Request.
func (a *FastHTTPRequest) Method() []byte { return a.req.Header.Method() }

// Host implements Request.
func (a *FastHTTPRequest) Host() []byte { return a.host }

// Path implements Request.
func (a *FastHTTPRequest) Path() []byte { return a.path }

// Query implements Request.
func (a *FastHTTPRequest) Query() []byte { return a.query }

// Header implements Request with the first field line of that name. With
// the server's DisableHeaderNamesNormalizing set, lookups become exact-case.
func (a *FastHTTPRequest) Header(name string) ([]byte, bool) {
	vals := a.req.Header.PeekAll(name)
	if len(vals) == 0 {
		return nil, false
	}
	return vals[0], true
}

// Cookie implements Request.
func (a *FastHTTPRequest) Cookie(name string) []byte { return a.req.Header.Cookie(name) }

// ClientIP implements Request.
func (a *FastHTTPRequest) ClientIP() netip.Addr { return a.ip }

// splitAbsoluteForm splits "http://user@host:port/p?q" into its authority
// (without userinfo) and the rest ("/p?q"). ok is false for origin-form and
// asterisk-form targets.
func splitAbsoluteForm(target []byte) (authority, rest []byte, ok bool) {
	if len(target) == 0 || target[0] == '/' || target[0] == '*' {
		return nil, target, false
	}
	i := bytes.Index(target, []byte("://"))
	if i <= 0 || !isScheme(target[:i]) {
		return nil, target, false
	}
	rest = target[i+3:]
	end := bytes.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority = rest[:end]
	rest = rest[end:]
	if at := bytes.LastIndexByte(authority, '@'); at >= 0 {
		authority = authority[at+1:]
	}
	return authority, rest, true
}

func isScheme(b []byte) bool {
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
