package shardmap

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchMap builds a 16-shard map with one table per function and type:
// hash with 4096 partitions, 64 ranges, 1024 list values.
func benchMap(b *testing.B) *Map {
	b.Helper()
	const shards = 16
	c := Config{Version: 1, Shards: Shards{Count: shards}}
	for _, typ := range fuzzTypes {
		c.Tables = append(c.Tables, TableConfig{Table: "hash_" + typ.String(), Column: "k", FunctionConfig: FunctionConfig{Type: typ.String()}})

		var ranges []RangeConfig
		var list []ListConfig
		for i := 0; i < 64; i++ {
			from, to := boundText(typ, i), boundText(typ, i+1)
			rc := RangeConfig{From: &from, To: &to, Shard: ShardRef(strconv.Itoa(i % shards))}
			if i == 0 {
				rc.From = nil
			}
			if i == 63 {
				rc.To = nil
			}
			ranges = append(ranges, rc)
		}
		for i := 0; i < 1024; i += 16 {
			var vals []string
			for j := i; j < i+16; j++ {
				vals = append(vals, benchKey(typ, j).text())
			}
			list = append(list, ListConfig{Values: vals, Shard: ShardRef(strconv.Itoa(i / 16 % shards))})
		}
		c.Tables = append(c.Tables,
			TableConfig{Table: "range_" + typ.String(), Column: "k", FunctionConfig: FunctionConfig{Type: typ.String(), Function: RangeName, Ranges: ranges}},
			TableConfig{Table: "list_" + typ.String(), Column: "k", FunctionConfig: FunctionConfig{Type: typ.String(), Function: ListName, List: list, Default: "0"}},
		)
	}
	c.Tables = append(c.Tables, TableConfig{Table: "modulo_bigint", Column: "k", FunctionConfig: FunctionConfig{Function: ModuloName}})
	m, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// boundText is the i-th of 64 evenly spaced range bounds of a type.
func boundText(typ KeyType, i int) string {
	switch typ {
	case Bigint:
		return strconv.FormatInt(int64(i)<<20, 10)
	case Text:
		return fmt.Sprintf("k%02d", i)
	}
	return fmt.Sprintf("%02x000000-0000-0000-0000-000000000000", i*4)
}

// benchKey is a key in the same domain as the bounds and list values.
func benchKey(typ KeyType, i int) benchKeyT {
	switch typ {
	case Bigint:
		return benchKeyT{Int64Key(int64(i) * 65599 % (64 << 20))}
	case Text:
		return benchKeyT{TextKey(fmt.Sprintf("k%02d-user-%06d", i%64, i))}
	}
	r := rand.New(rand.NewPCG(uint64(i), 1))
	var u [16]byte
	for j := range u {
		u[j] = byte(r.Uint32())
	}
	return benchKeyT{UUIDKey(u)}
}

type benchKeyT struct{ Key }

func (k benchKeyT) text() string {
	if k.Type() == Text {
		return k.Text()
	}
	return k.String()
}

type benchCase struct {
	fn, table string
	typ       KeyType
}

func benchCases() []benchCase {
	var cs []benchCase
	for _, fn := range []string{ModuloName, HashName, RangeName, ListName} {
		for _, typ := range fuzzTypes {
			if fn == ModuloName && typ != Bigint {
				continue
			}
			cs = append(cs, benchCase{fn, fn + "_" + typ.String(), typ})
		}
	}
	return cs
}

const benchKeys = 1024 // a power of two

func benchKeySet(typ KeyType) []Key {
	keys := make([]Key, benchKeys)
	for i := range keys {
		keys[i] = benchKey(typ, i).Key
	}
	return keys
}

// BenchmarkShardFor measures Map.ShardFor, table name lookup included, over
// 1024 distinct keys.
func BenchmarkShardFor(b *testing.B) {
	m := benchMap(b)
	for _, c := range benchCases() {
		keys := benchKeySet(c.typ)
		b.Run(c.fn+"/"+c.typ.String(), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.ShardFor(c.table, keys[i&(benchKeys-1)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkShardForParallel is BenchmarkShardFor from every P at once: a
// Map is shared read-only, so it should scale with cores.
func BenchmarkShardForParallel(b *testing.B) {
	m := benchMap(b)
	for _, c := range benchCases() {
		keys := benchKeySet(c.typ)
		b.Run(c.fn+"/"+c.typ.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := m.ShardFor(c.table, keys[i&(benchKeys-1)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkShardsFor measures a 64-key batch (an IN list) on a resolved table.
func BenchmarkShardsFor(b *testing.B) {
	m := benchMap(b)
	for _, c := range benchCases() {
		keys := benchKeySet(c.typ)[:64]
		tb, _ := m.Table(c.table)
		b.Run(c.fn+"/"+c.typ.String(), func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]int, 0, len(keys))
			for b.Loop() {
				dst = tb.ShardsFor(keys, dst[:0])
			}
		})
	}
}

// BenchmarkDecode measures the wire decoders.
func BenchmarkDecode(b *testing.B) {
	inputs := []struct {
		name   string
		typ    KeyType
		format int16
		src    []byte
	}{
		{"text/bigint", Bigint, TextFormat, []byte("1234567890123")},
		{"text/text", Text, TextFormat, []byte("user-1234567890")},
		{"text/uuid", UUID, TextFormat, []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")},
		{"binary/bigint", Bigint, BinaryFormat, []byte{0, 0, 1, 2, 3, 4, 5, 6}},
		{"binary/uuid", UUID, BinaryFormat, []byte("0123456789abcdef")},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := in.typ.Decode(in.src, in.format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNew measures compiling a map (a reload), dominated by the
// default partition tables.
func BenchmarkNew(b *testing.B) {
	for _, shards := range []int{4, 64, 1024} {
		c := Config{Version: 1, Shards: Shards{Count: shards}, Tables: []TableConfig{{Table: "t", Column: "k"}}}
		b.Run(strconv.Itoa(shards)+"shards", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
