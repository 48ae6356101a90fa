package httpcache

import "time"

// maxDelta is the largest delta-seconds value honoured (RFC 9111 1.2.2:
// larger values are treated as 2^31).
const maxDelta = 1 << 31

// absent marks a delta-seconds directive that was not sent.
const absent = -1

// invalid marks a delta-seconds directive whose value did not parse; a
// response with invalid freshness information is treated as stale.
const invalid = -2

// respDirectives is what the cache needs from a response's Cache-Control.
// Delta fields hold seconds, absent or invalid. The first occurrence of a
// repeated directive wins (RFC 9111 4.2.1).
type respDirectives struct {
	maxAge, sMaxAge, swr, sie        int64
	noStore, noCache, private        bool
	public, mustRevalidate, proxyRev bool
}

// reqDirectives is what the cache needs from a request's Cache-Control.
type reqDirectives struct {
	noCache, noStore bool
	maxAgeZero       bool
}

func parseResponseDirectives(lines [][]byte) respDirectives {
	d := respDirectives{maxAge: absent, sMaxAge: absent, swr: absent, sie: absent}
	for _, line := range lines {
		s := dirScanner{s: line}
		for {
			name, val, ok := s.next()
			if !ok {
				break
			}
			switch {
			case tokenIs(name, "max-age"):
				setDelta(&d.maxAge, val)
			case tokenIs(name, "s-maxage"):
				setDelta(&d.sMaxAge, val)
			case tokenIs(name, "stale-while-revalidate"):
				setDelta(&d.swr, val)
			case tokenIs(name, "stale-if-error"):
				setDelta(&d.sie, val)
			case tokenIs(name, "no-store"):
				d.noStore = true
			case tokenIs(name, "no-cache"):
				// The qualified form (no-cache="Set-Cookie") is treated
				// like the plain one: revalidate before every use.
				d.noCache = true
			case tokenIs(name, "private"):
				// The qualified form is treated like the plain one: a
				// shared cache does not store the response at all.
				d.private = true
			case tokenIs(name, "public"):
				d.public = true
			case tokenIs(name, "must-revalidate"):
				d.mustRevalidate = true
			case tokenIs(name, "proxy-revalidate"):
				d.proxyRev = true
			}
		}
	}
	return d
}

func parseRequestDirectives(lines [][]byte) reqDirectives {
	var d reqDirectives
	for _, line := range lines {
		s := dirScanner{s: line}
		for {
			name, val, ok := s.next()
			if !ok {
				break
			}
			switch {
			case tokenIs(name, "no-cache"):
				d.noCache = true
			case tokenIs(name, "no-store"):
				d.noStore = true
			case tokenIs(name, "max-age"):
				v := int64(absent)
				setDelta(&v, val)
				if v == 0 {
					d.maxAgeZero = true
				}
			}
		}
	}
	return d
}

// setDelta stores the delta-seconds val into *dst unless a previous
// occurrence already did.
func setDelta(dst *int64, val []byte) {
	if *dst != absent {
		return
	}
	*dst = parseDelta(val)
}

// parseDelta parses delta-seconds (digits only), capped at 2^31; anything
// else is invalid.
func parseDelta(b []byte) int64 {
	if len(b) == 0 {
		return invalid
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return invalid
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta)
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// dirScanner walks the comma-separated directives of one Cache-Control
// line: token [ "=" ( token / quoted-string ) ]. Quoted values may contain
// commas; their quotes are removed (escapes are left as sent, which is
// enough for the numeric values the cache reads).
type dirScanner struct{ s []byte }

func (d *dirScanner) next() (name, value []byte, ok bool) {
	s := d.s
	for {
		// Skip separators and whitespace between directives.
		i := 0
		for i < len(s) && (s[i] == ',' || s[i] == ' ' || s[i] == '\t') {
			i++
		}
		s = s[i:]
		if len(s) == 0 {
			d.s = s
			return nil, nil, false
		}
		j := 0
		for j < len(s) && s[j] != ',' && s[j] != '=' && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		name = s[:j]
		s = s[j:]
		// Optional whitespace around "=" is tolerated.
		k := 0
		for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
			k++
		}
		if k < len(s) && s[k] == '=' {
			s = s[k+1:]
			for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
				s = s[1:]
			}
			if len(s) > 0 && s[0] == '"' {
				end := 1
				for end < len(s) && s[end] != '"' {
					if s[end] == '\\' && end+1 < len(s) {
						end++
					}
					end++
				}
				value = s[1:min(end, len(s))]
				s = s[min(end+1, len(s)):]
			} else {
				end := 0
				for end < len(s) && s[end] != ',' && s[end] != ' ' && s[end] != '\t' {
					end++
				}
				value = s[:end]
				s = s[end:]
			}
		} else {
			value = nil
		}
		// Skip anything up to the next comma (junk after a value).
		for len(s) > 0 && s[0] != ',' {
			s = s[1:]
		}
		if len(name) == 0 {
			continue
		}
		d.s = s
		return name, value, true
	}
}

// tokenIs compares an ASCII token case-insensitively with a lower-case name.
func tokenIs(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
