package shardmap

import (
	"math"
	"math/rand/v2"
	"testing"
)

const propertyKeys = 100_000

// randomKeys returns n reproducible keys of type typ.
func randomKeys(typ KeyType, n int, seed uint64) []Key {
	r := rand.New(rand.NewPCG(seed, 0x5ad))
	keys := make([]Key, n)
	for i := range keys {
		switch typ {
		case Bigint:
			keys[i] = Int64Key(int64(r.Uint64()))
		case Text:
			b := make([]byte, 8+r.IntN(17)) // long enough to be distinct
			for j := range b {
				b[j] = 'a' + byte(r.IntN(26))
			}
			keys[i] = TextKey(string(b))
		case UUID:
			var u [16]byte
			for j := range u {
				u[j] = byte(r.Uint32())
			}
			keys[i] = UUIDKey(u)
		}
	}
	return keys
}

func oneTableMap(t testing.TB, shards int, f FunctionConfig) *Map {
	t.Helper()
	m, err := New(Config{
		Version: shards,
		Shards:  Shards{Count: shards},
		Tables:  []TableConfig{{Table: "t", Column: "k", FunctionConfig: f}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHashGrowthMovesOneShare: going N → N+1 shards moves ≈ 1/(N+1) of the
// keys, all to the new shard, and Diff's partition list agrees with the
// per-key answer.
func TestHashGrowthMovesOneShare(t *testing.T) {
	for _, typ := range []KeyType{Bigint, Text, UUID} {
		keys := randomKeys(typ, propertyKeys, uint64(typ))
		for n := 2; n <= 8; n++ {
			f := FunctionConfig{Type: typ.String(), Function: HashName}
			d := Diff(oneTableMap(t, n, f), oneTableMap(t, n+1, f))
			td, ok := d.Table("t")
			if !ok || td.Change != PartitionsMove || td.Partitions != DefaultPartitions {
				t.Fatalf("%s %d→%d: diff %+v", typ, n, n+1, td)
			}
			moving := map[int]PartitionMove{}
			for _, pm := range td.PartitionMoves {
				moving[pm.Partition] = pm
			}
			moved := 0
			for _, k := range keys {
				from, to, mv := d.Moves("t", k)
				p, err := td.PartitionOf(k)
				if err != nil {
					t.Fatal(err)
				}
				pm, listed := moving[p]
				if mv != listed || listed && (pm.From != from || pm.To != to) {
					t.Fatalf("%s %d→%d key %v: Moves (%d, %d, %v) but partition %d listed=%v %+v", typ, n, n+1, k, from, to, mv, p, listed, pm)
				}
				if mv {
					moved++
					if to != n {
						t.Fatalf("%s %d→%d: key moved to shard %d, not the new one", typ, n, n+1, to)
					}
				}
			}
			frac, want := float64(moved)/propertyKeys, 1/float64(n+1)
			if math.Abs(frac-want) > 0.01 {
				t.Errorf("%s %d→%d: %.4f of keys moved, want ≈ %.4f", typ, n, n+1, frac, want)
			}
		}
	}
}

// TestModuloGrowthMovesMost: modulo N → N+1 moves ≈ N/(N+1) of the keys.
func TestModuloGrowthMovesMost(t *testing.T) {
	keys := randomKeys(Bigint, propertyKeys, 1)
	for n := 2; n <= 8; n++ {
		f := FunctionConfig{Function: ModuloName}
		d := Diff(oneTableMap(t, n, f), oneTableMap(t, n+1, f))
		if td, _ := d.Table("t"); td.Change != KeysMove {
			t.Fatalf("modulo %d→%d: change %v", n, n+1, td.Change)
		}
		moved := 0
		for _, k := range keys {
			from, to, mv := d.Moves("t", k)
			if mv != (from != to) {
				t.Fatalf("moved %v from %d to %d", mv, from, to)
			}
			if mv {
				moved++
			}
		}
		frac, want := float64(moved)/propertyKeys, float64(n)/float64(n+1)
		if math.Abs(frac-want) > 0.01 {
			t.Errorf("modulo %d→%d: %.4f of keys moved, want ≈ %.4f", n, n+1, frac, want)
		}
	}
}

// TestHashBalance: keys spread evenly over the shards.
func TestHashBalance(t *testing.T) {
	for _, typ := range []KeyType{Bigint, Text, UUID} {
		keys := randomKeys(typ, propertyKeys, 100+uint64(typ))
		for _, n := range []int{2, 3, 5, 7, 8, 16} {
			tb, _ := oneTableMap(t, n, FunctionConfig{Type: typ.String()}).Table("t")
			count := make([]int, n)
			for _, s := range tb.ShardsFor(keys, nil) {
				count[s]++
			}
			// Four binomial standard deviations (about 1.8% for 2 shards,
			// 3.6% for 8, 5% for 16) plus the partition granularity.
			mean := float64(propertyKeys) / float64(n)
			tol := 4/math.Sqrt(mean) + 1/float64(DefaultPartitions/n)
			t.Logf("%s %d shards: max dev %.2f%%", typ, n, 100*maxDev(count, mean))
			for s, c := range count {
				if dev := math.Abs(float64(c)-mean) / mean; dev > tol {
					t.Errorf("%s, %d shards: shard %d has %d keys, %.1f%% off the mean", typ, n, s, c, 100*dev)
				}
			}
		}
	}
}

// TestDiffAgreesPerKey: for any pair of maps, Diff's summary is consistent
// with the per-key Moves.
func TestDiffAgreesPerKey(t *testing.T) {
	keys := randomKeys(Bigint, 20_000, 7)
	pairs := []struct {
		name     string
		old, new FunctionConfig
		on, nn   int
	}{
		{"partitions ×4", FunctionConfig{Partitions: 1024}, FunctionConfig{Partitions: 4096}, 3, 3},
		{"partitions ÷2 and a shard", FunctionConfig{Partitions: 4096}, FunctionConfig{Partitions: 2048}, 3, 4},
		{"shrink", FunctionConfig{}, FunctionConfig{}, 5, 4},
		{"hash to modulo", FunctionConfig{}, FunctionConfig{Function: ModuloName}, 4, 4},
		{"same modulo", FunctionConfig{Function: ModuloName}, FunctionConfig{Function: ModuloName}, 4, 4},
	}
	for _, p := range pairs {
		d := Diff(oneTableMap(t, p.on, p.old), oneTableMap(t, p.nn, p.new))
		td, _ := d.Table("t")
		moving := map[int]bool{}
		for _, pm := range td.PartitionMoves {
			moving[pm.Partition] = true
		}
		any := false
		for _, k := range keys {
			_, _, mv := td.Moves(k)
			any = any || mv
			switch td.Change {
			case Unchanged:
				if mv {
					t.Fatalf("%s: unchanged table but key %v moves", p.name, k)
				}
			case PartitionsMove:
				part, _ := td.PartitionOf(k)
				if mv != moving[part] {
					t.Fatalf("%s: key %v moves=%v, partition %d listed=%v", p.name, k, mv, part, moving[part])
				}
			}
		}
		if td.Change != Unchanged && !any {
			t.Errorf("%s: change %v but no key moved", p.name, td.Change)
		}
	}
}

func maxDev(count []int, mean float64) float64 {
	d := 0.0
	for _, c := range count {
		d = max(d, math.Abs(float64(c)-mean)/mean)
	}
	return d
}
