package querycache

import (
	"strings"
	"time"
)

// Query is what the policy needs to know about one read-only statement.
// The caller has already ruled out statements that are never cached
// (writes, volatile functions, session state, explicit transactions).
type Query struct {
	// Tables are the relations the statement reads, as the parser reports
	// them ("products", "shop.products", `"Mixed"`).
	Tables []string
	// Digest is the normalised-text digest of the statement.
	Digest uint64
	// UserFunction: it calls a function that is not a known built-in (which
	// may read tables the statement does not name).
	UserFunction bool
	// Hint: a /* tiergate: cache [ttl=D] */ comment; HintTTL is D (0: none).
	Hint    bool
	HintTTL time.Duration
	// NoCache: a /* tiergate: nocache */ comment.
	NoCache bool
}

// Policy decides, for one database, which queries are cached and for how
// long. It is immutable.
type Policy struct {
	anySchema  map[string]bool // "products": any schema
	qualified  map[string]bool // "shop.products"
	digests    map[uint64]bool
	ruleTTL    time.Duration
	defaultTTL time.Duration
	maxTTL     time.Duration
	hints      bool
}

// NewPolicy compiles a database's rules (validated) under cfg (defaulted).
// r may be nil: only hints apply then.
func NewPolicy(r *Rules, cfg Config) *Policy {
	p := &Policy{anySchema: map[string]bool{}, qualified: map[string]bool{}, digests: map[uint64]bool{},
		defaultTTL: cfg.DefaultTTL, maxTTL: cfg.MaxTTL, hints: cfg.HintsOn(), ruleTTL: cfg.DefaultTTL}
	if r == nil {
		return p
	}
	if r.TTL > 0 {
		p.ruleTTL = r.TTL
	}
	for _, t := range r.Tables {
		schema, name, ok := splitRuleTable(t)
		switch {
		case !ok:
		case schema == "":
			p.anySchema[name] = true
		default:
			p.qualified[qualify(schema, name)] = true
		}
	}
	for _, d := range r.Digests {
		if v, err := parseDigest(d); err == nil {
			p.digests[v] = true
		}
	}
	return p
}

// HasRules reports whether the policy caches anything without a hint.
func (p *Policy) HasRules() bool {
	return len(p.anySchema) > 0 || len(p.qualified) > 0 || len(p.digests) > 0
}

// TTL reports whether q is cached and for how long.
func (p *Policy) TTL(q Query) (time.Duration, bool) {
	switch {
	case q.NoCache:
		return 0, false
	case q.Hint && p.hints:
		ttl := q.HintTTL
		if ttl <= 0 {
			ttl = p.defaultTTL
		}
		return min(ttl, p.maxTTL), true
	case p.digests[q.Digest]:
		return min(p.ruleTTL, p.maxTTL), true
	case q.UserFunction || len(q.Tables) == 0:
		return 0, false
	}
	for _, t := range q.Tables {
		if !p.matches(t) {
			return 0, false
		}
	}
	return min(p.ruleTTL, p.maxTTL), true
}

func (p *Policy) matches(table string) bool {
	schema, name := splitTable(table)
	if p.anySchema[name] {
		return true
	}
	return schema != "" && p.qualified[qualify(schema, name)]
}

// qualify joins a schema and a name into a map key. Identifiers may hold
// dots but never NUL, so "a.b".c and a."b.c" stay apart.
func qualify(schema, name string) string { return schema + "\x00" + name }

// splitRuleTable parses a configured table ("products", "shop.products",
// `"Mixed"."Name.With.Dots"`): it splits at the unquoted dot and folds each
// part like PostgreSQL (unquoted: lower case; quoted: as written). It
// reports false for an empty part, more than one unquoted dot or an
// unterminated quote.
func splitRuleTable(t string) (schema, name string, ok bool) {
	dot, dots, inQuote := scanDots(t)
	if inQuote || dots > 1 {
		return "", "", false
	}
	if dot >= 0 {
		schema = normalizeIdent(t[:dot])
		if schema == "" {
			return "", "", false
		}
		t = t[dot+1:]
	}
	name = normalizeIdent(t)
	if name == "" {
		return "", "", false
	}
	return schema, name, true
}

// TableKey is the name invalidations and generations use for a table: its
// unqualified name without quotes. Tables of the same name in different
// schemas share it (a write to one invalidates reads of both: safe).
func TableKey(table string) string {
	_, name := splitTable(table)
	return name
}

// splitTable splits a parser-reported name at its last unquoted dot and
// removes the quotes of each part.
func splitTable(t string) (schema, name string) {
	dot, _, _ := scanDots(t)
	if dot < 0 {
		return "", unquote(t)
	}
	return unquote(t[:dot]), unquote(t[dot+1:])
}

// scanDots finds the last dot outside double quotes in t (-1: none), counts
// such dots, and reports whether a quote is left open.
func scanDots(t string) (last, count int, openQuote bool) {
	last = -1
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '"':
			openQuote = !openQuote
		case '.':
			if !openQuote {
				last = i
				count++
			}
		}
	}
	return last, count, openQuote
}

// normalizeIdent folds a configured name like PostgreSQL folds an
// unquoted identifier; a quoted one keeps its case.
func normalizeIdent(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return unquote(s)
	}
	return strings.ToLower(s)
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		if strings.Contains(s, `""`) {
			s = strings.ReplaceAll(s, `""`, `"`)
		}
	}
	return s
}
