package sqlroute

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Literal runs. The digest turns every literal into a placeholder and
// collapses a comma-separated run of them ("1, 'a', 3") into one, so texts
// with the same digest have the same runs in the same order and differ only
// in the literals' values and in the runs' lengths. A statement's Shape
// refers to a literal by (run, element) in the text it was analysed from;
// lexing another text with the same digest finds the same run again.

// litTok is one literal of a text: sql[start:end], and the position of a
// '-' ending the operator just before it (-1 if there is none).
type litTok struct {
	start, end, minus int32
}

// litRuns are the literals of a text grouped into runs.
type litRuns struct {
	toks []litTok
	runs []int32 // index in toks of each run's first literal
}

func (l *litRuns) reset() {
	l.toks = l.toks[:0]
	l.runs = l.runs[:0]
}

// add records a literal; cont means it continues the current run.
func (l *litRuns) add(start, end, minus int, cont bool) {
	if !cont || len(l.runs) == 0 {
		l.runs = append(l.runs, int32(len(l.toks)))
	}
	l.toks = append(l.toks, litTok{start: int32(start), end: int32(end), minus: int32(minus)})
}

// run returns the literals of run i (nil when there is no such run).
func (l *litRuns) run(i int) []litTok {
	if i < 0 || i >= len(l.runs) {
		return nil
	}
	end := len(l.toks)
	if i+1 < len(l.runs) {
		end = int(l.runs[i+1])
	}
	return l.toks[l.runs[i]:end]
}

// scanLiterals lexes sql and fills lits with its literal runs.
func scanLiterals(sql string, lits *litRuns) {
	lits.reset()
	sc := scanResult{lits: lits}
	scanSQL(sql, &sc, nil)
}

// literalValue returns the value of literal t of sql in PostgreSQL's text
// form (what a text-format parameter would carry): a number as written
// (with its minus sign when neg), a string without quotes and escapes.
// It reports false for forms it does not decode (bit strings, U&'...').
// It allocates only to unescape.
func literalValue(sql string, t litTok, neg bool) (string, bool) {
	text := sql[t.start:t.end]
	if text == "" {
		return "", false
	}
	switch c := text[0]; {
	case isDigit(c) || c == '.':
		if neg {
			return "-" + text, true
		}
		return text, true
	case neg:
		return "", false
	case c == '\'':
		return unquoteSQL(text[1 : len(text)-1]), true
	case (c == 'n' || c == 'N') && len(text) > 1 && text[1] == '\'':
		return unquoteSQL(text[2 : len(text)-1]), true
	case (c == 'e' || c == 'E') && len(text) > 1 && text[1] == '\'':
		return unescapeE(text[2 : len(text)-1])
	case c == '$':
		i := strings.IndexByte(text[1:], '$')
		if i < 0 {
			return "", false
		}
		delim := len(text[:i+2])
		return text[delim : len(text)-delim], true
	}
	return "", false
}

// unquoteSQL undoubles the quotes of a standard string's body.
func unquoteSQL(body string) string {
	if strings.IndexByte(body, '\'') < 0 {
		return body
	}
	return strings.ReplaceAll(body, "''", "'")
}

// unescapeE decodes the body of an E'...' string.
func unescapeE(body string) (string, bool) {
	if strings.IndexByte(body, '\\') < 0 {
		return unquoteSQL(body), true
	}
	b, ok := appendUnescapeE(make([]byte, 0, len(body)), body)
	if !ok {
		return "", false
	}
	return string(b), true
}

// appendUnescapeE appends the decoded body of an E'...' string to dst. The
// decoded text is never longer than body.
func appendUnescapeE(dst []byte, body string) ([]byte, bool) {
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\'' && i+1 < len(body) && body[i+1] == '\'' {
			dst = append(dst, '\'')
			i++
			continue
		}
		if c != '\\' || i+1 >= len(body) {
			dst = append(dst, c)
			continue
		}
		i++
		switch c = body[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'x':
			j := i + 1
			for j < len(body) && j < i+3 && isHex(body[j]) {
				j++
			}
			if j == i+1 {
				dst = append(dst, 'x')
				continue
			}
			v, _ := strconv.ParseUint(body[i+1:j], 16, 8)
			dst = append(dst, byte(v))
			i = j - 1
		case 'u', 'U':
			n := 4
			if c == 'U' {
				n = 8
			}
			if i+1+n > len(body) {
				return dst, false
			}
			v, err := strconv.ParseUint(body[i+1:i+1+n], 16, 32)
			if err != nil || !utf8.ValidRune(rune(v)) {
				return dst, false
			}
			dst = utf8.AppendRune(dst, rune(v))
			i += n
		default:
			if '0' <= c && c <= '7' {
				j := i
				for j < len(body) && j < i+3 && '0' <= body[j] && body[j] <= '7' {
					j++
				}
				v, _ := strconv.ParseUint(body[i:j], 8, 16)
				dst = append(dst, byte(v))
				i = j - 1
				continue
			}
			dst = append(dst, c)
		}
	}
	return dst, true
}

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
