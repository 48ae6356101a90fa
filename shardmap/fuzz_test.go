package shardmap

import (
	"errors"
	"strconv"
	"testing"
)

var fuzzTypes = []KeyType{Bigint, Text, UUID}

func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"42", " -0x_7fff_ffff ", "9223372036854775808", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", "", "1__2"} {
		for i := range fuzzTypes {
			f.Add(byte(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, ti byte, src []byte) {
		typ := fuzzTypes[int(ti)%len(fuzzTypes)]
		k, err := typ.DecodeText(src)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v does not wrap ErrBadKey", err)
			}
			return
		}
		if k.Type() != typ {
			t.Fatalf("decoded a %v key as %v", typ, k.Type())
		}
		// What decodes re-decodes from its canonical form to the same key.
		var canon string
		switch typ {
		case Bigint:
			canon = strconv.FormatInt(k.Int64(), 10)
		case Text:
			if k.Text() != string(src) {
				t.Fatalf("text key %q from %q", k.Text(), src)
			}
			canon = k.Text()
		case UUID:
			canon = k.String()
		}
		back, err := typ.DecodeText([]byte(canon))
		if err != nil || back.Clone() != k.Clone() {
			t.Fatalf("%q → %v → %q → %v, %v", src, k, canon, back, err)
		}
		// Plain decimal agrees with strconv.
		if typ == Bigint {
			if v, err := strconv.ParseInt(string(src), 10, 64); err == nil && v != k.Int64() {
				t.Fatalf("%q: %d, strconv says %d", src, k.Int64(), v)
			}
		}
	})
}

func FuzzDecodeBinary(f *testing.F) {
	for _, b := range [][]byte{{0, 42}, {0, 0, 0, 42}, {0x80, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 16), {1, 2, 3}, nil} {
		for i := range fuzzTypes {
			f.Add(byte(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, ti byte, src []byte) {
		typ := fuzzTypes[int(ti)%len(fuzzTypes)]
		k, err := typ.DecodeBinary(src)
		wantOK := typ == Text || typ == Bigint && (len(src) == 2 || len(src) == 4 || len(src) == 8) || typ == UUID && len(src) == 16
		if (err == nil) != wantOK {
			t.Fatalf("%v %x: err %v, want ok=%v", typ, src, err, wantOK)
		}
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Fatalf("error %v does not wrap ErrBadKey", err)
		}
		if err == nil && typ == Bigint && len(src) == 8 {
			text, err := Bigint.DecodeText([]byte(k.String()))
			if err != nil || text != k {
				t.Fatalf("binary %x → %v, text form → %v, %v", src, k, text, err)
			}
		}
	})
}

// FuzzShardFor drives the whole hot path: table name, decoder, ShardFor and
// ShardsFor, against the test map. It must never panic and must answer a
// shard in range or a sentinel error.
func FuzzShardFor(f *testing.F) {
	m := mustMap(f, testMapYAML)
	for _, tb := range m.Tables() {
		f.Add(tb.Name(), byte(0), []byte("42"))
		f.Add(tb.Name(), byte(1), []byte{0, 0, 0, 0, 0, 0, 0, 42})
	}
	f.Add("users", byte(0), []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
	f.Add("countries", byte(0), []byte("1"))
	f.Add("", byte(7), []byte(nil))
	f.Fuzz(func(t *testing.T, table string, format byte, src []byte) {
		typ := Bigint
		if tb, ok := m.Table(table); ok {
			typ = tb.Type()
			if format&4 != 0 { // sometimes decode with a wrong type
				typ = fuzzTypes[int(format>>3)%len(fuzzTypes)]
			}
		}
		k, err := typ.Decode(src, int16(format&3))
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("decode error %v does not wrap ErrBadKey", err)
			}
			return
		}
		s, err := m.ShardFor(table, k)
		switch {
		case err == nil:
			if s < 0 || s >= m.Shards() {
				t.Fatalf("%q %v: shard %d out of range", table, k, s)
			}
		case errors.Is(err, ErrUnknownTable), errors.Is(err, ErrBadKey), errors.Is(err, ErrUnknownShard):
			if s != NoShard {
				t.Fatalf("%q %v: shard %d with error %v", table, k, s, err)
			}
		default:
			t.Fatalf("%q %v: error %v wraps no sentinel", table, k, err)
		}
		batch, berr := m.ShardsFor(table, []Key{k, k}, nil)
		if (berr == nil) != !errors.Is(err, ErrUnknownTable) || berr == nil && (batch[0] != s || batch[1] != s) {
			t.Fatalf("%q %v: ShardsFor %v, %v; ShardFor %d, %v", table, k, batch, berr, s, err)
		}
	})
}
