package sqlroute

import "strings"

// tokKind is the class of a lexical token.
type tokKind uint8

const (
	tokEOF         tokKind = iota
	tokIdent               // unquoted identifier or keyword
	tokQuotedIdent         // "..." or U&"..."
	tokString              // '...', E'...', B'...', X'...', N'...', U&'...', $tag$...$tag$
	tokNumber              // 42, 1.5e3, .5, 0x1F, 1_000
	tokParam               // $1
	tokOp                  // operator: + - * / < > = ~ ! @ # % ^ & | ` ? and runs of them
	tokPunct               // ( ) [ ] , ; . : :: := and any other single byte
	tokHint                // a /* tiergate: primary|replica|shard=N|shard_key=K|cache [ttl=D]|nocache */ comment
	tokBad                 // malformed: unterminated string, quoted identifier or comment (runs to the end), or number with trailing junk
)

// hint is the value of a routing hint comment.
type hint uint8

const (
	hintNone hint = iota
	hintPrimary
	hintReplica
	hintShard    // /* tiergate: shard=N */ (a shard number or name)
	hintShardKey // /* tiergate: shard_key=K */
	hintCache    // /* tiergate: cache */ or /* tiergate: cache ttl=D */
	hintNoCache  // /* tiergate: nocache */
)

// token is one lexical token: s[start:end] of the lexed text.
type token struct {
	kind       tokKind
	hint       hint // for tokHint
	start, end int
}

// lexer splits PostgreSQL SQL into tokens the way the server's scanner does,
// closely enough to find literal, identifier, comment and statement
// boundaries. It assumes standard_conforming_strings = on (the default since
// PostgreSQL 9.1): backslash escapes only in E” strings. It never fails:
// anything it does not recognise becomes a one-byte tokPunct, and an
// unterminated string, quoted identifier or comment becomes a tokBad that
// runs to the end of the text.
type lexer struct {
	s   string
	pos int
}

// next returns the next token, skipping whitespace and comments other than
// routing hints. At the end of the text it returns tokEOF.
func (l *lexer) next() token {
	s := l.s
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case charClass[c]&ccSpace != 0:
			l.pos++
		case charClass[c]&ccIdentStart != 0 && !(l.pos+1 < len(s) && (s[l.pos+1] == '\'' || s[l.pos+1] == '&')):
			// Fast path for the most common token.
			start := l.pos
			i := start + 1
			for i < len(s) && charClass[s[i]]&ccIdentCont != 0 {
				i++
			}
			l.pos = i
			return token{kind: tokIdent, start: start, end: i}
		case c == '-' && l.pos+1 < len(s) && s[l.pos+1] == '-':
			l.skipLineComment()
		case c == '/' && l.pos+1 < len(s) && s[l.pos+1] == '*':
			start := l.pos
			if !l.skipBlockComment() {
				return token{kind: tokBad, start: start, end: len(s)}
			}
			if h, _ := parseHint(s[start+2 : l.pos-2]); h != hintNone {
				return token{kind: tokHint, hint: h, start: start, end: l.pos}
			}
		default:
			return l.scan()
		}
	}
	return token{kind: tokEOF, start: len(s), end: len(s)}
}

func (l *lexer) skipLineComment() {
	i := strings.IndexAny(l.s[l.pos:], "\n\r")
	if i < 0 {
		l.pos = len(l.s)
		return
	}
	l.pos += i + 1
}

// skipBlockComment skips a /* ... */ comment starting at l.pos; comments
// nest. It reports false when the comment is not closed.
func (l *lexer) skipBlockComment() bool {
	s := l.s
	depth := 0
	i := l.pos
	for i+1 < len(s) {
		switch {
		case s[i] == '/' && s[i+1] == '*':
			depth++
			i += 2
		case s[i] == '*' && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				l.pos = i
				return true
			}
		default:
			i++
		}
	}
	l.pos = len(s)
	return false
}

// scan returns the token starting at l.pos, which is not whitespace or a
// comment.
func (l *lexer) scan() token {
	s := l.s
	start := l.pos
	c := s[start]
	var c1, c2 byte
	if start+1 < len(s) {
		c1 = s[start+1]
	}
	if start+2 < len(s) {
		c2 = s[start+2]
	}
	switch {
	case c == '\'':
		return l.quoted(start, start, '\'', false, tokString)
	case (c == 'e' || c == 'E') && c1 == '\'':
		return l.quoted(start, start+1, '\'', true, tokString)
	case (c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') && c1 == '\'':
		return l.quoted(start, start+1, '\'', false, tokString)
	case (c == 'u' || c == 'U') && c1 == '&' && c2 == '\'':
		return l.quoted(start, start+2, '\'', false, tokString)
	case (c == 'u' || c == 'U') && c1 == '&' && c2 == '"':
		return l.quoted(start, start+2, '"', false, tokQuotedIdent)
	case c == '"':
		return l.quoted(start, start, '"', false, tokQuotedIdent)
	case c == '$':
		return l.dollar(start)
	case isIdentStart(c):
		i := start + 1
		for i < len(s) && isIdentCont(s[i]) {
			i++
		}
		l.pos = i
		return token{kind: tokIdent, start: start, end: i}
	case isDigit(c) || (c == '.' && isDigit(c1)):
		return l.number(start)
	case isOpChar(c):
		i := start + 1
		for i < len(s) && isOpChar(s[i]) {
			// A comment start ends the operator, as in the server's scanner.
			if (s[i] == '-' && i+1 < len(s) && s[i+1] == '-') || (s[i] == '/' && i+1 < len(s) && s[i+1] == '*') {
				break
			}
			i++
		}
		l.pos = i
		return token{kind: tokOp, start: start, end: i}
	case c == ':' && (c1 == ':' || c1 == '='):
		l.pos = start + 2
		return token{kind: tokPunct, start: start, end: start + 2}
	}
	l.pos = start + 1
	return token{kind: tokPunct, start: start, end: start + 1}
}

// quoted scans a string or quoted identifier whose opening quote is at
// s[open]; start is where the token (including any prefix) begins. A doubled
// quote is an escaped quote; with backslash, so is \q (and \\ is a
// backslash).
func (l *lexer) quoted(start, open int, q byte, backslash bool, kind tokKind) token {
	s := l.s
	i := open + 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\' && backslash:
			i += 2
		case c == q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			l.pos = i + 1
			return token{kind: kind, start: start, end: i + 1}
		default:
			i++
		}
	}
	l.pos = len(s)
	return token{kind: tokBad, start: start, end: len(s)}
}

// dollar scans what starts with '$': a parameter ($1), a dollar-quoted string
// ($$...$$, $tag$...$tag$), or a lone '$'.
func (l *lexer) dollar(start int) token {
	s := l.s
	i := start + 1
	if i < len(s) && isDigit(s[i]) {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		l.pos = i
		return token{kind: tokParam, start: start, end: i}
	}
	if i < len(s) && isIdentStart(s[i]) {
		for i < len(s) && isTagCont(s[i]) {
			i++
		}
	}
	if i >= len(s) || s[i] != '$' {
		l.pos = start + 1
		return token{kind: tokPunct, start: start, end: start + 1}
	}
	delim := s[start : i+1]
	body := i + 1
	j := strings.Index(s[body:], delim)
	if j < 0 {
		l.pos = len(s)
		return token{kind: tokBad, start: start, end: len(s)}
	}
	l.pos = body + j + len(delim)
	return token{kind: tokString, start: start, end: l.pos}
}

// number scans a numeric literal. Trailing identifier characters, which the
// server rejects as "trailing junk", stay in the token, which is then a
// tokBad.
func (l *lexer) number(start int) token {
	s := l.s
	i := start
	if s[i] == '0' && i+1 < len(s) && strings.IndexByte("xXoObB", s[i+1]) >= 0 {
		i += 2
	} else {
		for i < len(s) && (isDigit(s[i]) || s[i] == '_') {
			i++
		}
		if i < len(s) && s[i] == '.' && !(i+1 < len(s) && s[i+1] == '.') {
			i++
			for i < len(s) && (isDigit(s[i]) || s[i] == '_') {
				i++
			}
		}
		if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
			j := i + 1
			if j < len(s) && (s[j] == '+' || s[j] == '-') {
				j++
			}
			if j < len(s) && isDigit(s[j]) {
				i = j
				for i < len(s) && (isDigit(s[i]) || s[i] == '_') {
					i++
				}
			}
		}
	}
	kind := tokNumber
	if start+2 <= i && s[start] == '0' && strings.IndexByte("xXoObB", s[start+1]) >= 0 {
		// 0x..., 0o..., 0b...: the digits are identifier characters.
		for i < len(s) && isIdentCont(s[i]) && s[i] != '$' {
			i++
		}
	} else if i < len(s) && isIdentCont(s[i]) && s[i] != '$' {
		// Trailing junk (123abc): an error since PostgreSQL 16.
		kind = tokBad
		for i < len(s) && isIdentCont(s[i]) && s[i] != '$' {
			i++
		}
	}
	l.pos = i
	return token{kind: kind, start: start, end: i}
}

// parseHint recognises the body of a /* tiergate: primary|replica */,
// /* tiergate: shard=N */, /* tiergate: shard_key=K */,
// /* tiergate: cache */, /* tiergate: cache ttl=D */ or
// /* tiergate: nocache */ comment (case-insensitive keywords, any spacing;
// a value may be 'quoted'), and returns the shard or key value or the TTL
// as written. Anything else, a malformed TTL included, is an ordinary
// comment.
func parseHint(body string) (hint, string) {
	body = trimSpace(body)
	const prefix = "tiergate"
	if !hasPrefixFold(body, prefix) {
		return hintNone, ""
	}
	body = trimSpace(body[len(prefix):])
	if body == "" || body[0] != ':' {
		return hintNone, ""
	}
	v := trimSpace(body[1:])
	switch {
	case strings.EqualFold(v, "primary"):
		return hintPrimary, ""
	case strings.EqualFold(v, "replica"):
		return hintReplica, ""
	case strings.EqualFold(v, "nocache"):
		return hintNoCache, ""
	case hasPrefixFold(v, "cache"):
		return parseCacheHint(v[len("cache"):])
	}
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return hintNone, ""
	}
	name, value = trimSpace(name), trimSpace(value)
	if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
		value = value[1 : len(value)-1]
	}
	if value == "" || strings.ContainsAny(value, "'") {
		return hintNone, ""
	}
	switch {
	case strings.EqualFold(name, "shard"):
		return hintShard, value
	case strings.EqualFold(name, "shard_key"):
		return hintShardKey, value
	}
	return hintNone, ""
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// Character classes, looked up in charClass.
const (
	ccSpace      = 1 << iota // whitespace
	ccIdentStart             // letters, '_', bytes >= 0x80
	ccIdentCont              // ccIdentStart, digits, '$'
	ccTagCont                // ccIdentStart, digits (dollar-quote tags)
	ccDigit
	ccOp // operator characters
)

var charClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\f\v") {
		t[c] |= ccSpace
	}
	for c := 0; c < 256; c++ {
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '_' || c >= 0x80 {
			t[c] |= ccIdentStart | ccIdentCont | ccTagCont
		}
		if '0' <= c && c <= '9' {
			t[c] |= ccDigit | ccIdentCont | ccTagCont
		}
	}
	t['$'] |= ccIdentCont
	for _, c := range []byte("+-*/<>=~!@#%^&|`?") {
		t[c] |= ccOp
	}
	return t
}()

func isSpace(c byte) bool      { return charClass[c]&ccSpace != 0 }
func isDigit(c byte) bool      { return charClass[c]&ccDigit != 0 }
func isIdentStart(c byte) bool { return charClass[c]&ccIdentStart != 0 }
func isIdentCont(c byte) bool  { return charClass[c]&ccIdentCont != 0 }
func isTagCont(c byte) bool    { return charClass[c]&ccTagCont != 0 }
func isOpChar(c byte) bool     { return charClass[c]&ccOp != 0 }
