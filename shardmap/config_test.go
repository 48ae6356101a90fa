package shardmap

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error, in order
	}{
		{
			name: "version and shards required",
			src:  "tables: []\n",
			want: []string{"version: must be at least 1", "shards: 0 shards is outside 1..4096"},
		},
		{
			name: "too many shards",
			src:  "version: 1\nshards: 5000\n",
			want: []string{"shards.yaml:2: shards: 5000 shards is outside"},
		},
		{
			name: "shards neither count nor list",
			src:  "version: 1\nshards: many\n",
			want: []string{"shards.yaml:2:", "shards must be a count or a list of names"},
		},
		{
			name: "duplicate and empty shard names",
			src:  "version: 1\nshards: [a, b, a, \"\"]\n",
			want: []string{`shards[2]: duplicate shard name "a"`, "shards[3]: a shard name must not be empty"},
		},
		{
			name: "modulo on text",
			src:  "version: 1\nshards: 2\ntables:\n  - table: t\n    column: c\n    type: text\n    function: modulo\n",
			want: []string{"shards.yaml:7: tables[0].function: modulo needs type bigint, not text"},
		},
		{
			name: "unknown type and function",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c, type: int, function: crc}\n",
			want: []string{`tables[0].type: "int" is not one of bigint, text, uuid`, `tables[0].function: "crc" is not one of hash, modulo, range, list`},
		},
		{
			name: "table and column required",
			src:  "version: 1\nshards: 2\ntables:\n  - {type: bigint}\n",
			want: []string{"tables[0].table: is required", "tables[0].column: is required"},
		},
		{
			name: "bad table name",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: a.b.c, column: c}\nreference_tables: [x., ok]\n",
			want: []string{`tables[0].table: "a.b.c" is not a table`, `reference_tables[0]: "x." is not a table`},
		},
		{
			name: "duplicate tables",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c}\n  - {table: t, column: d}\nreference_tables: [r, t, r]\n",
			want: []string{`shards.yaml:5: tables[1].table: "t" is already configured at tables[0]`, `reference_tables[1]: "t" is already configured at tables[0]`, `reference_tables[2]: "r" is already configured at reference_tables[0]`},
		},
		{
			name: "partitions below shards",
			src:  "version: 1\nshards: 8\ntables:\n  - {table: t, column: c, partitions: 4}\n",
			want: []string{"tables[0].partitions: 4 is outside 8..1048576"},
		},
		{
			name: "partition table length and unknown shards",
			src:  "version: 1\nshards: [a, b]\ntables:\n  - {table: t, column: c, partitions: 4, partition_table: [a, b, c, 2]}\n  - {table: u, column: c, partitions: 4, partition_table: [a, b]}\n",
			want: []string{`tables[0].partition_table[2]: unknown shard "c" (known: a, b)`, "tables[0].partition_table[3]: shard 2 is outside 0..1", "tables[1].partition_table: has 2 entries, want one per partition (4)"},
		},
		{
			name: "many bad partition table entries are capped",
			src:  "version: 1\nshards: 1\ntables:\n  - {table: t, column: c, partitions: 8, partition_table: [9, 9, 9, 9, 9, 9, 9, 9]}\n",
			want: []string{"partition_table[0]", "partition_table[4]", "tables[0].partition_table: 3 more bad entries"},
		},
		{
			name: "fields of another function",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c, function: range, partitions: 8, ranges: [{shard: 0}], list: [{values: [1], shard: 0}]}\n  - {table: u, column: c, default: 1}\n",
			want: []string{"tables[0].partitions: is only used with function hash, not range", "tables[0].list: is only used with function list, not range", "tables[1].default: is only used with function range or list, not hash"},
		},
		{
			name: "overlapping ranges",
			src: `version: 1
shards: 3
tables:
  - table: t
    column: c
    function: range
    ranges:
      - {from: 100, to: 200, shard: 0}
      - {from: 0, to: 101, shard: 1}
      - {from: 500, shard: 2}
      - {from: 600, to: 700, shard: 2}
`,
			want: []string{"shards.yaml:9: tables[0].ranges[1]: overlaps ranges[0]", "shards.yaml:11: tables[0].ranges[3]: overlaps ranges[2]"},
		},
		{
			name: "two unbounded-below ranges overlap",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c, type: text, function: range, ranges: [{to: m, shard: 0}, {to: z, shard: 1}]}\n",
			want: []string{"tables[0].ranges[1]: overlaps ranges[0]"},
		},
		{
			name: "empty and unparsable ranges",
			src: `version: 1
shards: 2
tables:
  - table: t
    column: c
    type: uuid
    function: range
    ranges:
      - {from: "not-a-uuid", shard: 0}
      - {from: "80000000-0000-0000-0000-000000000000", to: "80000000-0000-0000-0000-000000000000", shard: 1}
      - {to: "10000000-0000-0000-0000-000000000000"}
    default: 7
`,
			want: []string{
				"shards.yaml:12: tables[0].default: shard 7 is outside 0..1",
				`shards.yaml:9: tables[0].ranges[0].from: "not-a-uuid" is not a valid uuid`,
				"shards.yaml:10: tables[0].ranges[1].to: 80000000-0000-0000-0000-000000000000 is not above from",
				"shards.yaml:11: tables[0].ranges[2].shard: is required",
			},
		},
		{
			name: "range needs ranges",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c, function: range, default: 0}\n",
			want: []string{"tables[0].ranges: at least one range is required"},
		},
		{
			name: "duplicate list values",
			src: `version: 1
shards: 2
tables:
  - table: t
    column: c
    function: list
    list:
      - {values: [1, 2, 3], shard: 0}
      - {values: [4, "0x2", x], shard: 1}
      - {values: [], shard: 1}
`,
			want: []string{"tables[0].list[1].values[1]: duplicate value 2 (also list[0].values[1])", `tables[0].list[1].values[2]: "x" is not a valid bigint`, "tables[0].list[2].values: at least one value is required"},
		},
		{
			name: "duplicate uuid list values in another spelling",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c, type: uuid, function: list, list: [{values: [a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11, \"{A0EEBC999C0B4EF8BB6D6BB9BD380A11}\"], shard: 0}]}\n",
			want: []string{"tables[0].list[0].values[1]: duplicate value a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 (also list[0].values[0])"},
		},
		{
			name: "list needs entries",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c, function: list}\n",
			want: []string{"tables[0].list: at least one entry is required"},
		},
		{
			name: "key spaces",
			src: `version: 1
shards: 2
key_spaces:
  - {name: a}
  - {name: a}
  - {function: modulo, type: uuid}
tables:
  - {table: t, column: c, key_space: b}
  - {table: u, column: c, key_space: a, type: text}
`,
			want: []string{`key_spaces[1].name: duplicate key space "a"`, "key_spaces[2].name: is required", "key_spaces[2].function: modulo needs type bigint", `tables[0].key_space: unknown key space "b"`, "tables[1].key_space: set either key_space or the function fields"},
		},
		{
			name: "unknown field",
			src:  "version: 1\nshards: 2\ntables:\n  - {table: t, column: c, partition: 4}\n",
			want: []string{"tables[0].partition: unknown field", `did you mean "partitions"?`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(t, tc.src)
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error does not wrap config.ErrInvalid: %v", err)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error\n%s\ndoes not contain %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, `
version: 2
shards: 3
key_spaces:
  - name: ks
tables:
  - {table: a, column: id}
  - {table: b, column: id, key_space: ks}
  - {table: c, column: id, function: list, list: [{values: [1], shard: 2}]}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := FunctionConfig{Type: "bigint", Function: "hash", Partitions: 4096}
	if got := c.KeySpaces[0].FunctionConfig; got.Type != want.Type || got.Function != want.Function || got.Partitions != want.Partitions {
		t.Errorf("key space defaults: %+v", got)
	}
	if got := c.Tables[0].FunctionConfig; got.Type != want.Type || got.Function != want.Function || got.Partitions != want.Partitions {
		t.Errorf("table defaults: %+v", got)
	}
	if !c.Tables[1].FunctionConfig.isZero() {
		t.Errorf("a table with a key space gets no defaults: %+v", c.Tables[1].FunctionConfig)
	}
	if got := c.Tables[2].FunctionConfig; got.Partitions != 0 || got.Type != "bigint" {
		t.Errorf("list defaults: %+v", got)
	}
	// New applies the same defaults without SetDefaults.
	raw := Config{Version: 1, Shards: Shards{Count: 2}, Tables: []TableConfig{{Table: "t", Column: "c"}}}
	m, err := New(raw)
	if err != nil {
		t.Fatal(err)
	}
	if tb, _ := m.Table("t"); tb.Function() != Hash || tb.Type() != Bigint || tb.Partitions() != DefaultPartitions {
		t.Errorf("New defaults: %v %v %d", tb.Function(), tb.Type(), tb.Partitions())
	}
	if raw.Tables[0].Type != "" {
		t.Error("New must not modify its config")
	}
}

func TestShardsYAML(t *testing.T) {
	for _, src := range []string{"4", "[a, b, c]"} {
		var s Shards
		if err := yaml.Unmarshal([]byte(src), &s); err != nil {
			t.Fatal(err)
		}
		out, err := yaml.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Shards
		if err := yaml.Unmarshal(out, &back); err != nil || back.Len() != s.Len() || back.Count != s.Count {
			t.Errorf("%s: round trip %q → %+v, %v", src, out, back, err)
		}
	}
	var s Shards
	for _, bad := range []string{"{a: 1}", "[[a]]", "x"} {
		if err := yaml.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestExplicitPartitionTable(t *testing.T) {
	m := mustMap(t, `
version: 1
shards: [a, b]
tables:
  - {table: t, column: c, partitions: 4, partition_table: [b, b, 0, a]}
`)
	tb, _ := m.Table("t")
	if got := tb.PartitionTable(); len(got) != 4 || got[0] != 1 || got[1] != 1 || got[2] != 0 || got[3] != 0 {
		t.Fatalf("partition table %v", got)
	}
	for i := int64(0); i < 100; i++ {
		p, _ := tb.PartitionFor(Int64Key(i))
		s, _ := tb.ShardFor(Int64Key(i))
		if s != []int{1, 1, 0, 0}[p] {
			t.Fatalf("key %d: partition %d shard %d", i, p, s)
		}
	}
}

// TestConfigDocExample keeps the example in Config's documentation valid.
func TestConfigDocExample(t *testing.T) {
	m := mustMap(t, `
version: 3
shards: [pg0, pg1, pg2]          # or a count: shards: 3
key_spaces:
  - name: users                  # co-located tables share a key space
    type: bigint
    function: hash
tables:
  - {table: public.users, column: id, key_space: users}
  - {table: orders, column: user_id, key_space: users}
  - table: events
    column: region
    type: text
    function: list
    list:
      - {values: [us, ca], shard: pg0}
      - {values: [de, fr], shard: pg1}
    default: pg2
reference_tables: [countries, currencies]
`)
	events, _ := m.Table("events")
	if s, err := events.ShardFor(TextKey("jp")); err != nil || m.ShardName(s) != "pg2" {
		t.Fatalf("events jp: %d %v", s, err)
	}
	if !m.IsReference("currencies") {
		t.Fatal("currencies is a reference table")
	}
}
