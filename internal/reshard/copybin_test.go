package reshard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// encodeTuples builds a binary COPY stream of tuples (nil field = NULL).
func encodeTuples(tuples ...[][]byte) []byte {
	var b bytes.Buffer
	b.Write(copyHeader)
	for _, t := range tuples {
		b.Write(encodeTuple(t))
	}
	b.Write(copyTrailer)
	return b.Bytes()
}

func encodeTuple(fields [][]byte) []byte {
	out := binary.BigEndian.AppendUint16(nil, uint16(len(fields)))
	for _, f := range fields {
		if f == nil {
			out = binary.BigEndian.AppendUint32(out, 0xffffffff)
			continue
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

func int8Field(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// scanAll feeds stream to a scanner in chunks of size chunk and returns the
// tuples it saw, formatted.
func scanAll(stream []byte, chunk int) ([]string, []byte, error) {
	var got []string
	var raws []byte
	s := newTupleScanner(func(raw []byte, fields [][]byte) error {
		raws = append(raws, raw...)
		got = append(got, fmt.Sprintf("%q", fields))
		return nil
	})
	for len(stream) > 0 {
		n := min(chunk, len(stream))
		if _, err := s.Write(stream[:n]); err != nil {
			return got, raws, err
		}
		stream = stream[n:]
	}
	return got, raws, s.finish()
}

func TestTupleScanner(t *testing.T) {
	tuples := [][][]byte{
		{int8Field(1), []byte("alice"), nil},
		{int8Field(-2), []byte(""), []byte("x\ty\n")},
		{},
	}
	stream := encodeTuples(tuples...)
	want := []string{`["\x00\x00\x00\x00\x00\x00\x00\x01" "alice" ""]`, `["\xff\xff\xff\xff\xff\xff\xff\xfe" "" "x\ty\n"]`, `[]`}
	withExt := append(append(append([]byte{}, copySignature...), 0, 0, 0, 0, 0, 0, 0, 3, 'e', 'x', 't'), stream[copyHeaderLen:]...)
	for _, tc := range []struct {
		name   string
		stream []byte
		chunks []int
		want   []string
		err    string
	}{
		{"whole", stream, []int{len(stream)}, want, ""},
		{"byte by byte", stream, []int{1}, want, ""},
		{"odd chunks", stream, []int{3, 7, 19}, want, ""},
		{"header extension", withExt, []int{1, len(withExt)}, want, ""},
		{"empty table", encodeTuples(), []int{1, 100}, nil, ""},
		{"truncated", stream[:len(stream)-5], []int{100}, want[:1], "ended early"},
		{"no trailer", stream[:len(stream)-2], []int{100}, want, "ended early"},
		{"bad signature", append([]byte("PGCOPY\n\xff\r\n\x01"), stream[11:]...), []int{100}, nil, "not a binary COPY"},
		{"data after trailer", append(append([]byte{}, stream...), 0), []int{len(stream) + 1}, want, "after the trailer"},
		{"negative length", append(append(append([]byte{}, copyHeader...), 0, 1, 0xff, 0xff, 0xff, 0xfe), copyTrailer...), []int{100}, nil, "length -2"},
		{"negative count", append(append([]byte{}, copyHeader...), 0xff, 0xf0), []int{100}, nil, "fields"},
	} {
		for _, chunk := range tc.chunks {
			t.Run(fmt.Sprintf("%s/%d", tc.name, chunk), func(t *testing.T) {
				got, raws, err := scanAll(tc.stream, chunk)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("tuples = %v, want %v", got, tc.want)
				}
				switch {
				case tc.err == "" && err != nil:
					t.Fatalf("err = %v", err)
				case tc.err != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.err))):
					t.Fatalf("err = %v, want %q", err, tc.err)
				case tc.err != "" && !errors.Is(err, ErrBackend):
					t.Fatalf("err = %v, not ErrBackend", err)
				}
				if tc.err == "" && len(tc.want) > 0 {
					// The raw tuples re-framed make the same stream.
					re := append(append(append([]byte{}, copyHeader...), raws...), copyTrailer...)
					if !bytes.Equal(re, stream) {
						t.Error("raw tuples do not re-frame to the input")
					}
				}
			})
		}
	}
}

func TestTupleScannerCallbackError(t *testing.T) {
	boom := errors.New("boom")
	s := newTupleScanner(func([]byte, [][]byte) error { return boom })
	if _, err := s.Write(encodeTuples([][]byte{[]byte("x")})); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestCopyBuffer(t *testing.T) {
	var b copyBuffer
	if got := b.bytes(); !bytes.Equal(got, append(append([]byte{}, copyHeader...), copyTrailer...)) {
		t.Errorf("empty buffer = %x", got)
	}
	b.reset()
	for _, k := range []string{"a", "a", "b", "a"} {
		b.add(encodeTuple([][]byte{[]byte(k)}))
		b.addKey(k)
	}
	if fmt.Sprint(b.keys) != "[a b a]" || b.rows != 4 {
		t.Errorf("keys %v rows %d", b.keys, b.rows)
	}
	got, _, err := scanAll(b.bytes(), 5)
	if err != nil || len(got) != 4 {
		t.Fatalf("re-scan: %v, %v", got, err)
	}
}

func FuzzTupleScanner(f *testing.F) {
	f.Add(encodeTuples([][]byte{int8Field(7), []byte("x"), nil}), uint8(3))
	f.Add(encodeTuples(), uint8(1))
	f.Add([]byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x7f\xff\xff\xff"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		got, raws, err := scanAll(data, int(chunk)+1)
		if err != nil {
			if !errors.Is(err, ErrBackend) {
				t.Fatalf("error %v does not wrap ErrBackend", err)
			}
			return
		}
		// A stream accepted whole is accepted in any chunking, with the same
		// tuples, and its raw tuples re-frame to a stream that parses the same.
		again, _, err := scanAll(data, len(data)+1)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("chunked %v, whole %v (%v)", got, again, err)
		}
		re := append(append(append([]byte{}, copyHeader...), raws...), copyTrailer...)
		third, _, err := scanAll(re, 7)
		if err != nil || fmt.Sprint(third) != fmt.Sprint(got) {
			t.Fatalf("re-framed %v, want %v (%v)", third, got, err)
		}
	})
}

func BenchmarkTupleScanner(b *testing.B) {
	// 1000 rows of (bigint, 40-byte text, NULL), one Write per row like
	// pgconn.CopyTo.
	var chunks [][]byte
	chunks = append(chunks, copyHeader)
	for i := range 1000 {
		chunks = append(chunks, encodeTuple([][]byte{int8Field(int64(i)), bytes.Repeat([]byte("x"), 40), nil}))
	}
	chunks = append(chunks, copyTrailer)
	var size int
	for _, c := range chunks {
		size += len(c)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var rows int
	s := newTupleScanner(func([]byte, [][]byte) error { rows++; return nil })
	for b.Loop() {
		*s = tupleScanner{fn: s.fn, fields: s.fields, buf: s.buf[:0]}
		for _, c := range chunks {
			if _, err := s.Write(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.finish(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}

func TestLineScanner(t *testing.T) {
	stream := []byte("1\tal\\tice\t\\N\n-2\t\\\\x\\ny\\101\\x41\\x\t\n3\n")
	want := []string{`["1" "al\tice" ""]`, `["-2" "\\x\nyAAx" ""]`, `["3"]`}
	for _, chunk := range []int{1, 2, 5, len(stream)} {
		var got []string
		var raw []byte
		s := newScanner(true, func(r []byte, fields [][]byte) error {
			raw = append(raw, r...)
			got = append(got, fmt.Sprintf("%q", fields))
			return nil
		})
		for p := stream; len(p) > 0; p = p[min(chunk, len(p)):] {
			if _, err := s.Write(p[:min(chunk, len(p))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.finish(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || !bytes.Equal(raw, stream) || s.rows() != 3 {
			t.Errorf("chunk %d: %v (raw %q)", chunk, got, raw)
		}
	}
	// NULL and empty string differ.
	s := newScanner(true, func(_ []byte, f [][]byte) error {
		if f[0] != nil || f[1] == nil {
			t.Errorf("fields %q", f)
		}
		return nil
	})
	if _, err := s.Write([]byte("\\N\t\n")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"x\\\n", "unterminated"} {
		s := newScanner(true, func([]byte, [][]byte) error { return nil })
		_, err := s.Write([]byte(bad))
		if err == nil {
			err = s.finish()
		}
		if !errors.Is(err, ErrBackend) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzLineScanner(f *testing.F) {
	f.Add([]byte("1\ta\\tb\t\\N\n2\t\\101\\x4\n"), uint8(2))
	f.Add([]byte("\n\n"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		scan := func(step int) ([]string, []byte, error) {
			var got []string
			var raw []byte
			s := newScanner(true, func(r []byte, fields [][]byte) error {
				if len(fields) != bytes.Count(r, []byte("\t"))+1 {
					t.Fatalf("%d fields in %q", len(fields), r)
				}
				raw = append(raw, r...)
				got = append(got, fmt.Sprintf("%q", fields))
				return nil
			})
			for p := data; len(p) > 0; p = p[min(step, len(p)):] {
				if _, err := s.Write(p[:min(step, len(p))]); err != nil {
					return got, raw, err
				}
			}
			return got, raw, s.finish()
		}
		got, raw, err := scan(int(chunk) + 1)
		if err != nil {
			if !errors.Is(err, ErrBackend) {
				t.Fatalf("error %v does not wrap ErrBackend", err)
			}
			return
		}
		if !bytes.Equal(raw, data) {
			t.Fatalf("raw lines %q, input %q", raw, data)
		}
		again, _, err := scan(len(data) + 1)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("chunked %v, whole %v (%v)", got, again, err)
		}
	})
}
