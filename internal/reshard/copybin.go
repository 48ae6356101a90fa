package reshard

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The PostgreSQL binary COPY format: a 19-byte header (signature, flags,
// extension length, extension), then per tuple an int16 field count and per
// field an int32 length (-1 for NULL) and the value, then an int16 -1.

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

const (
	copyHeaderLen = 11 + 4 + 4
	// maxField caps one field (PostgreSQL's own limit is 1GB).
	maxField = 1 << 30
)

// copyHeader is the header the resharder writes: no OIDs, no extension.
var copyHeader = append(append([]byte{}, copySignature...), 0, 0, 0, 0, 0, 0, 0, 0)

// copyTrailer ends a binary COPY stream.
var copyTrailer = []byte{0xff, 0xff}

// tupleFunc receives one tuple: raw is the tuple's encoding (field count
// and fields), ready to append to another binary COPY stream; fields[i] is
// nil for NULL. Both are valid only during the call.
type tupleFunc func(raw []byte, fields [][]byte) error

// tupleScanner is an io.Writer that parses a binary COPY stream written to
// it in chunks of any size (pgconn.CopyTo writes one CopyData payload per
// call) and calls fn for every tuple.
type tupleScanner struct {
	fn      tupleFunc
	buf     []byte
	header  bool // header parsed
	done    bool // trailer seen
	fields  [][]byte
	tuples  int64
	scanned int64 // bytes of tuples
}

func newTupleScanner(fn tupleFunc) *tupleScanner {
	return &tupleScanner{fn: fn}
}

// Write implements io.Writer.
func (s *tupleScanner) Write(p []byte) (int, error) {
	if s.done {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("%w: binary COPY data after the trailer", ErrBackend)
	}
	// Parse straight from p when nothing is buffered (the common case),
	// else from the buffer.
	data := p
	if len(s.buf) > 0 {
		s.buf = append(s.buf, p...)
		data = s.buf
	}
	n, err := s.parse(data)
	if err != nil {
		return 0, err
	}
	rest := data[n:]
	if len(s.buf) > 0 {
		s.buf = append(s.buf[:0], rest...)
	} else if len(rest) > 0 {
		s.buf = append(s.buf, rest...)
	}
	return len(p), nil
}

// parse consumes whole items from data and returns how many bytes it used.
func (s *tupleScanner) parse(data []byte) (int, error) {
	off := 0
	if !s.header {
		if len(data) < copyHeaderLen {
			return 0, nil
		}
		if !bytes.Equal(data[:len(copySignature)], copySignature) {
			return 0, fmt.Errorf("%w: not a binary COPY stream", ErrBackend)
		}
		ext := binary.BigEndian.Uint32(data[15:19])
		if ext > maxField {
			return 0, fmt.Errorf("%w: binary COPY header extension of %d bytes", ErrBackend, ext)
		}
		if len(data) < copyHeaderLen+int(ext) {
			return 0, nil
		}
		off = copyHeaderLen + int(ext)
		s.header = true
	}
	for off+2 <= len(data) {
		n := int16(binary.BigEndian.Uint16(data[off:]))
		if n == -1 {
			s.done = true
			off += 2
			if off != len(data) {
				return 0, fmt.Errorf("%w: binary COPY data after the trailer", ErrBackend)
			}
			return off, nil
		}
		if n < 0 {
			return 0, fmt.Errorf("%w: binary COPY tuple with %d fields", ErrBackend, n)
		}
		start, pos := off, off+2
		s.fields = s.fields[:0]
		complete := true
		for range int(n) {
			if pos+4 > len(data) {
				complete = false
				break
			}
			l := int32(binary.BigEndian.Uint32(data[pos:]))
			pos += 4
			switch {
			case l == -1:
				s.fields = append(s.fields, nil)
				continue
			case l < 0 || l > maxField:
				return 0, fmt.Errorf("%w: binary COPY field of length %d", ErrBackend, l)
			}
			if pos+int(l) > len(data) {
				complete = false
				break
			}
			s.fields = append(s.fields, data[pos:pos+int(l):pos+int(l)])
			pos += int(l)
		}
		if !complete {
			break
		}
		s.tuples++
		s.scanned += int64(pos - start)
		if err := s.fn(data[start:pos:pos], s.fields); err != nil {
			return 0, err
		}
		off = pos
	}
	return off, nil
}

// finish reports an error when the stream ended early.
func (s *tupleScanner) finish() error {
	if !s.done || len(s.buf) > 0 {
		return fmt.Errorf("%w: binary COPY stream ended early", ErrBackend)
	}
	return nil
}

// copyBuffer accumulates tuples for one COPY ... FROM STDIN (FORMAT
// binary).
type copyBuffer struct {
	text bool // text format: rows are lines, no header or trailer
	buf  bytes.Buffer
	rows int
	keys []string // text forms of the distinct keys written, in order
	last string   // the last key added, to skip duplicates of sorted input
}

func (b *copyBuffer) add(raw []byte) {
	if b.buf.Len() == 0 && !b.text {
		b.buf.Write(copyHeader)
	}
	b.buf.Write(raw)
	b.rows++
}

// addKey records a key of the batch once (input is in key order, so equal
// keys are adjacent; a repeat elsewhere is harmless in = ANY).
func (b *copyBuffer) addKey(k string) {
	if len(b.keys) > 0 && b.last == k {
		return
	}
	b.keys = append(b.keys, k)
	b.last = k
}

// bytes returns the complete stream (header, tuples, trailer).
func (b *copyBuffer) bytes() []byte {
	if b.text {
		return b.buf.Bytes()
	}
	if b.buf.Len() == 0 {
		b.buf.Write(copyHeader)
	}
	b.buf.Write(copyTrailer)
	return b.buf.Bytes()
}

func (b *copyBuffer) reset() {
	b.buf.Reset()
	b.rows = 0
	b.keys = b.keys[:0]
	b.last = ""
}
