package shardmap

import (
	"encoding/binary"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// HashKey returns the 64-bit hash of the hash function: xxHash64 (seed 0) of
// the key's canonical encoding (see the package documentation). It returns
// 0 for the zero Key.
func HashKey(k Key) uint64 {
	switch k.typ {
	case Bigint:
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(k.n))
		return xxhash.Sum64(b[:])
	case Text:
		return xxhash.Sum64String(k.s)
	case UUID:
		return xxhash.Sum64(k.u[:])
	}
	return 0
}

// PartitionOf reduces a hash to one of partitions partitions by
// multiply-shift: (h × partitions) >> 64. partitions must be > 0.
func PartitionOf(h uint64, partitions int) int {
	hi, _ := bits.Mul64(h, uint64(partitions))
	return int(hi)
}
