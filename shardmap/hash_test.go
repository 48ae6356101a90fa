package shardmap

import (
	"math"
	"testing"
)

// TestHashGolden pins the hash function: these values decide where data
// lives, so a change here is a data migration, not a refactoring.
func TestHashGolden(t *testing.T) {
	u := [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	tests := []struct {
		key       Key
		hash      uint64
		partition int // of 4096
	}{
		{Int64Key(0), 0x34c96acdcadb1bbb, 844},
		{Int64Key(1), 0x9f1ffc793b8a47da, 2545},
		{Int64Key(-1), 0x85d136adb773c6c9, 2141},
		{Int64Key(42), 0xa2c396223f8bdbdf, 2604},
		{TextKey(""), 0xef46db3751d8e999, 3828}, // XXH64 of the empty input
		{TextKey("hello"), 0x26c7827d889f6da3, 620},
		{TextKeyBytes([]byte("hello")), 0x26c7827d889f6da3, 620},
		{UUIDKey(u), 0x2be0e46a4e11f685, 702},
		{Key{}, 0, 0},
	}
	for _, tc := range tests {
		h := HashKey(tc.key)
		if h != tc.hash || PartitionOf(h, 4096) != tc.partition {
			t.Errorf("%v: hash %#x partition %d; want %#x %d", tc.key, h, PartitionOf(h, 4096), tc.hash, tc.partition)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	tests := []struct {
		h    uint64
		p    int
		want int
	}{
		{0, 4096, 0},
		{math.MaxUint64, 4096, 4095},
		{1 << 63, 4096, 2048},
		{1<<63 - 1, 4096, 2047},
		{math.MaxUint64, 1, 0},
		{math.MaxUint64, 3, 2},
		{math.MaxUint64 / 3, 3, 0},
		{math.MaxUint64/3 + 1, 3, 1},
	}
	for _, tc := range tests {
		if got := PartitionOf(tc.h, tc.p); got != tc.want {
			t.Errorf("PartitionOf(%#x, %d) = %d, want %d", tc.h, tc.p, got, tc.want)
		}
	}
	// Nesting: with k×P partitions, partition q lies inside q/k of P.
	for h := uint64(1); h != 0 && h < 1<<63; h = h*3 + 12345 {
		for _, pk := range [][2]int{{1024, 4}, {4096, 16}, {3, 7}} {
			p, k := pk[0], pk[1]
			if PartitionOf(h, p*k)/k != PartitionOf(h, p) {
				t.Fatalf("h %#x: partition %d of %d not inside %d of %d", h, PartitionOf(h, p*k), p*k, PartitionOf(h, p), p)
			}
		}
	}
}
