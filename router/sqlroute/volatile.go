package sqlroute

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// What makes a statement volatile besides the functions it calls (see
// builtinFuncs): date/time literals that read the clock, statistics views,
// unrepeatable table samples.

// volatileRelations are system views whose rows change without any
// statement writing them: activity, locks, statistics counters, settings.
// They are matched unqualified or in pg_catalog, as are the pg_stat and
// pg_statio prefixes.
var volatileRelations = map[string]bool{
	"pg_stat_activity":             true,
	"pg_locks":                     true,
	"pg_settings":                  true,
	"pg_file_settings":             true,
	"pg_cursors":                   true,
	"pg_prepared_statements":       true,
	"pg_prepared_xacts":            true,
	"pg_replication_slots":         true,
	"pg_backend_memory_contexts":   true,
	"pg_shmem_allocations":         true,
	"pg_replication_origin_status": true,
	"pg_wait_events":               true,
}

// isVolatileRelation reports whether reading rv can give different rows
// over the same table data.
func isVolatileRelation(rv *pg_query.RangeVar) bool {
	if rv.Schemaname != "" && rv.Schemaname != "pg_catalog" {
		return false
	}
	n := rv.Relname
	return volatileRelations[n] || strings.HasPrefix(n, "pg_stat_") || strings.HasPrefix(n, "pg_statio_")
}

// maxTimeLiteral bounds the body of a string literal that isTimeLiteral
// looks at: the server rejects longer date/time input (MAXDATELEN).
const maxTimeLiteral = 128

// isTimeLiteral reports whether tok, a string literal token ('...',
// E'...', N'...', U&'...' or $tag$...$tag$), holds one of the special
// date/time inputs now, today, tomorrow and yesterday as a word (any case;
// 'now', ' Today ', 'tomorrow 08:00'), which the server replaces with the
// current date or time when it converts the literal to a date/time type.
// Ordinary text that happens to hold such a word ('buy now') matches too:
// the literal's type is not known here, and a false match only costs
// caching. E'...' escapes are decoded; U&'...' escapes and UESCAPE are not.
// Bit strings never match. It does not allocate.
func isTimeLiteral(tok string) bool {
	if len(tok) < len("'now'") {
		return false
	}
	var body string
	switch tok[0] {
	case '\'':
		body = tok[1 : len(tok)-1]
	case 'n', 'N':
		body = tok[2 : len(tok)-1]
	case 'u', 'U':
		body = tok[3 : len(tok)-1]
	case 'e', 'E':
		body = tok[2 : len(tok)-1]
		if len(body) <= maxTimeLiteral && strings.IndexByte(body, '\\') >= 0 {
			var buf [maxTimeLiteral]byte
			b, ok := appendUnescapeE(buf[:0], body)
			return ok && hasTimeWord(b)
		}
	case '$':
		n := strings.IndexByte(tok[1:], '$') + 2 // the opening $tag$
		body = tok[n : len(tok)-n]
	default: // B'...', X'...'
		return false
	}
	return len(body) <= maxTimeLiteral && hasTimeWord(body)
}

// hasTimeWord reports whether s has a run of ASCII letters that is now,
// today, tomorrow or yesterday, ignoring case.
func hasTimeWord[T string | []byte](s T) bool {
	for i := 0; i < len(s); {
		if !isASCIILetter(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && isASCIILetter(s[j]) {
			j++
		}
		if isTimeWord(s[i:j]) {
			return true
		}
		i = j
	}
	return false
}

func isTimeWord[T string | []byte](w T) bool {
	var kw string
	switch len(w) {
	case 3:
		kw = "now"
	case 5:
		kw = "today"
	case 8:
		kw = "tomorrow"
	case 9:
		kw = "yesterday"
	default:
		return false
	}
	for i := 0; i < len(kw); i++ {
		if w[i]|0x20 != kw[i] {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
