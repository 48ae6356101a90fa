package shardmap

import (
	"fmt"
	"strconv"
	"strings"
)

// Map is a compiled, versioned shard map. It is immutable and safe for
// concurrent use; publish it behind an atomic.Pointer and build a new one on
// reload. Lookups do not allocate.
type Map struct {
	version int
	shards  *shardSet
	index   map[string]entry // table name → entry, see register
	tables  []*Table         // config order
	refs    []string         // reference tables, config order
}

// entry is a name the map answers to: a sharded table, or a reference table
// when table is nil. An alias is the bare name of a "public.x" table.
type entry struct {
	table *Table
	alias bool
}

// register indexes a configured name: "x" exactly (answering for any
// schema), "s.x" exactly and, for s = public, "x" as an alias unless "x" is
// configured itself.
func (m *Map) register(name string, e entry) {
	if schema, bare, ok := strings.Cut(name, "."); ok {
		m.index[name] = e
		if prev, taken := m.index[bare]; schema == "public" && (!taken || prev.alias) {
			e.alias = true
			m.index[bare] = e
		}
		return
	}
	m.index[name] = e
}

// lookup resolves a table name as the package documentation describes.
func (m *Map) lookup(name string) (entry, bool) {
	if e, ok := m.index[name]; ok {
		return e, true
	}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		if e, ok := m.index[name[i+1:]]; ok && !e.alias {
			return e, true
		}
	}
	return entry{}, false
}

// Version returns the map's version.
func (m *Map) Version() int { return m.version }

// Shards returns the number of shards; shards are numbered 0..Shards()-1.
func (m *Map) Shards() int { return m.shards.n }

// ShardName returns the configured name of shard i, or its number when the
// shards are not named.
func (m *Map) ShardName(i int) string {
	if m.shards.names != nil && i >= 0 && i < len(m.shards.names) {
		return m.shards.names[i]
	}
	return strconv.Itoa(i)
}

// ShardIndex returns the number of the shard named name (or numbered name,
// when the shards are not named).
func (m *Map) ShardIndex(name string) (int, bool) {
	if m.shards.names != nil {
		i, ok := m.shards.byName[name]
		return i, ok
	}
	i, err := strconv.Atoi(name)
	return i, err == nil && i >= 0 && i < m.shards.n
}

// Table returns the sharded table name resolves to (see the package
// documentation for schema resolution).
func (m *Map) Table(name string) (*Table, bool) {
	e, ok := m.lookup(name)
	if !ok || e.table == nil {
		return nil, false
	}
	return e.table, true
}

// IsReference reports whether name resolves to a reference table, which is
// on every shard.
func (m *Map) IsReference(name string) bool {
	e, ok := m.lookup(name)
	return ok && e.table == nil
}

// Tables returns the sharded tables in config order. The slice is shared:
// do not modify it.
func (m *Map) Tables() []*Table { return m.tables }

// ReferenceTables returns the reference tables in config order. The slice
// is shared: do not modify it.
func (m *Map) ReferenceTables() []string { return m.refs }

// ShardFor returns the shard of key k in table. Errors wrap ErrUnknownTable
// (also for a reference table), ErrBadKey or ErrUnknownShard. It does not
// allocate unless it fails.
func (m *Map) ShardFor(table string, k Key) (int, error) {
	t, ok := m.Table(table)
	if !ok {
		return NoShard, m.tableError(table)
	}
	return t.ShardFor(k)
}

// ShardsFor appends to dst one shard per key of table (NoShard for a key
// that fails, see Table.ShardsFor) and returns it. It fails only when the
// table is unknown.
func (m *Map) ShardsFor(table string, keys []Key, dst []int) ([]int, error) {
	t, ok := m.Table(table)
	if !ok {
		return dst, m.tableError(table)
	}
	return t.ShardsFor(keys, dst), nil
}

func (m *Map) tableError(name string) error {
	if m.IsReference(name) {
		return fmt.Errorf("%w: %q is a reference table, on every shard", ErrUnknownTable, name)
	}
	return fmt.Errorf("%w: %q is not sharded in shard map version %d", ErrUnknownTable, name, m.version)
}

// Table is a sharded table of a Map. It is immutable.
type Table struct {
	name   string
	column string
	space  *keySpace
}

// Name returns the table name as configured.
func (t *Table) Name() string { return t.name }

// Column returns the shard key column.
func (t *Table) Column() string { return t.column }

// Type returns the shard key type; decode keys with t.Type().Decode.
func (t *Table) Type() KeyType { return t.space.typ }

// Function returns the sharding function.
func (t *Table) Function() Function { return t.space.fn }

// KeySpace returns the name of the key space the table uses, "" when the
// table defines its own function.
func (t *Table) KeySpace() string { return t.space.name }

// CoLocated reports whether t and o share a key space, so that equal keys
// are on the same shard (a join on the shard key stays on one shard).
// Tables with their own function definitions are never co-located, even
// with identical definitions: declare a key space.
func (t *Table) CoLocated(o *Table) bool {
	return t == o || t.space.name != "" && t.space == o.space
}

// Partitions returns the number of hash partitions, 0 for other functions.
func (t *Table) Partitions() int { return t.space.partitions }

// PartitionTable returns a copy of the partition→shard table (hash only,
// else nil), e.g. to write an explicit partition_table into a config.
func (t *Table) PartitionTable() []int {
	if t.space.ptable == nil {
		return nil
	}
	out := make([]int, len(t.space.ptable))
	for p, s := range t.space.ptable {
		out[p] = int(s)
	}
	return out
}

// Default returns the default shard of a range or list function.
func (t *Table) Default() (int, bool) {
	return t.space.def, t.space.def != NoShard
}

// PartitionFor returns the hash partition of k. It fails with ErrBadKey
// for a key of the wrong type and for tables that are not hash-sharded.
func (t *Table) PartitionFor(k Key) (int, error) {
	if t.space.fn != Hash {
		return NoShard, fmt.Errorf("%w: table %q is sharded by %s, not hash", ErrBadKey, t.name, t.space.fn)
	}
	p := t.space.partitionOf(&k)
	if p < 0 {
		return NoShard, t.keyError(k, p)
	}
	return p, nil
}

// ShardFor returns the shard of key k. Errors wrap ErrBadKey (a key of the
// wrong type) or ErrUnknownShard (no range or list value matches and there
// is no default). It does not allocate unless it fails.
func (t *Table) ShardFor(k Key) (int, error) {
	s := t.space.shard(&k)
	if s < 0 {
		return NoShard, t.keyError(k, s)
	}
	return s, nil
}

// ShardsFor appends one shard per key to dst, in order, and returns it: a
// batch ShardFor (one result per key, like Vitess' Map). A key that fails
// gets NoShard; call ShardFor on it for the reason. It does not allocate
// when dst has room.
func (t *Table) ShardsFor(keys []Key, dst []int) []int {
	for i := range keys {
		s := t.space.shard(&keys[i])
		if s < 0 {
			s = NoShard
		}
		dst = append(dst, s)
	}
	return dst
}

func (t *Table) keyError(k Key, code int) error {
	if code == badType {
		if k.typ == 0 {
			return fmt.Errorf("%w: table %q: zero key", ErrBadKey, t.name)
		}
		return fmt.Errorf("%w: table %q has %s keys, got %s key %s", ErrBadKey, t.name, t.space.typ, k.typ, k)
	}
	return fmt.Errorf("%w: table %q: key %s matches no %s and there is no default", ErrUnknownShard, t.name, k, t.space.fn)
}
