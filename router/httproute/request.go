package httproute

import "net/netip"

// Request is the read-only view of an incoming request that matching needs.
// Implementations return slices into their own buffers, without copying;
// Match and the Action helpers read them during the call only and never
// retain them. Methods are called from the goroutine that calls Match and
// must not block. FastHTTPRequest adapts *fasthttp.Request.
type Request interface {
	// Method returns the request method as received, e.g. "GET".
	Method() []byte
	// Host returns the request host as received: the authority of an
	// absolute-form target, else the Host header. It may carry a port and
	// any letter case; it is empty when the request has none.
	Host() []byte
	// Path returns the raw path of the request target, without the query,
	// exactly as received (no percent-decoding, no dot-segment removal).
	Path() []byte
	// Query returns the raw query string without the leading '?', or nil.
	Query() []byte
	// Header returns the first value of the named header and whether the
	// header is present. Names are case-insensitive; the router passes them
	// in canonical form ("X-Canary").
	Header(name string) (value []byte, ok bool)
	// Cookie returns the value of the named request cookie, or nil.
	Cookie(name string) []byte
	// ClientIP returns the client address the engine attributes the request
	// to (the peer, or the forwarded client behind trusted proxies; see
	// TrustedProxies.ClientIP). The zero Addr means unknown.
	ClientIP() netip.Addr
}
