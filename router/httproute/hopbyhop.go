package httproute

import "bytes"

// hopByHop is the fixed hop-by-hop set: RFC 9110 §7.6.1 (Connection,
// Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade), plus
// Trailer and the Proxy-Authenticate/Proxy-Authorization pair that
// httputil.ReverseProxy also strips. Canonical form.
var hopByHop = [...]string{
	"Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Proxy-Connection",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// connectionOptions are Connection tokens common enough that their header
// name is returned without allocating.
var connectionOptions = [...]string{"Close", "Http2-Settings"}

// neverStrip are headers a Connection token cannot remove: the proxy needs
// them to route and frame the message, and dropping them on a client's say
// would only cause confusion upstream.
var neverStrip = [...]string{"Host", "Content-Length"}

// HopByHopHeaders returns the fixed list of hop-by-hop header names
// (canonical form) a proxy removes from every message it forwards, in both
// directions. The result is a copy.
func HopByHopHeaders() [len(hopByHop)]string { return hopByHop }

// IsHopByHop reports whether name (any letter case) is in the fixed list.
func IsHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if bytes.EqualFold(name, []byte(h)) {
			return true
		}
	}
	return false
}

// AppendHeadersToStrip appends to dst every header name a proxy must remove
// before forwarding a message whose Connection field value is connection:
// the fixed hop-by-hop list, then each header named in connection. The
// value is a comma-separated list of case-insensitive tokens; optional
// whitespace and empty elements are ignored, invalid tokens are skipped,
// names already in dst (any case) are not repeated, and Host and
// Content-Length are never reported. Call it once per Connection field line
// (or with the lines joined by commas), before the proxy adds its own
// headers: a client must not be able to remove those.
//
// Well-known names are returned as constants; any other nominated header
// costs one small string allocation.
func AppendHeadersToStrip(dst []string, connection []byte) []string {
	if len(dst) == 0 {
		dst = append(dst, hopByHop[:]...)
	} else {
		for _, h := range hopByHop {
			if !containsFold(dst, []byte(h)) {
				dst = append(dst, h)
			}
		}
	}
	for len(connection) > 0 {
		var tok []byte
		if i := bytes.IndexByte(connection, ','); i >= 0 {
			tok, connection = connection[:i], connection[i+1:]
		} else {
			tok, connection = connection, nil
		}
		tok = trimOWS(tok)
		if len(tok) == 0 || !isToken(tok) || containsFold(neverStrip[:], tok) || containsFold(dst, tok) {
			continue
		}
		dst = append(dst, headerName(tok))
	}
	return dst
}

// headerName returns a constant for well-known names, else a copy of tok.
func headerName(tok []byte) string {
	for _, h := range connectionOptions {
		if bytes.EqualFold(tok, []byte(h)) {
			return h
		}
	}
	return string(tok)
}

func containsFold(list []string, name []byte) bool {
	for _, s := range list {
		if bytes.EqualFold(name, []byte(s)) {
			return true
		}
	}
	return false
}

// trimOWS removes optional whitespace (SP, HTAB) around b.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}
