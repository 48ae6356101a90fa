// Package shardmap owns the mapping from a shard key to a shard: the
// versioned shard map compiled from config, the key decoders for the
// PostgreSQL text and binary wire forms, the sharding functions (modulo,
// hash, range, list), the partition→shard assignment of the hash function,
// and the computation of which keys move between two maps.
//
// It is pure: no I/O, no logging, no clocks. A *Map is immutable once built by
// New, so the router can publish it behind an atomic.Pointer and call it from
// any number of goroutines without locks; a config reload builds a new Map.
//
// # Hot path
//
//	t, ok := m.Table("public.orders")          // once per statement
//	k, err := t.Type().Decode(param, format)    // Bind parameter, text or binary
//	shard, err := t.ShardFor(k)                 // no allocations
//
// # The hash function
//
// The hash function is xxHash64 (seed 0, github.com/cespare/xxhash/v2) over
// a canonical encoding of the key: a bigint is its 8-byte big-endian two's
// complement, text is its bytes as sent by the client, a uuid is its 16 bytes.
// The 64-bit hash h is reduced to one of P partitions by multiply-shift,
// partition = (h × P) >> 64, and a partition table maps partitions to shards.
// It is NOT compatible with PostgreSQL's hashint8extended / PARTITION BY HASH.
// The encoding, the hash and the reduction decide where data lives on disk:
// they are fixed, and pinned by golden tests.
//
// Multiply-shift keeps partitions nested: with P' = k×P partitions, partition
// p' of P' lies inside partition p'/k of P, so Diff can compare maps whose
// partition counts are multiples of each other.
//
// # Partition assignment
//
// Unless a key space gives an explicit partition_table, the table is
// DefaultPartitionTable(partitions, shards): every partition starts on shard
// 0, then shards 1..N-1 are added one at a time, each addition taking its
// share (about P/(n+1)) evenly from every existing shard, the donors giving
// up their highest-numbered partitions. Going from N to N+1 shards therefore
// moves about P/(N+1) partitions, all of them to the new shard, about
// P/(N(N+1)) from each old one; Rebalance applies the same rule to any table.
//
// # Table names
//
// Names are compared byte for byte, as PostgreSQL resolves them (unquoted
// identifiers folded to lower case). A table configured without a schema
// ("users") matches that name in any schema; one configured as
// "public.users" also matches the unqualified "users", the default
// search_path's resolution; any other qualified name matches only itself.
package shardmap
