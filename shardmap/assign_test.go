package shardmap

import (
	"fmt"
	"slices"
	"testing"
)

func counts(table []int, shards int) []int {
	c := make([]int, shards)
	for _, s := range table {
		c[s]++
	}
	return c
}

func TestDefaultPartitionTableSmall(t *testing.T) {
	tests := []struct {
		partitions, shards int
		want               []int
	}{
		{1, 1, []int{0}},
		{4, 1, []int{0, 0, 0, 0}},
		{8, 2, []int{0, 0, 0, 0, 1, 1, 1, 1}},
		{8, 3, []int{0, 0, 0, 2, 1, 1, 1, 2}},
		{12, 4, []int{0, 0, 0, 3, 2, 2, 1, 1, 1, 3, 2, 3}},
		{3, 3, []int{0, 2, 1}},
	}
	for _, tc := range tests {
		got, err := DefaultPartitionTable(tc.partitions, tc.shards)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("(%d, %d) = %v, %v; want %v", tc.partitions, tc.shards, got, err, tc.want)
		}
	}
}

// TestDefaultPartitionTableGrowth checks the properties the resharder relies
// on, for every step N → N+1: balance within one partition, only moves to
// the new shard, about the same number from every old shard, and equality
// with Rebalance.
func TestDefaultPartitionTableGrowth(t *testing.T) {
	for _, p := range []int{16, 1000, 1024, 4096} {
		prev, err := DefaultPartitionTable(p, 1)
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n < 64 && n < p; n++ {
			next, err := DefaultPartitionTable(p, n+1)
			if err != nil {
				t.Fatal(err)
			}
			c := counts(next, n+1)
			if slices.Max(c)-slices.Min(c) > 1 {
				t.Fatalf("P=%d N=%d: unbalanced %v", p, n+1, c)
			}
			given := make([]int, n)
			moved := 0
			for q := range next {
				if next[q] == prev[q] {
					continue
				}
				if next[q] != n {
					t.Fatalf("P=%d %d→%d: partition %d moved %d→%d, not to the new shard", p, n, n+1, q, prev[q], next[q])
				}
				given[prev[q]]++
				moved++
			}
			if moved != c[n] {
				t.Fatalf("P=%d %d→%d: moved %d, new shard holds %d", p, n, n+1, moved, c[n])
			}
			if want := p / (n + 1); moved < want || moved > want+1 {
				t.Fatalf("P=%d %d→%d: moved %d partitions, want ≈ %d", p, n, n+1, moved, want)
			}
			if slices.Max(given)-slices.Min(given) > 2 {
				t.Fatalf("P=%d %d→%d: uneven donations %v", p, n, n+1, given)
			}
			re, err := Rebalance(prev, n+1)
			if err != nil || !slices.Equal(re, next) {
				t.Fatalf("P=%d: Rebalance(default(%d), %d) differs from default(%d): %v", p, n, n+1, n+1, err)
			}
			prev = next
		}
	}
}

func TestRebalance(t *testing.T) {
	tests := []struct {
		name   string
		table  []int
		shards int
		want   []int
	}{
		{"balanced stays", []int{0, 0, 1, 1}, 2, []int{0, 0, 1, 1}},
		{"unbalanced evens out", []int{0, 0, 0, 0, 0, 1}, 2, []int{0, 0, 0, 1, 1, 1}},
		{"grow by two", []int{0, 0, 0, 1, 1, 1}, 3, []int{0, 0, 2, 1, 1, 2}},
		{"grow 2→4", []int{0, 0, 0, 0, 1, 1, 1, 1}, 4, []int{0, 0, 3, 2, 1, 1, 3, 2}},
		{"shrink hands orphans out", []int{0, 1, 2, 0, 1, 2}, 2, []int{0, 1, 0, 0, 1, 1}},
		{"shrink to one", []int{0, 1, 2, 3}, 1, []int{0, 0, 0, 0}},
		{"empty shard fills", []int{0, 0, 2, 2}, 3, []int{0, 0, 2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.table)
			got, err := Rebalance(tc.table, tc.shards)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			if !slices.Equal(in, tc.table) {
				t.Fatal("Rebalance modified its input")
			}
		})
	}
}

func TestAssignErrors(t *testing.T) {
	tests := []struct {
		partitions, shards int
	}{
		{0, 1}, {4, 0}, {3, 4}, {MaxPartitions + 1, 2}, {MaxShards + 1, MaxShards + 1},
	}
	for _, tc := range tests {
		if _, err := DefaultPartitionTable(tc.partitions, tc.shards); err == nil {
			t.Errorf("DefaultPartitionTable(%d, %d) should fail", tc.partitions, tc.shards)
		}
	}
	for _, table := range [][]int{{0, -1}, {0, MaxShards}} {
		if _, err := Rebalance(table, 1); err == nil {
			t.Errorf("Rebalance(%v) should fail", table)
		}
	}
	if _, err := Rebalance([]int{0, 0}, 3); err == nil {
		t.Error("Rebalance to more shards than partitions should fail")
	}
}

func TestDefaultPartitionTableLarge(t *testing.T) {
	// The largest map compiles quickly and stays balanced.
	got, err := DefaultPartitionTable(MaxShards*2, MaxShards)
	if err != nil {
		t.Fatal(err)
	}
	c := counts(got, MaxShards)
	if slices.Min(c) != 2 || slices.Max(c) != 2 {
		t.Fatalf("want 2 partitions per shard, got %d..%d", slices.Min(c), slices.Max(c))
	}
}

func ExampleDefaultPartitionTable() {
	three, _ := DefaultPartitionTable(12, 3)
	four, _ := DefaultPartitionTable(12, 4)
	fmt.Println(three)
	fmt.Println(four)
	// Output:
	// [0 0 0 0 2 2 1 1 1 1 2 2]
	// [0 0 0 3 2 2 1 1 1 3 2 3]
}
