package shardmap_test

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tiergate/tiergate/shardmap"
)

func exampleConfig(version int, shards ...string) shardmap.Config {
	return shardmap.Config{
		Version: version,
		Shards:  shardmap.Shards{Names: shards},
		KeySpaces: []shardmap.KeySpaceConfig{
			{Name: "users", FunctionConfig: shardmap.FunctionConfig{Type: "bigint", Function: "hash"}},
		},
		Tables: []shardmap.TableConfig{
			{Table: "public.users", Column: "id", KeySpace: "users"},
			{Table: "orders", Column: "user_id", KeySpace: "users"},
		},
		ReferenceTables: []string{"countries"},
	}
}

// The router's hot path: resolve the table once per statement, decode the
// Bind parameter in its wire format, ask for the shard.
func Example_router() {
	var current atomic.Pointer[shardmap.Map] // swapped on config reload
	m, err := shardmap.New(exampleConfig(1, "pg0", "pg1", "pg2"))
	if err != nil {
		panic(err)
	}
	current.Store(m)

	// INSERT INTO orders (user_id, ...) VALUES ($1, ...) with $1 bound as a
	// binary int8.
	param, format := []byte{0, 0, 0, 0, 0, 0, 0x30, 0x39}, shardmap.BinaryFormat

	m = current.Load()
	switch t, ok := m.Table("orders"); {
	case ok:
		key, err := t.Type().Decode(param, format)
		if err != nil {
			fmt.Println("bad key:", errors.Is(err, shardmap.ErrBadKey))
			return
		}
		shard, err := t.ShardFor(key)
		if err != nil {
			fmt.Println(err)
			return
		}
		users, _ := m.Table("users") // public.users via the default search_path
		same, _ := users.ShardFor(key)
		fmt.Printf("user %v → %s (co-located with users: %v, %v)\n", key, m.ShardName(shard), t.CoLocated(users), same == shard)
	case m.IsReference("orders"):
		fmt.Println("any shard for reads, all shards for writes")
	default:
		fmt.Println("not sharded")
	}
	// Output:
	// user 12345 → pg1 (co-located with users: true, true)
}

// The resharder's view of adding a shard: which hash partitions move, and a
// per-key check that works for every function.
func ExampleDiff() {
	old, _ := shardmap.New(exampleConfig(1, "pg0", "pg1", "pg2"))
	next, _ := shardmap.New(exampleConfig(2, "pg0", "pg1", "pg2", "pg3"))
	d := shardmap.Diff(old, next)
	fmt.Println("shards added:", d.ShardsAdded)
	for _, td := range d.Tables {
		perShard := map[string]int{}
		for _, pm := range td.PartitionMoves {
			perShard[old.ShardName(pm.From)+"→"+next.ShardName(pm.To)]++
		}
		fmt.Printf("%s: %s, %d of %d partitions: %v\n", td.Name, td.Change, len(td.PartitionMoves), td.Partitions, perShard)
	}
	from, to, moved := d.Moves("orders", shardmap.Int64Key(12345))
	fmt.Println("user 12345:", old.ShardName(from), "→", next.ShardName(to), moved)
	// Output:
	// shards added: [pg3]
	// orders: partitions move, 1024 of 4096 partitions: map[pg0→pg3:342 pg1→pg3:341 pg2→pg3:341]
	// public.users: partitions move, 1024 of 4096 partitions: map[pg0→pg3:342 pg1→pg3:341 pg2→pg3:341]
	// user 12345: pg1 → pg1 false
}
