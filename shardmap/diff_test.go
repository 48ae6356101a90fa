package shardmap

import (
	"fmt"
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	const base = `
version: 1
shards: [a, b, c]
tables:
  - {table: public.users, column: id, partitions: 64}
  - {table: mod, column: id, function: modulo}
  - table: rng
    column: id
    function: range
    ranges: [{to: 100, shard: a}, {from: 100, to: 200, shard: b}, {from: 300, shard: c}]
  - table: lst
    column: cc
    type: text
    function: list
    list: [{values: [us, ca], shard: a}, {values: [de], shard: b}]
    default: c
reference_tables: [countries]
`
	tests := []struct {
		name     string
		next     string
		changes  map[string]Change
		added    []string
		removed  []string
		refAdded []string
		refGone  []string
		moves    int // len(PartitionMoves) of public.users
	}{
		{
			name:    "identical",
			next:    base,
			changes: map[string]Change{"public.users": Unchanged, "mod": Unchanged, "rng": Unchanged, "lst": Unchanged},
		},
		{
			name: "same mapping written differently",
			next: `
version: 2
shards: [a, b, c]
tables:
  - {table: public.users, column: id, partitions: 64, partition_table: [a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,c,c,c,c,c,c,c,c,c,c,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,c,c,c,c,c,c,c,c,c,c,c]}
  - {table: mod, column: id, function: modulo}
  - table: rng
    column: id
    function: range
    ranges: [{to: 50, shard: a}, {from: 50, to: 100, shard: 0}, {from: 100, to: 200, shard: b}, {from: 300, shard: c}]
  - table: lst
    column: cc
    type: text
    function: list
    list: [{values: [ca], shard: a}, {values: [de], shard: b}, {values: [us], shard: a}]
    default: c
reference_tables: [countries]
`,
			changes: map[string]Change{"public.users": Unchanged, "mod": Unchanged, "rng": Unchanged, "lst": Unchanged},
		},
		{
			name: "add a shard",
			next: `
version: 2
shards: [a, b, c, d]
tables:
  - {table: public.users, column: id, partitions: 64}
  - {table: mod, column: id, function: modulo}
  - table: rng
    column: id
    function: range
    ranges: [{to: 100, shard: a}, {from: 100, to: 200, shard: b}, {from: 300, shard: c}]
  - table: lst
    column: cc
    type: text
    function: list
    list: [{values: [us, ca], shard: a}, {values: [de], shard: b}]
    default: c
reference_tables: [countries]
`,
			changes: map[string]Change{"public.users": PartitionsMove, "mod": KeysMove, "rng": Unchanged, "lst": Unchanged},
			added:   []string{"d"},
			moves:   16,
		},
		{
			name: "reorder shard names",
			next: `
version: 2
shards: [c, b, a]
tables:
  - {table: public.users, column: id, partitions: 64, partition_table: [a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,c,c,c,c,c,c,c,c,c,c,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,c,c,c,c,c,c,c,c,c,c,c]}
  - {table: mod, column: id, function: modulo}
  - table: rng
    column: id
    function: range
    ranges: [{to: 100, shard: a}, {from: 100, to: 200, shard: b}, {from: 300, shard: c}]
  - table: lst
    column: cc
    type: text
    function: list
    list: [{values: [us, ca], shard: a}, {values: [de], shard: b}]
    default: c
reference_tables: [countries]
`,
			// The same partition table by name moves nothing (nor do
			// range and list, which name their shards); modulo numbers
			// the shards, so renumbering them moves keys.
			changes: map[string]Change{"public.users": Unchanged, "mod": KeysMove, "rng": Unchanged, "lst": Unchanged},
		},
		{
			name: "remove a shard, change functions and tables",
			next: `
version: 2
shards: [a, b]
tables:
  - {table: public.users, column: id, partitions: 64}
  - {table: mod, column: id}
  - table: rng
    column: id
    function: range
    ranges: [{to: 100, shard: a}, {from: 100, shard: b}]
  - {table: lst, column: cc, type: uuid}
  - {table: countries, column: id}
reference_tables: [currencies]
`,
			changes:  map[string]Change{"public.users": PartitionsMove, "mod": KeysMove, "rng": KeysMove, "lst": KeysMove, "countries": Added},
			removed:  []string{"c"},
			refAdded: []string{"currencies"},
			refGone:  []string{"countries"},
			moves:    21, // the partitions of c
		},
		{
			name: "drop tables",
			next: `
version: 2
shards: [a, b, c]
tables:
  - {table: public.users, column: id, partitions: 63}
`,
			changes: map[string]Change{"public.users": KeysMove, "mod": Removed, "rng": Removed, "lst": Removed},
			refGone: []string{"countries"},
		},
	}
	old := mustMap(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff(old, mustMap(t, tc.next))
			got := map[string]Change{}
			var names []string
			for _, td := range d.Tables {
				got[td.Name] = td.Change
				names = append(names, td.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.changes) {
				t.Errorf("changes %v, want %v", got, tc.changes)
			}
			if !slices.IsSorted(names) {
				t.Errorf("tables not sorted: %v", names)
			}
			if !slices.Equal(d.ShardsAdded, tc.added) || !slices.Equal(d.ShardsRemoved, tc.removed) {
				t.Errorf("shards added %v removed %v, want %v %v", d.ShardsAdded, d.ShardsRemoved, tc.added, tc.removed)
			}
			if !slices.Equal(d.ReferenceAdded, tc.refAdded) || !slices.Equal(d.ReferenceRemoved, tc.refGone) {
				t.Errorf("references added %v removed %v, want %v %v", d.ReferenceAdded, d.ReferenceRemoved, tc.refAdded, tc.refGone)
			}
			users, _ := d.Table("public.users")
			if len(users.PartitionMoves) != tc.moves {
				t.Errorf("users: %d partition moves, want %d", len(users.PartitionMoves), tc.moves)
			}
		})
	}
}

func TestDiffMoves(t *testing.T) {
	old := mustMap(t, `
version: 1
shards: [a, b, c]
tables:
  - table: lst
    column: cc
    type: text
    function: list
    list: [{values: [us], shard: a}, {values: [de], shard: b}, {values: [fr], shard: c}]
  - {table: gone, column: id}
`)
	next := mustMap(t, `
version: 2
shards: [b, a, d]
tables:
  - table: lst
    column: cc
    type: text
    function: list
    list: [{values: [us], shard: a}, {values: [de], shard: d}, {values: [jp], shard: b}]
  - {table: public.fresh, column: id}
`)
	d := Diff(old, next)
	tests := []struct {
		table    string
		key      Key
		from, to int
		moved    bool
	}{
		{"lst", TextKey("us"), 0, 1, false}, // a stays a (renumbered 0 → 1)
		{"lst", TextKey("de"), 1, 2, true},  // b → d
		{"lst", TextKey("fr"), 2, NoShard, true},
		{"lst", TextKey("jp"), NoShard, 0, true},
		{"lst", TextKey("xx"), NoShard, NoShard, false},
		{"lst", Int64Key(1), NoShard, NoShard, false},
		// Hash tables: from/to are filled in from the maps below.
		{"gone", Int64Key(1), 0, NoShard, true},
		{"fresh", Int64Key(1), NoShard, 0, true},
		{"public.fresh", Int64Key(1), NoShard, 0, true},
		{"never", Int64Key(1), NoShard, NoShard, false},
	}
	for _, tc := range tests {
		from, to, moved := d.Moves(tc.table, tc.key)
		if tc.table == "gone" || tc.table == "fresh" || tc.table == "public.fresh" {
			// The hash shard is whatever the map says; check consistency.
			if tb, ok := old.Table(tc.table); ok {
				tc.from, _ = tb.ShardFor(tc.key)
			}
			if tb, ok := next.Table(tc.table); ok {
				tc.to, _ = tb.ShardFor(tc.key)
			}
		}
		if from != tc.from || to != tc.to || moved != tc.moved {
			t.Errorf("%s %v: (%d, %d, %v), want (%d, %d, %v)", tc.table, tc.key, from, to, moved, tc.from, tc.to, tc.moved)
		}
	}
	if !slices.Equal(d.ShardsAdded, []string{"d"}) || !slices.Equal(d.ShardsRemoved, []string{"c"}) {
		t.Errorf("shards: +%v -%v", d.ShardsAdded, d.ShardsRemoved)
	}
	td, _ := d.Table("lst")
	if td.Change != KeysMove {
		t.Errorf("lst: %v", td.Change)
	}
	if _, err := td.PartitionOf(TextKey("us")); err == nil {
		t.Error("PartitionOf on a list table should fail")
	}
	if from, to, moved := td.Moves(TextKey("de")); from != 1 || to != 2 || !moved {
		t.Errorf("TableDiff.Moves: %d %d %v", from, to, moved)
	}
	if _, ok := d.Table("nope"); ok {
		t.Error("Table(nope)")
	}
}

func TestDiffByNumber(t *testing.T) {
	// Counted shards match by number, also against named ones.
	old := oneTableMap(t, 3, FunctionConfig{Partitions: 48})
	named := mustMap(t, `
version: 2
shards: [x, y]
tables:
  - {table: t, column: k, partitions: 48}
`)
	d := Diff(old, named)
	if !slices.Equal(d.ShardsRemoved, []string{"2"}) || d.ShardsAdded != nil {
		t.Fatalf("shards: +%v -%v", d.ShardsAdded, d.ShardsRemoved)
	}
	td, _ := d.Table("t")
	for _, pm := range td.PartitionMoves {
		if pm.From != 2 {
			t.Fatalf("only shard 2's partitions move: %+v", pm)
		}
	}
	if len(td.PartitionMoves) != 16 {
		t.Fatalf("%d moves, want 16", len(td.PartitionMoves))
	}
	if _, err := td.PartitionOf(TextKey("x")); err == nil {
		t.Fatal("PartitionOf with the wrong key type should fail")
	}
}
