package sqlroute

import (
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Normalised text, which the digest hashes:
//
//   - tokens are separated by one space; whitespace and comments vanish;
//   - unquoted identifiers and keywords are lower-cased (ASCII only, as the
//     server folds them); quoted identifiers, operators, punctuation and
//     parameters ($1) are kept as written;
//   - every string, dollar-quoted string and numeric literal becomes the
//     placeholder "$?", and a comma-separated run of placeholders collapses
//     into one, so IN (1, 2, 3) and IN (4) share a shape;
//   - a routing hint comment becomes "/*tiergate:primary*/" or
//     "/*tiergate:replica*/", a shard hint "/*tiergate:shard*/" or
//     "/*tiergate:shard_key*/" (its value is not part of the digest), a
//     cache hint "/*tiergate:cache*/" (with or without a TTL, which is not
//     part of the digest) or "/*tiergate:nocache*/";
//   - empty statements (stray semicolons) are dropped, as is a trailing ";";
//   - an unterminated string, quoted identifier or comment, or a number
//     with trailing junk (123abc), becomes "$!".
const (
	placeholder     = "$?"
	badToken        = "$!"
	hintPrimaryTok  = "/*tiergate:primary*/"
	hintReplicaTok  = "/*tiergate:replica*/"
	hintShardTok    = "/*tiergate:shard*/"
	hintShardKeyTok = "/*tiergate:shard_key*/"
	hintCacheTok    = "/*tiergate:cache*/"
	hintNoCacheTok  = "/*tiergate:nocache*/"
)

// Digest returns the 64-bit xxhash of the normalised text of sql. Statements
// that differ only in literal values, whitespace, comments other than hints,
// keyword case, or the length of literal lists have the same digest; any
// other difference changes it. It never allocates.
func Digest(sql string) uint64 {
	var sc scanResult
	scanSQL(sql, &sc, nil)
	return sc.digest
}

// Normalize returns the normalised text that Digest hashes, for logs, admin
// views and debugging: Digest(s) == xxhash.Sum64String(Normalize(s)).
func Normalize(sql string) string {
	var sc scanResult
	var b strings.Builder
	b.Grow(len(sql))
	scanSQL(sql, &sc, &b)
	return b.String()
}

// scanResult is what one pass of the lexer learns about a text.
type scanResult struct {
	digest uint64
	// hint is the routing hint, hintNone if there is none. Conflicting
	// hints resolve to hintPrimary.
	hint hint
	// statements counts the non-empty statements, split at top-level ';'.
	statements int
	// proxySetting is set when some statement starts with SET/RESET/SHOW
	// followed by tiergate.<name>.
	proxySetting bool
	// bad is set when the text has an unterminated string, quoted
	// identifier or comment.
	bad bool
	// shardHint is hintShard or hintShardKey when a shard hint comment is
	// present (the last one wins), shardHintVal its value as written.
	shardHint    hint
	shardHintVal string
	// cacheHint and noCacheHint: a /* tiergate: cache [ttl=D] */ or
	// /* tiergate: nocache */ comment is present.
	cacheHint, noCacheHint bool
	// timeLiteral: a string literal is 'now', 'today', 'tomorrow' or
	// 'yesterday' (see isTimeLiteral). Literal values are not part of the
	// digest, so this is the one fact of a Decision (FlagVolatile) that
	// Classify adds to the cached one.
	timeLiteral bool
	// lits, when set by the caller, receives the literal runs of the text.
	lits *litRuns
}

// normalizer feeds normalised tokens to an xxhash digest through a small
// buffer on the stack, or to a strings.Builder for Normalize.
type normalizer struct {
	d     xxhash.Digest
	out   *strings.Builder
	buf   [512]byte
	n     int
	wrote bool // a token has been written (so the next needs a space)

	lastPlaceholder bool // the last written token is a placeholder
	pendingComma    bool // a ',' after a placeholder, not yet written
	pendingSemi     bool // a ';' ending a non-empty statement, not yet written
}

func (z *normalizer) flush() {
	if z.out != nil {
		z.out.Write(z.buf[:z.n])
	} else {
		_, _ = z.d.Write(z.buf[:z.n])
	}
	z.n = 0
}

func (z *normalizer) writeByte(c byte) {
	if z.n == len(z.buf) {
		z.flush()
	}
	z.buf[z.n] = c
	z.n++
}

func (z *normalizer) writeString(s string) {
	for len(s) > 0 {
		if z.n == len(z.buf) {
			z.flush()
		}
		k := copy(z.buf[z.n:], s)
		z.n += k
		s = s[k:]
	}
}

// writeLower writes s with ASCII letters lower-cased.
func (z *normalizer) writeLower(s string) {
	for len(s) > 0 {
		if z.n == len(z.buf) {
			z.flush()
		}
		dst := z.buf[z.n:]
		k := min(len(dst), len(s))
		dst, src := dst[:k], s[:k]
		for i := range dst {
			dst[i] = lowerASCII[src[i]]
		}
		z.n += k
		s = s[k:]
	}
}

// lowerASCII maps ASCII upper-case letters to lower case, other bytes to
// themselves.
var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()

// begin writes what is pending before a token, and the separating space.
func (z *normalizer) begin() {
	if z.pendingComma || z.pendingSemi {
		z.beginPending()
		return
	}
	if z.wrote {
		if z.n == len(z.buf) {
			z.flush()
		}
		z.buf[z.n] = ' '
		z.n++
	}
	z.wrote = true
	z.lastPlaceholder = false
}

func (z *normalizer) beginPending() {
	if z.pendingComma {
		z.pendingComma = false
		z.sep()
		z.writeByte(',')
	}
	if z.pendingSemi {
		z.pendingSemi = false
		z.sep()
		z.writeByte(';')
	}
	z.sep()
	z.lastPlaceholder = false
}

func (z *normalizer) sep() {
	if z.wrote {
		z.writeByte(' ')
	}
	z.wrote = true
}

// placeholder writes "$?" unless it continues a "$?, $?" run.
func (z *normalizer) placeholder() {
	if z.lastPlaceholder && z.pendingComma {
		z.pendingComma = false
		return
	}
	z.begin()
	z.writeString(placeholder)
	z.lastPlaceholder = true
}

// comma holds back a ',' that follows a placeholder, so that a following
// placeholder can swallow it.
func (z *normalizer) comma() {
	if z.lastPlaceholder && !z.pendingComma {
		z.pendingComma = true
		return
	}
	z.begin()
	z.writeByte(',')
}

// semicolon holds back a ';' so that empty and trailing statements vanish.
func (z *normalizer) semicolon() {
	if z.pendingComma {
		z.pendingComma = false
		z.sep()
		z.writeByte(',')
		z.lastPlaceholder = false
	}
	if z.wrote {
		z.pendingSemi = true
	}
}

// stmtState tracks the first tokens of a statement to spot SET/RESET/SHOW
// tiergate.<name>, and the parenthesis depth to find top-level ';'.
type stmtState struct {
	tokens int  // tokens so far in this statement (hints excluded)
	depth  int  // parenthesis depth
	verb   bool // the statement starts with SET, RESET or SHOW
	isSet  bool // ... with SET
	tgAt   int  // token index where "tiergate" is expected
	sawTG  bool // "tiergate" seen at tgAt
}

// scanSQL lexes sql once, filling sc and writing the normalised text to out
// (or, when out is nil, hashing it into sc.digest).
func scanSQL(sql string, sc *scanResult, out *strings.Builder) {
	z := normalizer{out: out}
	z.d.Reset()
	l := lexer{s: sql}
	var st stmtState
	minusAt := -1 // position of a '-' ending the previous token, if it was an operator
	for {
		// Inline fast path for the commonest case, an identifier or
		// keyword after optional whitespace; l.next handles the rest.
		var t token
		pos := l.pos
		for pos < len(sql) && charClass[sql[pos]]&ccSpace != 0 {
			pos++
		}
		if pos+1 < len(sql) && charClass[sql[pos]]&ccIdentStart != 0 && sql[pos+1] != '\'' && sql[pos+1] != '&' {
			start := pos
			pos++
			for pos < len(sql) && charClass[sql[pos]]&ccIdentCont != 0 {
				pos++
			}
			l.pos = pos
			t = token{kind: tokIdent, start: start, end: pos}
		} else {
			l.pos = pos
			t = l.next()
			if t.kind == tokEOF {
				break
			}
		}
		text := sql[t.start:t.end]
		minus := minusAt
		minusAt = -1
		switch t.kind {
		case tokHint:
			z.begin()
			switch t.hint {
			case hintShard, hintShardKey:
				if t.hint == hintShard {
					z.writeString(hintShardTok)
				} else {
					z.writeString(hintShardKeyTok)
				}
				sc.shardHint, sc.shardHintVal = parseHint(text[2 : len(text)-2])
				continue
			case hintCache:
				z.writeString(hintCacheTok)
				sc.cacheHint = true
				continue
			case hintNoCache:
				z.writeString(hintNoCacheTok)
				sc.noCacheHint = true
				continue
			case hintPrimary:
				z.writeString(hintPrimaryTok)
			default:
				z.writeString(hintReplicaTok)
			}
			switch {
			case sc.hint == hintNone:
				sc.hint = t.hint
			case sc.hint != t.hint:
				sc.hint = hintPrimary
			}
			continue
		case tokIdent:
			z.begin()
			z.writeLower(text)
		case tokString, tokNumber:
			if t.kind == tokString && !sc.timeLiteral && isTimeLiteral(text) {
				sc.timeLiteral = true
			}
			if sc.lits != nil {
				sc.lits.add(t.start, t.end, minus, z.lastPlaceholder && z.pendingComma)
			}
			z.placeholder()
		case tokBad:
			z.begin()
			z.writeString(badToken)
			sc.bad = true
		case tokPunct:
			switch text {
			case ",":
				z.comma()
			case ";":
				if st.depth == 0 {
					z.semicolon()
					if st.tokens > 0 {
						sc.statements++
					}
					st = stmtState{}
					continue
				}
				z.begin()
				z.writeByte(';')
			default:
				switch text {
				case "(":
					st.depth++
				case ")":
					if st.depth > 0 {
						st.depth--
					}
				}
				z.begin()
				z.writeString(text)
			}
		case tokOp:
			z.begin()
			z.writeString(text)
			if text[len(text)-1] == '-' {
				minusAt = t.end - 1
			}
		default: // tokQuotedIdent, tokParam
			z.begin()
			z.writeString(text)
		}
		if st.tokens < 4 {
			st.observe(t.kind, text, sc)
		} else {
			st.tokens++
		}
	}
	if st.tokens > 0 {
		sc.statements++
	}
	if z.pendingComma {
		z.sep()
		z.writeByte(',')
	}
	z.flush()
	if out == nil {
		sc.digest = z.d.Sum64()
	}
}

// observe advances the SET/RESET/SHOW tiergate.<name> detector by one token.
func (st *stmtState) observe(kind tokKind, text string, sc *scanResult) {
	i := st.tokens
	st.tokens++
	switch {
	case i == 0:
		if kind == tokIdent {
			st.isSet = strings.EqualFold(text, "set")
			st.verb = st.isSet || strings.EqualFold(text, "reset") || strings.EqualFold(text, "show")
			st.tgAt = 1
		}
	case !st.verb:
	case i == 1 && st.isSet && kind == tokIdent && (strings.EqualFold(text, "session") || strings.EqualFold(text, "local")):
		st.tgAt = 2
	case i == st.tgAt:
		st.sawTG = (kind == tokIdent && strings.EqualFold(text, "tiergate")) || (kind == tokQuotedIdent && text == `"tiergate"`)
	case i == st.tgAt+1 && st.sawTG && text == ".":
		sc.proxySetting = true
	}
}

// chainLength returns the largest number, in one statement of sql, of
// tokens that can build a left-deep parse tree without nesting the parser's
// own stack: operators, ::, [, and the keywords in isChainKeyword. See
// maxChainTokens. It runs only before parsing, off the cached path.
func chainLength(sql string) int {
	longest, n, depth := 0, 0, 0
	l := lexer{s: sql}
	for t := l.next(); t.kind != tokEOF; t = l.next() {
		text := sql[t.start:t.end]
		switch t.kind {
		case tokOp:
			n++
		case tokIdent:
			if isChainKeyword(text) {
				n++
			}
		case tokPunct:
			switch text {
			case "::", "[":
				n++
			case "(":
				depth++
			case ")":
				depth = max(depth-1, 0)
			case ";":
				if depth == 0 {
					longest, n = max(longest, n), 0
				}
			}
		}
	}
	return max(longest, n)
}

// isChainKeyword reports whether an unquoted word is a keyword that can
// extend a left-deep chain in the grammar (IS NULL, LIKE, JOIN, UNION, ...).
func isChainKeyword(w string) bool {
	switch len(w) {
	case 2:
		return eqLower(w, "is") || eqLower(w, "in") || eqLower(w, "at")
	case 4:
		return eqLower(w, "like") || eqLower(w, "join")
	case 5:
		return eqLower(w, "ilike") || eqLower(w, "union")
	case 6:
		return eqLower(w, "isnull") || eqLower(w, "except")
	case 7:
		return eqLower(w, "notnull") || eqLower(w, "similar") || eqLower(w, "between") || eqLower(w, "collate")
	case 8:
		return eqLower(w, "overlaps")
	case 9:
		return eqLower(w, "intersect")
	}
	return false
}

// eqLower compares an identifier with a lower-case keyword of the same
// length, ignoring ASCII case. OR-ing 0x20 lower-cases letters and maps no
// other identifier byte (digit, '_', '$', >= 0x80) onto a lower-case letter.
func eqLower(w, kw string) bool {
	for i := 0; i < len(kw); i++ {
		if w[i]|0x20 != kw[i] {
			return false
		}
	}
	return true
}
