package shardmap

import (
	"cmp"
	"encoding/binary"
	"strconv"
)

// Function is a sharding function.
type Function uint8

// Sharding functions. The zero Function is invalid.
const (
	Modulo Function = iota + 1 // bigint key mod shard count
	Hash                       // hash → partition → partition table → shard
	Range                      // ordered [from, to) intervals → shard, else default
	List                       // value → shard, else default
)

// Config names of the functions.
const (
	ModuloName = "modulo"
	HashName   = "hash"
	RangeName  = "range"
	ListName   = "list"
)

// String returns the config name of f.
func (f Function) String() string {
	switch f {
	case Modulo:
		return ModuloName
	case Hash:
		return HashName
	case Range:
		return RangeName
	case List:
		return ListName
	}
	return "Function(" + strconv.Itoa(int(f)) + ")"
}

// NoShard is the shard reported for a key that maps to no shard.
const NoShard = -1

// badType is keySpace.shard's result for a key of the wrong type.
const badType = -2

// keySpace is a compiled sharding function. It is immutable.
type keySpace struct {
	name   string // "" for a table's inline function
	typ    KeyType
	fn     Function
	shards int // shard count of the map (modulo's divisor)

	// hash
	partitions int
	ptable     []uint16 // partition → shard

	// range: rShard[i] is the shard (or def) of keys from the i-th start
	// up to the next; keys before the first start get def.
	rInt   []int64
	rText  []string
	rUUID  []u128
	rShard []int32

	// list
	lInt  map[int64]int32
	lText map[string]int32
	lUUID map[[16]byte]int32

	def int // default shard of range and list, NoShard if none
}

// shard returns the shard of k, NoShard, or badType. It does not allocate.
func (ks *keySpace) shard(k *Key) int {
	if k.typ != ks.typ {
		return badType
	}
	switch ks.fn {
	case Hash:
		return int(ks.ptable[PartitionOf(HashKey(*k), ks.partitions)])
	case Modulo:
		r := k.n % int64(ks.shards)
		if r < 0 {
			r += int64(ks.shards)
		}
		return int(r)
	case Range:
		var i int
		switch k.typ {
		case Bigint:
			i = lastLE(ks.rInt, k.n)
		case Text:
			i = lastLE(ks.rText, k.s)
		case UUID:
			i = lastLEu128(ks.rUUID, toU128(k.u))
		}
		if i < 0 {
			return ks.def
		}
		return int(ks.rShard[i])
	case List:
		var s int32
		var ok bool
		switch k.typ {
		case Bigint:
			s, ok = ks.lInt[k.n]
		case Text:
			s, ok = ks.lText[k.s]
		case UUID:
			s, ok = ks.lUUID[k.u]
		}
		if !ok {
			return ks.def
		}
		return int(s)
	}
	return NoShard
}

// partitionOf returns the hash partition of k (hash only), or badType.
func (ks *keySpace) partitionOf(k *Key) int {
	if k.typ != ks.typ {
		return badType
	}
	return PartitionOf(HashKey(*k), ks.partitions)
}

// lastLE returns the index of the last element of sorted s that is <= k,
// or -1.
func lastLE[T cmp.Ordered](s []T, k T) int {
	lo, hi := 0, len(s)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s[mid] <= k {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// u128 is a uuid as an unsigned 128-bit number, for ordering.
type u128 struct{ hi, lo uint64 }

func toU128(u [16]byte) u128 {
	return u128{binary.BigEndian.Uint64(u[:8]), binary.BigEndian.Uint64(u[8:])}
}

func (a u128) lessEq(b u128) bool {
	return a.hi < b.hi || a.hi == b.hi && a.lo <= b.lo
}

func lastLEu128(s []u128, k u128) int {
	lo, hi := 0, len(s)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s[mid].lessEq(k) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}
