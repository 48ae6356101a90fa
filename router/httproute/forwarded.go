package httproute

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tiergate/tiergate/internal/config"
)

// ErrInvalidForwardedFor is wrapped by ParseXFF for an element that is not
// an IP address.
var ErrInvalidForwardedFor = errors.New("invalid X-Forwarded-For element")

// TrustedProxies is the set of peer addresses whose X-Forwarded-For the
// edge believes (its own load balancers, a CDN). The zero value trusts no
// one: inbound X-Forwarded-For is discarded and replaced by the peer.
// It is immutable and safe for concurrent use.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies parses CIDRs ("10.0.0.0/8", "2001:db8::/32") and
// single addresses ("192.0.2.7"). Errors carry list paths ("[2]: ...") for
// the engine to prefix with its field name via config.In.
func ParseTrustedProxies(cidrs []string) (TrustedProxies, error) {
	var errs []error
	var t TrustedProxies
	for i, s := range cidrs {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			if err == nil {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			errs = append(errs, config.At("", i, config.Errorf("", "%q is not a CIDR or IP address", s)))
			continue
		}
		if p.Addr().Is4In6() {
			// ::ffff:10.0.0.0/104 is written for IPv4 peers; store it as IPv4.
			if p.Bits() < 96 {
				errs = append(errs, config.At("", i, config.Errorf("", "%q: an IPv4-mapped prefix needs at least 96 bits", s)))
				continue
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		t.prefixes = append(t.prefixes, p.Masked())
	}
	return t, config.Join(errs...)
}

// Contains reports whether ip (IPv4-mapped IPv6 counts as IPv4) is trusted.
func (t TrustedProxies) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ClientIP returns the address the request is attributed to. When the peer
// is not trusted that is the peer. Otherwise X-Forwarded-For is walked from
// the right, skipping trusted hops, and the first untrusted address is the
// client; if an element does not parse, the walk stops and the last address
// reached is used (nothing to its left can be believed); if every hop is
// trusted, the leftmost is used. xff holds the X-Forwarded-For field lines
// in the order received (fasthttp: req.Header.PeekAll).
func (t TrustedProxies) ClientIP(peer netip.Addr, xff [][]byte) netip.Addr {
	ip := peer.Unmap()
	if !t.Contains(ip) {
		return ip
	}
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for len(line) > 0 {
			var elem []byte
			if j := bytes.LastIndexByte(line, ','); j >= 0 {
				elem, line = line[j+1:], line[:j]
			} else {
				elem, line = line, nil
			}
			elem = trimOWS(elem)
			if len(elem) == 0 {
				continue
			}
			a, ok := parseXFFElem(elem)
			if !ok {
				return ip
			}
			ip = a
			if !t.Contains(a) {
				return a
			}
		}
	}
	return ip
}

// AppendXFF appends the X-Forwarded-For value to send upstream: when the
// peer is trusted, the inbound elements (all lines, in order, trimmed,
// empty elements and elements with whitespace or control bytes dropped)
// followed by the peer; otherwise the peer alone. The result is one field
// value: set it with Set, not Add, so the upstream sees a single line.
func (t TrustedProxies) AppendXFF(dst []byte, peer netip.Addr, xff [][]byte) []byte {
	peer = peer.Unmap()
	start := len(dst)
	if t.Contains(peer) {
		for _, line := range xff {
			for len(line) > 0 {
				var elem []byte
				if j := bytes.IndexByte(line, ','); j >= 0 {
					elem, line = line[:j], line[j+1:]
				} else {
					elem, line = line, nil
				}
				elem = trimOWS(elem)
				if len(elem) == 0 || !isVisible(elem) {
					continue
				}
				if len(dst) > start {
					dst = append(dst, ", "...)
				}
				dst = append(dst, elem...)
			}
		}
	}
	if !peer.IsValid() {
		return dst
	}
	if len(dst) > start {
		dst = append(dst, ", "...)
	}
	return peer.AppendTo(dst)
}

// ParseXFF appends the addresses of X-Forwarded-For field lines to dst,
// leftmost first. Elements may carry a port ("192.0.2.1:4711",
// "[2001:db8::1]:80"); empty elements are skipped. An element that is not
// an address stops the parse with an error wrapping ErrInvalidForwardedFor;
// the addresses before it are returned.
func ParseXFF(dst []netip.Addr, xff [][]byte) ([]netip.Addr, error) {
	for _, line := range xff {
		for len(line) > 0 {
			var elem []byte
			if j := bytes.IndexByte(line, ','); j >= 0 {
				elem, line = line[:j], line[j+1:]
			} else {
				elem, line = line, nil
			}
			elem = trimOWS(elem)
			if len(elem) == 0 {
				continue
			}
			a, ok := parseXFFElem(elem)
			if !ok {
				return dst, fmt.Errorf("%w: %q", ErrInvalidForwardedFor, elem)
			}
			dst = append(dst, a)
		}
	}
	return dst, nil
}

// parseXFFElem parses "ip", "ipv4:port" or "[ipv6]:port" without
// allocating, and unmaps IPv4-mapped addresses.
func parseXFFElem(b []byte) (netip.Addr, bool) {
	if len(b) > 0 && b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		if rest := b[end+1:]; len(rest) > 0 && (rest[0] != ':' || !isDigits(rest[1:])) {
			return netip.Addr{}, false
		}
		b = b[1:end]
	} else if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		if !isDigits(b[i+1:]) {
			return netip.Addr{}, false
		}
		b = b[:i]
	}
	if len(b) == 0 || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false // zones have no place in a forwarded chain
	}
	// The view is only parsed, never kept: ParseAddr copies what it needs.
	a, err := netip.ParseAddr(bytesView(b))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func isDigits(b []byte) bool {
	if len(b) == 0 || len(b) > 5 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isVisible reports whether b has only visible ASCII (no spaces, controls
// or non-ASCII), which every well-formed X-Forwarded-For element has.
func isVisible(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
