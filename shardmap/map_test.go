package shardmap

import (
	"errors"
	"fmt"
	"testing"
)

func uuidKey(t testing.TB, s string) Key {
	t.Helper()
	k, err := UUID.DecodeText([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestShardFor(t *testing.T) {
	m := mustMap(t, testMapYAML)
	tests := []struct {
		table string
		key   Key
		want  int
		err   error
	}{
		// modulo: Euclidean remainder, negative keys wrap around.
		{"mod_bigint", Int64Key(0), 0, nil},
		{"mod_bigint", Int64Key(7), 3, nil},
		{"mod_bigint", Int64Key(-1), 3, nil},
		{"mod_bigint", Int64Key(-1 << 63), 0, nil},
		{"mod_bigint", Int64Key(1<<63 - 1), 3, nil},
		{"mod_bigint", TextKey("7"), NoShard, ErrBadKey},
		// range bigint: [MinInt64,0)→3, [0,100)→0, [100,200)→1, gap→default 3, [300,∞)→2.
		{"range_bigint", Int64Key(-1 << 63), 3, nil},
		{"range_bigint", Int64Key(-1), 3, nil},
		{"range_bigint", Int64Key(0), 0, nil},
		{"range_bigint", Int64Key(99), 0, nil},
		{"range_bigint", Int64Key(100), 1, nil},
		{"range_bigint", Int64Key(199), 1, nil},
		{"range_bigint", Int64Key(200), 3, nil},
		{"range_bigint", Int64Key(299), 3, nil},
		{"range_bigint", Int64Key(300), 2, nil},
		{"range_bigint", Int64Key(1<<63 - 1), 2, nil},
		// range text: byte order, no default but full coverage.
		{"range_text", TextKey(""), 0, nil},
		{"range_text", TextKey("gzzz"), 0, nil},
		{"range_text", TextKey("h"), 1, nil},
		{"range_text", TextKey("H"), 0, nil},
		{"range_text", TextKey("ozz"), 1, nil},
		{"range_text", TextKey("p"), 2, nil},
		{"range_text", TextKey("\xff"), 2, nil},
		{"range_text", Int64Key(1), NoShard, ErrBadKey},
		// range uuid: gap [8..., c...) → default s3.
		{"range_uuid", UUIDKey([16]byte{}), 0, nil},
		{"range_uuid", uuidKey(t, "3fffffff-ffff-ffff-ffff-ffffffffffff"), 0, nil},
		{"range_uuid", uuidKey(t, "40000000-0000-0000-0000-000000000000"), 1, nil},
		{"range_uuid", uuidKey(t, "7fffffff-ffff-ffff-ffff-ffffffffffff"), 1, nil},
		{"range_uuid", uuidKey(t, "80000000-0000-0000-0000-000000000000"), 3, nil},
		{"range_uuid", uuidKey(t, "c0000000-0000-0000-0000-000000000000"), 2, nil},
		{"range_uuid", uuidKey(t, "ffffffff-ffff-ffff-ffff-ffffffffffff"), 2, nil},
		// list bigint with default.
		{"list_bigint", Int64Key(1), 1, nil},
		{"list_bigint", Int64Key(3), 1, nil},
		{"list_bigint", Int64Key(-7), 2, nil},
		{"list_bigint", Int64Key(16), 2, nil},
		{"list_bigint", Int64Key(4), 0, nil},
		// list text without default.
		{"list_text", TextKey("us"), 0, nil},
		{"list_text", TextKey("fr"), 1, nil},
		{"list_text", TextKey(""), 1, nil},
		{"list_text", TextKey("US"), NoShard, ErrUnknownShard},
		{"list_text", TextKeyBytes([]byte("ca")), 0, nil},
		// list uuid.
		{"list_uuid", uuidKey(t, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), 3, nil},
		{"list_uuid", uuidKey(t, "{a0eebc999c0b4ef8bb6d6bb9bd380a11}"), 3, nil},
		{"list_uuid", UUIDKey([16]byte{1}), 1, nil},
		// tables and names.
		{"nope", Int64Key(1), NoShard, ErrUnknownTable},
		{"countries", Int64Key(1), NoShard, ErrUnknownTable},
		{"users", Key{}, NoShard, ErrBadKey},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.table, tc.key), func(t *testing.T) {
			got, err := m.ShardFor(tc.table, tc.key)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("shard = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestHashTablesAgree(t *testing.T) {
	m := mustMap(t, testMapYAML)
	users, _ := m.Table("users")
	orders, _ := m.Table("orders")
	if !users.CoLocated(orders) || users.KeySpace() != "users" {
		t.Fatal("users and orders share key space users")
	}
	ht, _ := m.Table("hash_text")
	if ht.CoLocated(users) || ht.CoLocated(ht) != true {
		t.Fatal("hash_text co-location")
	}
	for i := int64(-1000); i < 1000; i++ {
		a, err1 := users.ShardFor(Int64Key(i))
		b, err2 := orders.ShardFor(Int64Key(i))
		p, err3 := users.PartitionFor(Int64Key(i))
		if err1 != nil || err2 != nil || err3 != nil || a != b || a != users.PartitionTable()[p] {
			t.Fatalf("key %d: %d %d %d %v %v %v", i, a, b, p, err1, err2, err3)
		}
	}
	if _, err := ht.PartitionFor(Int64Key(1)); !errors.Is(err, ErrBadKey) {
		t.Fatalf("PartitionFor wrong type: %v", err)
	}
	rt, _ := m.Table("range_text")
	if _, err := rt.PartitionFor(TextKey("a")); !errors.Is(err, ErrBadKey) {
		t.Fatalf("PartitionFor on range: %v", err)
	}
}

func TestTableResolution(t *testing.T) {
	m := mustMap(t, `
version: 1
shards: 2
tables:
  - {table: public.users, column: id}
  - {table: events, column: id}
  - {table: audit.log, column: id}
  - {table: public.log, column: id}
  - {table: accounts, column: id}
  - {table: public.accounts, column: id, function: modulo}
reference_tables: [countries, public.currencies, geo.cities]
`)
	tests := []struct {
		name      string
		table     string // "" when not a sharded table
		reference bool
	}{
		{"public.users", "public.users", false},
		{"users", "public.users", false},   // default search_path
		{"app.users", "", false},           // another schema's users
		{"events", "events", false},        // unqualified config: any schema
		{"app.events", "events", false},    //
		{"public.events", "events", false}, //
		{"audit.log", "audit.log", false},  // exact
		{"log", "public.log", false},       // public alias
		{"other.log", "", false},           //
		{"accounts", "accounts", false},    // exact unqualified beats the public alias
		{"public.accounts", "public.accounts", false},
		{"x.accounts", "accounts", false},
		{"countries", "", true},
		{"x.countries", "", true},
		{"currencies", "", true},
		{"public.currencies", "", true},
		{"cities", "", false},
		{"geo.cities", "", true},
		{"", "", false},
		{".", "", false},
		{"users.", "", false},
	}
	for _, tc := range tests {
		tb, ok := m.Table(tc.name)
		got := ""
		if ok {
			got = tb.Name()
		}
		if got != tc.table || m.IsReference(tc.name) != tc.reference {
			t.Errorf("%q: table %q reference %v; want %q %v", tc.name, got, m.IsReference(tc.name), tc.table, tc.reference)
		}
	}
	if len(m.Tables()) != 6 || len(m.ReferenceTables()) != 3 || m.Version() != 1 || m.Shards() != 2 {
		t.Fatal("accessors")
	}
	if m.ShardName(1) != "1" {
		t.Fatal("ShardName")
	}
	if i, ok := m.ShardIndex("1"); !ok || i != 1 {
		t.Fatal("ShardIndex")
	}
	if _, ok := m.ShardIndex("2"); ok {
		t.Fatal("ShardIndex out of range")
	}
}

func TestShardsFor(t *testing.T) {
	m := mustMap(t, testMapYAML)
	keys := []Key{Int64Key(1), Int64Key(4), TextKey("x"), Int64Key(16), {}}
	got, err := m.ShardsFor("list_bigint", keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{1, 0, NoShard, 2, NoShard}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if _, err := m.ShardsFor("nope", keys, nil); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("unknown table: %v", err)
	}
	lt, _ := m.Table("list_text")
	got = lt.ShardsFor([]Key{TextKey("us"), TextKey("zz")}, got[:0])
	if fmt.Sprint(got) != "[0 -1]" {
		t.Fatalf("got %v", got)
	}
}

func TestAccessors(t *testing.T) {
	m := mustMap(t, testMapYAML)
	if m.Version() != 7 || m.Shards() != 4 || m.ShardName(2) != "s2" || m.ShardName(9) != "9" {
		t.Fatal("map accessors")
	}
	if i, ok := m.ShardIndex("s3"); !ok || i != 3 {
		t.Fatal("ShardIndex")
	}
	tb, ok := m.Table("range_uuid")
	if !ok || tb.Column() != "k" || tb.Type() != UUID || tb.Function() != Range || tb.Partitions() != 0 || tb.PartitionTable() != nil {
		t.Fatal("table accessors")
	}
	if d, ok := tb.Default(); !ok || d != 3 {
		t.Fatal("Default")
	}
	lt, _ := m.Table("list_text")
	if _, ok := lt.Default(); ok {
		t.Fatal("list_text has no default")
	}
	u, _ := m.Table("orders")
	if u.Partitions() != 1024 || len(u.PartitionTable()) != 1024 || u.Type() != Bigint || u.Function() != Hash {
		t.Fatal("hash accessors")
	}
}

func TestShardForAllocs(t *testing.T) {
	m := mustMap(t, testMapYAML)
	buf := []byte("some-text-key-longer-than-thirty-two-bytes....")
	u := uuidKey(t, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	cases := []struct {
		table string
		key   Key
	}{
		{"users", Int64Key(42)}, {"hash_text", TextKeyBytes(buf)}, {"hash_uuid", u},
		{"mod_bigint", Int64Key(42)}, {"range_bigint", Int64Key(150)}, {"range_text", TextKeyBytes(buf)},
		{"range_uuid", u}, {"list_bigint", Int64Key(3)}, {"list_text", TextKeyBytes([]byte("us"))}, {"list_uuid", u},
	}
	dst := make([]int, 0, 8)
	for _, c := range cases {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := m.ShardFor(c.table, c.key); err != nil {
				t.Fatal(err)
			}
			tb, _ := m.Table(c.table)
			dst = tb.ShardsFor([]Key{c.key, c.key}, dst[:0])
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs per ShardFor", c.table, allocs)
		}
	}
	for _, typ := range []KeyType{Bigint, Text, UUID} {
		src := map[KeyType][]byte{Bigint: []byte("  -12_345 "), Text: buf, UUID: []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}[typ]
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := typ.DecodeText(src); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("DecodeText(%s): %v allocs", typ, allocs)
		}
	}
}
