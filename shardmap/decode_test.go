package shardmap

import (
	"errors"
	"strconv"
	"testing"
)

func TestDecodeTextBigint(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"-42", -42, true},
		{"+42", 42, true},
		{"  42\t\n", 42, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"99999999999999999999999", 0, false},
		{"1_000_000", 1000000, true},
		{"0x7FFFFFFFFFFFFFFF", 1<<63 - 1, true},
		{"-0x8000000000000000", -1 << 63, true},
		{"0x8000000000000000", 0, false},
		{"0xff", 255, true},
		{"0x_ff", 255, true},
		{"0o17", 15, true},
		{"0b101", 5, true},
		{"-0b1_0", -2, true},
		{"007", 7, true},
		{"", 0, false},
		{" ", 0, false},
		{"-", 0, false},
		{"+-1", 0, false},
		{"1 2", 0, false},
		{"12a", 0, false},
		{"_1", 0, false},
		{"1_", 0, false},
		{"1__0", 0, false},
		{"0x", 0, false},
		{"0b2", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"1\x00", 0, false},
	}
	for _, tc := range tests {
		k, err := Bigint.DecodeText([]byte(tc.in))
		if tc.ok != (err == nil) || err == nil && (k.Int64() != tc.want || k.Type() != Bigint) {
			t.Errorf("%q: got %v, %v; want %d ok=%v", tc.in, k, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: error %v does not wrap ErrBadKey", tc.in, err)
		}
		// Our decimal subset agrees with strconv.
		if v, serr := strconv.ParseInt(tc.in, 10, 64); serr == nil && (err != nil || v != k.Int64()) {
			t.Errorf("%q: strconv says %d", tc.in, v)
		}
	}
}

func TestDecodeTextUUID(t *testing.T) {
	want := [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	tests := []struct {
		in string
		ok bool
	}{
		// The forms uuid_in documents.
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", true},
		{"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", true},
		{"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", true},
		{"a0eebc999c0b4ef8bb6d6bb9bd380a11", true},
		{"a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", true},
		{"{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}", true},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", false},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", false},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", false},
		{"-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{"a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{"a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", false},
		{" a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{"g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{"", false},
		{"{}", false},
		{"{", false},
	}
	for _, tc := range tests {
		k, err := UUID.DecodeText([]byte(tc.in))
		if tc.ok != (err == nil) || err == nil && (k.UUID() != want || k.Type() != UUID) {
			t.Errorf("%q: got %v, %v; ok=%v", tc.in, k, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: error %v does not wrap ErrBadKey", tc.in, err)
		}
	}
	if k := UUIDKey(want); k.String() != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" {
		t.Errorf("String: %s", k)
	}
}

func TestDecodeBinary(t *testing.T) {
	tests := []struct {
		typ  KeyType
		in   []byte
		want Key
		ok   bool
	}{
		{Bigint, []byte{0, 0, 0, 0, 0, 0, 0, 42}, Int64Key(42), true},
		{Bigint, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, Int64Key(-2), true},
		{Bigint, []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, Int64Key(-1 << 63), true},
		{Bigint, []byte{0xff, 0xff, 0xff, 0xfe}, Int64Key(-2), true}, // int4
		{Bigint, []byte{0x7f, 0xff, 0xff, 0xff}, Int64Key(1<<31 - 1), true},
		{Bigint, []byte{0x80, 0x00}, Int64Key(-1 << 15), true}, // int2
		{Bigint, []byte{1, 2, 3}, Key{}, false},
		{Bigint, nil, Key{}, false},
		{Bigint, make([]byte, 16), Key{}, false},
		{Text, []byte("héllo"), TextKey("héllo"), true},
		{Text, nil, TextKey(""), true},
		{UUID, make([]byte, 16), UUIDKey([16]byte{}), true},
		{UUID, make([]byte, 15), Key{}, false},
		{KeyType(0), []byte{1}, Key{}, false},
		{KeyType(9), []byte{1}, Key{}, false},
	}
	for _, tc := range tests {
		k, err := tc.typ.DecodeBinary(tc.in)
		if tc.ok != (err == nil) || k.Clone() != tc.want {
			t.Errorf("%v %x: got %v, %v; want %v ok=%v", tc.typ, tc.in, k, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Errorf("%v %x: error %v does not wrap ErrBadKey", tc.typ, tc.in, err)
		}
	}
}

func TestDecodeFormat(t *testing.T) {
	if k, err := Bigint.Decode([]byte("7"), TextFormat); err != nil || k != Int64Key(7) {
		t.Errorf("text: %v %v", k, err)
	}
	if k, err := Bigint.Decode([]byte{0, 0, 0, 7}, BinaryFormat); err != nil || k != Int64Key(7) {
		t.Errorf("binary: %v %v", k, err)
	}
	if _, err := Bigint.Decode([]byte("7"), 2); !errors.Is(err, ErrBadKey) {
		t.Errorf("format 2: %v", err)
	}
	if _, err := KeyType(0).DecodeText([]byte("7")); !errors.Is(err, ErrBadKey) {
		t.Errorf("zero type: %v", err)
	}
}

func TestTextKeyBorrowing(t *testing.T) {
	buf := []byte("alpha")
	k, err := Text.DecodeText(buf)
	if err != nil {
		t.Fatal(err)
	}
	kept := k.Clone()
	text := k.Text()
	copy(buf, "omega")
	if k.String() != `"omega"` {
		t.Errorf("borrowed key should alias its buffer, got %s", k)
	}
	if kept != TextKey("alpha") || text != "alpha" {
		t.Errorf("Clone/Text must copy: %v %q", kept, text)
	}
	if TextKey("x").Clone() != TextKey("x") || Int64Key(3).Clone() != Int64Key(3) {
		t.Error("Clone of an owned key is the key")
	}
	if pk, err := ParseKey(Text, "v"); err != nil || pk != TextKey("v") {
		t.Errorf("ParseKey: %v %v", pk, err)
	}
	if _, err := ParseKey(UUID, "v"); !errors.Is(err, ErrBadKey) {
		t.Errorf("ParseKey uuid: %v", err)
	}
}

func TestKeyTypeNames(t *testing.T) {
	for _, typ := range []KeyType{Bigint, Text, UUID} {
		got, err := ParseKeyType(typ.String())
		if err != nil || got != typ {
			t.Errorf("%v: %v %v", typ, got, err)
		}
	}
	if _, err := ParseKeyType("int"); err == nil {
		t.Error("int is not a key type")
	}
	if KeyType(9).String() != "KeyType(9)" || Function(9).String() != "Function(9)" || Change(9).String() != "Change(9)" {
		t.Error("String of invalid values")
	}
	if (Key{}).String() != "<invalid key>" {
		t.Error("zero Key String")
	}
}
