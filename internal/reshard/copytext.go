package reshard

import (
	"bytes"
	"fmt"
	"io"
)

// Text COPY is the fallback for tables whose binary form is not portable
// between servers: binary arrays and composites carry the type OIDs of
// their elements and members, and user-defined types have different OIDs
// on different servers. In the text format a row is one line, fields are
// separated by tabs, \N is NULL, and backslash escapes the rest.

// rowScanner parses a COPY TO STDOUT stream written to it in chunks.
type rowScanner interface {
	io.Writer
	// finish reports an error when the stream ended early.
	finish() error
	// rows is the number of rows seen.
	rows() int64
}

var (
	_ rowScanner = (*tupleScanner)(nil)
	_ rowScanner = (*lineScanner)(nil)
)

func (s *tupleScanner) rows() int64 { return s.tuples }

// newScanner returns a scanner for the text or binary format.
func newScanner(text bool, fn tupleFunc) rowScanner {
	if text {
		return &lineScanner{fn: fn}
	}
	return newTupleScanner(fn)
}

// copyFormat is the COPY option for the format.
func copyFormat(text bool) string {
	if text {
		return "(FORMAT text)"
	}
	return "(FORMAT binary)"
}

// lineScanner parses a text-format COPY stream: fn gets each row's line
// (with its newline) as raw and its unescaped fields.
type lineScanner struct {
	fn     tupleFunc
	buf    []byte
	fields [][]byte
	arena  []byte // unescaped field bytes of the current row
	n      int64
}

// Write implements io.Writer.
func (s *lineScanner) Write(p []byte) (int, error) {
	data := p
	if len(s.buf) > 0 {
		s.buf = append(s.buf, p...)
		data = s.buf
	}
	off := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		line := data[off : off+i+1 : off+i+1]
		if err := s.row(line); err != nil {
			return 0, err
		}
		off += i + 1
	}
	rest := data[off:]
	if len(s.buf) > 0 {
		s.buf = append(s.buf[:0], rest...)
	} else if len(rest) > 0 {
		s.buf = append(s.buf, rest...)
	}
	return len(p), nil
}

func (s *lineScanner) row(line []byte) error {
	body := line[:len(line)-1]
	s.fields = s.fields[:0]
	if s.arena == nil {
		s.arena = make([]byte, 0, 256) // non-nil: an empty field is not NULL
	}
	s.arena = s.arena[:0]
	// Unescape into the arena first, remembering offsets, since appending
	// may move it.
	type span struct{ start, end int }
	var spans [16]span
	sp := spans[:0]
	for {
		i := bytes.IndexByte(body, '\t')
		f := body
		if i >= 0 {
			f = body[:i]
		}
		if string(f) == `\N` {
			sp = append(sp, span{-1, -1})
		} else {
			start := len(s.arena)
			var err error
			if s.arena, err = unescapeCopy(s.arena, f); err != nil {
				return err
			}
			sp = append(sp, span{start, len(s.arena)})
		}
		if i < 0 {
			break
		}
		body = body[i+1:]
	}
	for _, x := range sp {
		if x.start < 0 {
			s.fields = append(s.fields, nil)
		} else {
			s.fields = append(s.fields, s.arena[x.start:x.end:x.end])
		}
	}
	s.n++
	return s.fn(line, s.fields)
}

func (s *lineScanner) finish() error {
	if len(s.buf) > 0 {
		return fmt.Errorf("%w: text COPY stream ended inside a row", ErrBackend)
	}
	return nil
}

func (s *lineScanner) rows() int64 { return s.n }

// unescapeCopy appends the text-format field f, unescaped, to dst.
func unescapeCopy(dst, f []byte) ([]byte, error) {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i == len(f) {
			return dst, fmt.Errorf("%w: text COPY field ends with a backslash", ErrBackend)
		}
		switch c = f[i]; c {
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
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexVal(f[i])
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(f[i]-'0')
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}
