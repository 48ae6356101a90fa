package shardmap

import (
	"cmp"
	"fmt"
	"slices"
)

// Limits and defaults of the hash function.
const (
	// DefaultPartitions is the number of hash partitions when a key space
	// does not set partitions.
	DefaultPartitions = 4096
	// MaxPartitions bounds partitions (the partition table is 2 bytes per
	// partition).
	MaxPartitions = 1 << 20
	// MaxShards bounds the shard count of a map.
	MaxShards = 4096
)

// DefaultPartitionTable returns the partition→shard table used by the hash
// function when the config gives none: element p is the shard of partition
// p. It depends on nothing but its arguments: every partition starts on
// shard 0, and shards 1..shards-1 are added one at a time by the rule of
// Rebalance, so DefaultPartitionTable(P, N+1) equals
// Rebalance(DefaultPartitionTable(P, N), N+1) and differs from it only in
// about P/(N+1) partitions, all now on shard N. Every shard ends with
// partitions/shards partitions, give or take one.
func DefaultPartitionTable(partitions, shards int) ([]int, error) {
	if err := checkAssign(partitions, shards); err != nil {
		return nil, err
	}
	all := make([]int, partitions)
	for p := range all {
		all[p] = p
	}
	a := assigner{owned: [][]int{all}}
	for m := 2; m <= shards; m++ {
		a.step(m)
	}
	return a.table(partitions), nil
}

// Rebalance returns a copy of table (element p is the shard of partition p)
// reassigned to shards shards, moving as few partitions as it can. The shard
// count of table is its largest element plus one.
//
// Growing adds the new shards one at a time; each addition takes its quota
// from the existing shards that hold more than theirs, each donor giving up
// its highest-numbered partitions, so partitions only move from old shards
// to new ones. Shrinking hands the partitions of the removed shards to the
// shards below their quota. Either way each shard ends with
// len(table)/shards partitions, give or take one, the shards that held the
// most keeping the extra ones (ties go to the lower shard number).
func Rebalance(table []int, shards int) ([]int, error) {
	if err := checkAssign(len(table), shards); err != nil {
		return nil, err
	}
	n := 0
	for p, s := range table {
		if s < 0 || s >= MaxShards {
			return nil, fmt.Errorf("shardmap: partition %d is on shard %d, outside 0..%d", p, s, MaxShards-1)
		}
		n = max(n, s+1)
	}
	a := assigner{owned: make([][]int, n)}
	for p, s := range table {
		a.owned[s] = append(a.owned[s], p)
	}
	if shards <= n {
		a.step(shards)
	} else {
		for m := n + 1; m <= shards; m++ {
			a.step(m)
		}
	}
	return a.table(len(table)), nil
}

func checkAssign(partitions, shards int) error {
	switch {
	case shards < 1 || shards > MaxShards:
		return fmt.Errorf("shardmap: %d shards is outside 1..%d", shards, MaxShards)
	case partitions < shards || partitions > MaxPartitions:
		return fmt.Errorf("shardmap: %d partitions is outside %d..%d (at least one per shard)", partitions, shards, MaxPartitions)
	}
	return nil
}

// assigner holds, for each shard, the partitions it owns in ascending order.
type assigner struct {
	owned [][]int
}

// step reassigns every partition to shards 0..m-1 with balanced quotas.
func (a *assigner) step(m int) {
	var pool []int
	for s := m; s < len(a.owned); s++ { // orphans of removed shards
		pool = append(pool, a.owned[s]...)
	}
	for len(a.owned) < m {
		a.owned = append(a.owned, nil)
	}
	a.owned = a.owned[:m]

	total := len(pool)
	order := make([]int, m)
	for s := range order {
		order[s] = s
		total += len(a.owned[s])
	}
	// The extra partitions (total % m) stay with the fullest shards.
	slices.SortFunc(order, func(x, y int) int {
		if c := cmp.Compare(len(a.owned[y]), len(a.owned[x])); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	quota := make([]int, m)
	base, extra := total/m, total%m
	for j, s := range order {
		quota[s] = base
		if j < extra {
			quota[s]++
		}
	}
	for s, q := range quota {
		if have := a.owned[s]; len(have) > q {
			pool = append(pool, have[q:]...)
			a.owned[s] = have[:q:q]
		}
	}
	slices.Sort(pool)
	for s, q := range quota {
		if need := q - len(a.owned[s]); need > 0 {
			a.owned[s] = append(a.owned[s], pool[:need]...)
			pool = pool[need:]
			slices.Sort(a.owned[s])
		}
	}
}

func (a *assigner) table(partitions int) []int {
	t := make([]int, partitions)
	for s, ps := range a.owned {
		for _, p := range ps {
			t[p] = s
		}
	}
	return t
}
