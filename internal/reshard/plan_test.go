package reshard

import (
	"errors"
	"strings"
	"testing"

	"github.com/tiergate/tiergate/shardmap"
)

func TestNewPlan(t *testing.T) {
	hash2, hash3 := hashMap(1, "s0, s1"), hashMap(2, "s0, s1, s2")
	for _, tc := range []struct {
		name     string
		old, new string
		// want is the plan's Describe output, or the error's text.
		want []string
		err  error
	}{
		{
			name: "hash 2 to 3", old: hash2, new: hash3,
			want: []string{
				"shard map v1 → v2, shards added: s2",
				"table orders (key user_id bigint): partitions move, 85 of 256 partitions",
				"  s0 → s2 (~32.8% of its rows) (all rows scanned, filtered by key)",
				"  s1 → s2 (~33.6% of its rows) (all rows scanned, filtered by key)",
				"table users (key id bigint): partitions move, 85 of 256 partitions",
				"reference table countries: copy s0 → s2",
			},
		},
		{
			name: "nothing moves", old: hash2, new: hashMap(2, "s0, s1"),
			want: []string{"shard map v1 → v2", "nothing moves"},
		},
		{
			name: "modulo 3 to 2 removes a shard",
			old:  "version: 1\nshards: [a, b, c]\ntables: [{table: t, column: k, function: modulo}]",
			new:  "version: 2\nshards: [a, b]\ntables: [{table: t, column: k, function: modulo}]",
			want: []string{
				"shard map v1 → v2, shards removed: c",
				"table t (key k bigint): keys move",
				`  a → b where (("k" % 2) + 2) % 2 <> 0`,
				`  b → a where (("k" % 2) + 2) % 2 <> 1`,
				"  c → a, b (all rows scanned, filtered by key)",
			},
		},
		{
			name: "modulo 2 to 4 keeps residues mod 2",
			old:  "version: 1\nshards: 2\ntables: [{table: t, column: k, function: modulo}]",
			new:  "version: 2\nshards: 4\ntables: [{table: t, column: k, function: modulo}]",
			want: []string{
				"shard map v1 → v2, shards added: 2, 3",
				`  0 → 2 where (("k" % 4) + 4) % 4 <> 0`,
				`  1 → 3 where (("k" % 4) + 4) % 4 <> 1`,
			},
		},
		{
			name: "hash partitions refined", old: hash2,
			new:  strings.Replace(hash3, "partitions: 256", "partitions: 1024", 1),
			want: []string{"table users (key id bigint): partitions move, 341 of 1024 partitions"},
		},
		{
			name: "table becomes sharded", old: hash2,
			new: strings.Replace(hash3, "reference_tables", "  - {table: extra, column: k, function: modulo}\nreference_tables", 1),
			err: ErrUnsupported,
		},
		{
			name: "shard key type changes", old: "version: 1\nshards: 2\ntables: [{table: t, column: k, function: modulo}]",
			new: "version: 2\nshards: 2\ntables: [{table: t, column: k, type: text, function: hash}]",
			err: ErrUnsupported,
		},
		{
			name: "shard key column changes", old: "version: 1\nshards: 2\ntables: [{table: t, column: k, function: modulo}]",
			new: "version: 2\nshards: 3\ntables: [{table: t, column: j, function: modulo}]",
			err: ErrUnsupported,
		},
		{
			name: "named and numbered shards", old: "version: 1\nshards: 2\ntables: [{table: t, column: k, function: modulo}]",
			new: "version: 2\nshards: [a, b, c]\ntables: [{table: t, column: k, function: modulo}]",
			err: ErrUnsupported,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(mustMap(t, tc.old), mustMap(t, tc.new))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := p.Describe(&b); err != nil {
				t.Fatal(err)
			}
			for _, line := range tc.want {
				if !strings.Contains(b.String(), line+"\n") {
					t.Errorf("plan lacks %q:\n%s", line, b.String())
				}
			}
		})
	}
}

// TestPlanRoutesLikeTheMap checks the plan's sources, targets and
// predicates against shardmap for every key of a range.
func TestPlanRoutesLikeTheMap(t *testing.T) {
	for _, tc := range []struct{ old, new string }{
		{hashMap(1, "s0, s1"), hashMap(2, "s0, s1, s2")},
		{hashMap(1, "s0, s1, s2"), hashMap(2, "s0, s1")},
		{"version: 1\nshards: 3\ntables: [{table: t, column: k, function: modulo}]", "version: 2\nshards: 5\ntables: [{table: t, column: k, function: modulo}]"},
		{"version: 1\nshards: 2\ntables: [{table: t, column: k, function: hash}]", "version: 2\nshards: 3\ntables: [{table: t, column: k, function: modulo}]"},
	} {
		oldMap, newMap := mustMap(t, tc.old), mustMap(t, tc.new)
		p, err := NewPlan(oldMap, newMap)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range p.Tables {
			sources := map[string]*SourcePlan{}
			for _, sp := range tp.Sources {
				sources[sp.Shard] = sp
			}
			for k := int64(-500); k < 500; k++ {
				from, to, moved := tp.route(shardmap.Int64Key(k))
				if !moved {
					continue
				}
				sp := sources[oldMap.ShardName(from)]
				if sp == nil {
					t.Fatalf("%s key %d moves from %s, not a source", tp.Name, k, oldMap.ShardName(from))
				}
				if !strings.Contains(strings.Join(sp.Targets, ","), newMap.ShardName(to)) {
					t.Fatalf("%s key %d moves %s→%s, targets %v", tp.Name, k, sp.Shard, newMap.ShardName(to), sp.Targets)
				}
			}
		}
	}
}

func TestPlanFingerprint(t *testing.T) {
	a, _ := NewPlan(mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s2")))
	b, _ := NewPlan(mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s2")))
	c, _ := NewPlan(mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s3")))
	if a.Fingerprint() != b.Fingerprint() || a.Fingerprint() == c.Fingerprint() {
		t.Errorf("fingerprints %s %s %s", a.Fingerprint(), b.Fingerprint(), c.Fingerprint())
	}
}
