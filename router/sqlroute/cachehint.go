package sqlroute

import (
	"strings"
	"time"
)

// Cache hints are comments for the session layer's result cache:
//
//	/* tiergate: cache */           cache the result (the configured TTL)
//	/* tiergate: cache ttl=30s */   cache it for 30s (ttl = '30s' works too)
//	/* tiergate: nocache */         do not cache it
//
// Keywords ignore case and spacing; the TTL is a positive Go duration
// (time.ParseDuration). A malformed cache hint is an ordinary comment.
// A cache hint sits in its own comment, next to any routing hint:
// /* tiergate: replica */ /* tiergate: cache ttl=5s */ SELECT ...
// Classify reports the hints as FlagCacheHint and FlagNoCacheHint; their
// presence is part of the digest, the TTL is not (CacheHintTTL reads it).

// parseCacheHint parses what follows "tiergate: cache" in a hint comment:
// nothing, or "ttl = D" with D a positive Go duration, possibly 'quoted'.
// It returns the duration as written.
func parseCacheHint(rest string) (hint, string) {
	if rest == "" {
		return hintCache, ""
	}
	if !isSpace(rest[0]) {
		return hintNone, "" // "cachettl=1s", "cached"
	}
	rest = trimSpace(rest)
	if !hasPrefixFold(rest, "ttl") {
		return hintNone, ""
	}
	rest = trimSpace(rest[len("ttl"):])
	if rest == "" || rest[0] != '=' {
		return hintNone, ""
	}
	v := trimSpace(rest[1:])
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = v[1 : len(v)-1]
	}
	if d, err := time.ParseDuration(v); err != nil || d <= 0 {
		return hintNone, ""
	}
	return hintCache, v
}

// CacheHintTTL returns the TTL of the first /* tiergate: cache ttl=D */
// comment in sql (0 for /* tiergate: cache */ without a TTL) and whether
// sql has a cache hint at all. It lexes the text (a hint inside a string
// literal does not count) without parsing it, and does not allocate for a
// text without hints. Call it for statements whose Decision has
// FlagCacheHint: the TTL is not part of the digest, so the cached Decision
// cannot carry it.
func CacheHintTTL(sql string) (ttl time.Duration, ok bool) {
	if !strings.Contains(sql, "/*") {
		return 0, false
	}
	l := lexer{s: sql}
	for t := l.next(); t.kind != tokEOF; t = l.next() {
		if t.kind != tokHint || t.hint != hintCache {
			continue
		}
		_, v := parseHint(sql[t.start+2 : t.end-2])
		if v == "" {
			return 0, true
		}
		ttl, _ = time.ParseDuration(v) // parseHint checked it
		return ttl, true
	}
	return 0, false
}
