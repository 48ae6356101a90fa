package querycache

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Key accumulates the bytes that identify one cached result: everything
// the result depends on besides the data (user, settings, statement text,
// parameters, result formats, protocol shape). A session keeps one and
// reuses its buffer; appending never allocates once it has grown.
type Key struct{ b []byte }

// Reset empties the key.
func (k *Key) Reset() { k.b = k.b[:0] }

// String appends a length-prefixed string.
func (k *Key) String(s string) {
	k.b = binary.AppendUvarint(k.b, uint64(len(s)))
	k.b = append(k.b, s...)
}

// Bytes appends length-prefixed bytes.
func (k *Key) Bytes(p []byte) {
	k.b = binary.AppendUvarint(k.b, uint64(len(p)))
	k.b = append(k.b, p...)
}

// Uint64 appends a number.
func (k *Key) Uint64(v uint64) { k.b = binary.LittleEndian.AppendUint64(k.b, v) }

// Byte appends one byte.
func (k *Key) Byte(c byte) { k.b = append(k.b, c) }

// Raw returns the key's bytes (valid until the next change).
func (k *Key) Raw() []byte { return k.b }

// Hash returns the key's 64-bit hash, the store's index.
func (k *Key) Hash() uint64 { return xxhash.Sum64(k.b) }
