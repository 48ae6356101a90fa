package shardmap

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// KeyType is the PostgreSQL type of a shard key column.
type KeyType uint8

// Key types. The zero KeyType is invalid.
const (
	Bigint KeyType = iota + 1 // bigint (int8); int2/int4 binary values are widened
	Text                      // text, varchar, char: compared byte for byte
	UUID                      // uuid: 16 bytes
)

// Config names of the key types.
const (
	BigintName = "bigint"
	TextName   = "text"
	UUIDName   = "uuid"
)

// String returns the config name of t.
func (t KeyType) String() string {
	switch t {
	case Bigint:
		return BigintName
	case Text:
		return TextName
	case UUID:
		return UUIDName
	}
	return "KeyType(" + strconv.Itoa(int(t)) + ")"
}

// ParseKeyType returns the KeyType named s (bigint, text or uuid).
func ParseKeyType(s string) (KeyType, error) {
	switch s {
	case BigintName:
		return Bigint, nil
	case TextName:
		return Text, nil
	case UUIDName:
		return UUID, nil
	}
	return 0, fmt.Errorf("shardmap: unknown key type %q (want %s, %s or %s)", s, BigintName, TextName, UUIDName)
}

// Key is a decoded shard key value. It is a small value type, passed by
// value and comparable with == (equal values are equal keys); the zero Key
// is invalid (ShardFor reports ErrBadKey).
//
// A text Key made by TextKeyBytes or by the decoders borrows the bytes it was
// decoded from: it is valid only while those bytes are not modified (for a
// pgproto3 message, until the next Receive). Clone it to keep it longer, for
// example as a map key.
type Key struct {
	typ KeyType
	n   int64
	u   [16]byte
	s   string // may alias a caller's []byte, see TextKeyBytes
}

// Int64Key returns a bigint key.
func Int64Key(v int64) Key { return Key{typ: Bigint, n: v} }

// TextKey returns a text key.
func TextKey(s string) Key { return Key{typ: Text, s: s} }

// TextKeyBytes returns a text key that borrows b without copying it: b must
// not be modified while the Key is in use (see Key).
func TextKeyBytes(b []byte) Key {
	if len(b) == 0 {
		return Key{typ: Text}
	}
	return Key{typ: Text, s: unsafe.String(&b[0], len(b))}
}

// UUIDKey returns a uuid key.
func UUIDKey(u [16]byte) Key { return Key{typ: UUID, u: u} }

// Type returns the key's type, 0 for the zero Key.
func (k Key) Type() KeyType { return k.typ }

// Int64 returns the value of a bigint key (0 for other types).
func (k Key) Int64() int64 { return k.n }

// UUID returns the bytes of a uuid key (zero for other types).
func (k Key) UUID() [16]byte { return k.u }

// Text returns a copy of the value of a text key ("" for other types), safe
// to keep.
func (k Key) Text() string { return strings.Clone(k.s) }

// Clone returns a Key that owns its bytes, safe to keep after the buffer a
// borrowed text key was decoded from is reused. It copies text keys only.
func (k Key) Clone() Key {
	k.s = strings.Clone(k.s)
	return k
}

// String formats the key as PostgreSQL would print the value (for logs and
// errors; text keys are quoted).
func (k Key) String() string {
	switch k.typ {
	case Bigint:
		return strconv.FormatInt(k.n, 10)
	case Text:
		return strconv.Quote(k.s)
	case UUID:
		return formatUUID(k.u)
	}
	return "<invalid key>"
}

func formatUUID(u [16]byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:])
}
