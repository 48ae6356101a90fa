package httpcache

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// Key prefixes: the scheme is part of the key so that an http→https
// redirect cached for http is never served on https (a redirect loop).
const (
	schemeHTTP  = 'h'
	schemeHTTPS = 's'
)

// appendKey appends the cache key of req: one scheme byte, the host
// (lower-cased, port kept), the raw path and the raw query. The method is
// not part of the key: GET and HEAD share entries.
func appendKey(dst []byte, req *fasthttp.Request) []byte {
	u := req.URI()
	if bytes.Equal(u.Scheme(), []byte("https")) {
		dst = append(dst, schemeHTTPS)
	} else {
		dst = append(dst, schemeHTTP)
	}
	dst = appendLower(dst, u.Host())
	path := u.PathOriginal()
	if len(path) == 0 {
		dst = append(dst, '/')
	} else {
		dst = append(dst, path...)
	}
	if q := u.QueryString(); len(q) > 0 {
		dst = append(dst, '?')
		dst = append(dst, q...)
	}
	return dst
}

// keyURL is the key without its scheme byte: "host/path?query".
func keyURL(key string) string {
	if key == "" {
		return ""
	}
	return key[1:]
}

// purgeKeys turns a purge URL ("https://host/path?q", "http://…" or
// "host/path?q" for both schemes) into the keys it names.
func purgeKeys(rawURL string) []string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		u := normalizeURL(rawURL)
		return []string{string(schemeHTTP) + u, string(schemeHTTPS) + u}
	}
	u := normalizeURL(rest)
	switch strings.ToLower(scheme) {
	case "https":
		return []string{string(schemeHTTPS) + u}
	case "http":
		return []string{string(schemeHTTP) + u}
	}
	return nil
}

// purgePrefix splits a prefix like purgeKeys does: scheme byte (0 for
// both) and the "host/path" prefix to match.
func purgePrefix(prefix string) (scheme byte, rest string) {
	s, r, ok := strings.Cut(prefix, "://")
	if !ok {
		return 0, normalizeURL(prefix)
	}
	switch strings.ToLower(s) {
	case "https":
		return schemeHTTPS, normalizeURL(r)
	case "http":
		return schemeHTTP, normalizeURL(r)
	}
	return 0xff, "" // unknown scheme: matches nothing
}

// normalizeURL lower-cases the host part of "host/path?q" and gives a bare
// host its "/" path, as appendKey does.
func normalizeURL(u string) string {
	host, path, hasPath := strings.Cut(u, "/")
	host = strings.ToLower(host)
	if !hasPath {
		return host + "/"
	}
	return host + "/" + path
}

func appendLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// parseVary returns the request header names a response's Vary lists, in
// canonical form and without duplicates, and whether it contains "*".
func parseVary(lines [][]byte) (names []string, star bool) {
	for _, line := range lines {
		for part := range bytes.SplitSeq(line, []byte{','}) {
			part = bytes.TrimSpace(part)
			if len(part) == 0 {
				continue
			}
			if len(part) == 1 && part[0] == '*' {
				return nil, true
			}
			name := canonicalHeader(part)
			dup := false
			for _, n := range names {
				if n == name {
					dup = true
					break
				}
			}
			if !dup {
				names = append(names, name)
			}
		}
	}
	return names, false
}

// canonicalHeader returns the Canonical-Form of a header name.
func canonicalHeader(b []byte) string {
	out := make([]byte, len(b))
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		out[i] = c
		upper = c == '-'
	}
	return string(out)
}

// appendVaryValue appends the normalised value of request header name:
// every field line, split on commas, each element trimmed, joined with ","
// and, for headers whose values are case-insensitive, lower-cased. Two
// requests whose values normalise alike select the same variant (RFC 9111
// 4.1 allows such normalisation).
func appendVaryValue(dst []byte, req *fasthttp.RequestHeader, name string) []byte {
	fold := name == fasthttp.HeaderAcceptEncoding || name == fasthttp.HeaderAcceptLanguage
	first := true
	for _, line := range req.PeekAll(name) {
		for len(line) > 0 {
			var part []byte
			if i := bytes.IndexByte(line, ','); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, nil
			}
			part = bytes.TrimSpace(part)
			if len(part) == 0 {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			if fold {
				dst = appendLower(dst, part)
			} else {
				dst = append(dst, part...)
			}
		}
	}
	return dst
}
