package httproute

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrAmbiguousFraming is wrapped by CheckFraming when the framing headers
// of a message could be read differently by two parsers (the root of
// request smuggling). A proxy rejects such a request (the engine answers
// 400) and treats such a response as an upstream failure (502).
var ErrAmbiguousFraming = errors.New("ambiguous message framing")

// Framing is how a message's body is delimited.
type Framing struct {
	// Chunked is set when Transfer-Encoding ends in chunked.
	Chunked bool
	// ContentLength is the declared length, or -1 when there is no
	// Content-Length (or the message is chunked).
	ContentLength int64
}

// CheckFraming reads the raw Content-Length and Transfer-Encoding field
// lines of a message (every line, in order; nil when absent) and returns its
// framing, or an error wrapping ErrAmbiguousFraming when:
//
//   - both Content-Length and Transfer-Encoding are present;
//   - a Content-Length element is not a plain decimal number (signs,
//     spaces inside, hex, empty elements, more than 18 digits);
//   - Content-Length elements (repeated lines, or a comma list) differ;
//   - Transfer-Encoding is empty, has a coding that is not a token (with
//     optional parameters), has chunked anywhere but last, or does not end
//     in chunked (e.g. "identity", "gzip", "chunked, gzip").
//
// Codings compare case-insensitively and optional whitespace around
// elements is ignored, as RFC 9110 §5.6.1 allows.
func CheckFraming(contentLength, transferEncoding [][]byte) (Framing, error) {
	hasCL := len(contentLength) > 0
	hasTE := len(transferEncoding) > 0
	if hasCL && hasTE {
		return Framing{ContentLength: -1}, fmt.Errorf("%w: both Content-Length and Transfer-Encoding are present", ErrAmbiguousFraming)
	}
	if hasTE {
		if err := checkTransferEncoding(transferEncoding); err != nil {
			return Framing{ContentLength: -1}, err
		}
		return Framing{Chunked: true, ContentLength: -1}, nil
	}
	if !hasCL {
		return Framing{ContentLength: -1}, nil
	}
	n := int64(-1)
	for _, line := range contentLength {
		for {
			elem := line
			i := bytes.IndexByte(line, ',')
			if i >= 0 {
				elem = line[:i]
			}
			v, ok := parseLength(trimOWS(elem))
			if !ok {
				return Framing{ContentLength: -1}, fmt.Errorf("%w: Content-Length %q is not a decimal length", ErrAmbiguousFraming, line)
			}
			if n >= 0 && v != n {
				return Framing{ContentLength: -1}, fmt.Errorf("%w: differing Content-Length values %d and %d", ErrAmbiguousFraming, n, v)
			}
			n = v
			if i < 0 {
				break
			}
			line = line[i+1:]
		}
	}
	return Framing{ContentLength: n}, nil
}

// parseLength parses 1*18DIGIT, which always fits an int64.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func checkTransferEncoding(lines [][]byte) error {
	var last []byte
	chunked := 0
	codings := 0
	for _, line := range lines {
		for len(line) > 0 {
			var elem []byte
			if i := bytes.IndexByte(line, ','); i >= 0 {
				elem, line = line[:i], line[i+1:]
			} else {
				elem, line = line, nil
			}
			elem = trimOWS(elem)
			if len(elem) == 0 {
				continue
			}
			coding := elem
			if i := bytes.IndexByte(elem, ';'); i >= 0 {
				coding = trimOWS(elem[:i])
				if !validParams(elem[i:]) {
					return fmt.Errorf("%w: Transfer-Encoding coding %q has malformed parameters", ErrAmbiguousFraming, elem)
				}
			}
			if !isToken(coding) {
				return fmt.Errorf("%w: Transfer-Encoding coding %q is not a token", ErrAmbiguousFraming, elem)
			}
			codings++
			if bytes.EqualFold(coding, []byte("chunked")) {
				if len(coding) != len(elem) {
					return fmt.Errorf("%w: chunked takes no parameters", ErrAmbiguousFraming)
				}
				chunked++
			}
			last = coding
		}
	}
	switch {
	case codings == 0:
		return fmt.Errorf("%w: empty Transfer-Encoding", ErrAmbiguousFraming)
	case !bytes.EqualFold(last, []byte("chunked")):
		return fmt.Errorf("%w: Transfer-Encoding does not end in chunked (final coding %q)", ErrAmbiguousFraming, last)
	case chunked > 1:
		return fmt.Errorf("%w: chunked is applied more than once", ErrAmbiguousFraming)
	}
	return nil
}

// validParams checks `*( OWS ";" OWS token "=" ( token / quoted-string ) )`,
// conservatively: quoted strings may not contain escapes or commas (a
// comma was already a list separator).
func validParams(b []byte) bool {
	for len(b) > 0 {
		b = trimOWS(b)
		if len(b) == 0 {
			return true
		}
		if b[0] != ';' {
			return false
		}
		b = trimOWS(b[1:])
		eq := bytes.IndexByte(b, '=')
		if eq <= 0 || !isToken(b[:eq]) {
			return false
		}
		b = b[eq+1:]
		end := bytes.IndexByte(b, ';')
		if end < 0 {
			end = len(b)
		}
		v := trimOWS(b[:end])
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			if !isVisible(v) || bytes.IndexByte(v[1:len(v)-1], '"') >= 0 || bytes.IndexByte(v, '\\') >= 0 {
				return false
			}
		} else if !isToken(v) {
			return false
		}
		b = b[end:]
	}
	return true
}
