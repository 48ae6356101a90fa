package shardmap

import (
	"encoding/binary"
	"fmt"
)

// Wire format codes of a Bind parameter (pgproto3.Bind.ParameterFormatCodes).
const (
	TextFormat   int16 = 0
	BinaryFormat int16 = 1
)

// Decode decodes a key of type t from a Bind parameter value in the given
// wire format (TextFormat or BinaryFormat). A text key borrows src.
func (t KeyType) Decode(src []byte, format int16) (Key, error) {
	switch format {
	case TextFormat:
		return t.DecodeText(src)
	case BinaryFormat:
		return t.DecodeBinary(src)
	}
	return Key{}, fmt.Errorf("%w: unknown format code %d", ErrBadKey, format)
}

// DecodeText decodes a key of type t from its PostgreSQL text form, as in a
// SQL literal or a text-format Bind parameter. It accepts what PostgreSQL's
// input functions accept: for bigint, int8in's syntax (surrounding
// whitespace, a sign, decimal or 0x/0o/0b digits, "_" between digits); for
// uuid, uuid_in's (hex digits, optional "-" after any group of four, optional
// braces). A text key is src itself and borrows it (see Key). It never
// allocates except on error.
func (t KeyType) DecodeText(src []byte) (Key, error) {
	switch t {
	case Bigint:
		v, ok := parseInt8(src)
		if !ok {
			return Key{}, badKey(t, "text", src)
		}
		return Int64Key(v), nil
	case Text:
		return TextKeyBytes(src), nil
	case UUID:
		u, ok := parseUUID(src)
		if !ok {
			return Key{}, badKey(t, "text", src)
		}
		return UUIDKey(u), nil
	}
	return Key{}, fmt.Errorf("%w: invalid key type %v", ErrBadKey, t)
}

// DecodeBinary decodes a key of type t from its PostgreSQL binary form: a
// big-endian int8 (int2 and int4 are accepted too, as a client may bind a
// narrower integer to a bigint column), the bytes of a text, or the 16 bytes
// of a uuid. A text key borrows src (see Key). It never allocates except on
// error.
func (t KeyType) DecodeBinary(src []byte) (Key, error) {
	switch t {
	case Bigint:
		switch len(src) {
		case 8:
			return Int64Key(int64(binary.BigEndian.Uint64(src))), nil
		case 4:
			return Int64Key(int64(int32(binary.BigEndian.Uint32(src)))), nil
		case 2:
			return Int64Key(int64(int16(binary.BigEndian.Uint16(src)))), nil
		}
		return Key{}, badKey(t, "binary", src)
	case Text:
		return TextKeyBytes(src), nil
	case UUID:
		if len(src) != 16 {
			return Key{}, badKey(t, "binary", src)
		}
		return UUIDKey([16]byte(src)), nil
	}
	return Key{}, fmt.Errorf("%w: invalid key type %v", ErrBadKey, t)
}

// ParseKey decodes a key of type t from a config value (text form).
// Unlike DecodeText, a text key owns its bytes.
func ParseKey(t KeyType, s string) (Key, error) {
	if t == Text {
		return TextKey(s), nil
	}
	return t.DecodeText([]byte(s))
}

func badKey(t KeyType, form string, src []byte) error {
	const max = 64
	shown := src
	if len(shown) > max {
		shown = shown[:max]
	}
	return fmt.Errorf("%w: %q is not a valid %s in %s form", ErrBadKey, shown, t, form)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 99
}

// parseInt8 follows PostgreSQL 16's int8in (pg_strtoint64_safe).
func parseInt8(s []byte) (int64, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	base := 10
	underscoreFirst := false // may "_" come right after the prefix?
	if i+1 < len(s) && s[i] == '0' {
		switch s[i+1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			i += 2
			underscoreFirst = true
		}
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	first := i
	digits := 0
	var v uint64
	for i < len(s) {
		c := s[i]
		if c == '_' {
			if i == first && !underscoreFirst {
				return 0, false
			}
			i++
			if i >= len(s) || digitVal(s[i]) >= base {
				return 0, false
			}
			continue
		}
		d := digitVal(c)
		if d >= base {
			break
		}
		if v > (limit-uint64(d))/uint64(base) {
			return 0, false // out of range
		}
		v = v*uint64(base) + uint64(d)
		digits++
		i++
	}
	if digits == 0 {
		return 0, false
	}
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i != len(s) {
		return 0, false
	}
	if neg {
		return int64(-v), true // -(1<<63) wraps to MinInt64, as intended
	}
	return int64(v), true
}

// parseUUID follows PostgreSQL's uuid_in (string_to_uuid).
func parseUUID(s []byte) ([16]byte, bool) {
	var u [16]byte
	braces := len(s) > 0 && s[0] == '{'
	if braces {
		if s[len(s)-1] != '}' {
			return u, false
		}
		s = s[1 : len(s)-1]
	}
	i := 0
	for j := range u {
		if i+1 >= len(s) {
			return u, false
		}
		hi, lo := digitVal(s[i]), digitVal(s[i+1])
		if hi > 15 || lo > 15 {
			return u, false
		}
		u[j] = byte(hi<<4 | lo)
		i += 2
		if i < len(s) && s[i] == '-' && j%2 == 1 && j < len(u)-1 {
			i++
		}
	}
	return u, i == len(s)
}
