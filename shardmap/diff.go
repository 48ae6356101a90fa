package shardmap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Change is how the placement of a table's keys changes between two maps.
type Change uint8

// Changes.
const (
	// Unchanged: no key of the table moves.
	Unchanged Change = iota
	// PartitionsMove: hash in both maps; exactly the keys of the
	// partitions in TableDiff.PartitionMoves move.
	PartitionsMove
	// KeysMove: the function changed in a way partitions cannot express
	// (modulo, range, list, another key type or partition count); some
	// keys may move: check each with Moves.
	KeysMove
	// Added: the table is sharded only in the new map.
	Added
	// Removed: the table is sharded only in the old map.
	Removed
)

// String names the change.
func (c Change) String() string {
	switch c {
	case Unchanged:
		return "unchanged"
	case PartitionsMove:
		return "partitions move"
	case KeysMove:
		return "keys move"
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return "Change(" + strconv.Itoa(int(c)) + ")"
}

// PartitionMove is a hash partition whose keys move from shard From of the
// old map to shard To of the new one.
type PartitionMove struct {
	Partition int
	From, To  int
}

// MapDiff is what changes between two maps. Shards are matched by name when
// both maps name their shards, else by number.
type MapDiff struct {
	Old, New *Map
	// ShardsAdded and ShardsRemoved name (or number) the shards only in the
	// new or only in the old map.
	ShardsAdded, ShardsRemoved []string
	// Tables has one entry per table sharded in either map, sorted by name.
	Tables []*TableDiff
	// ReferenceAdded and ReferenceRemoved are the reference tables only in
	// the new or only in the old map.
	ReferenceAdded, ReferenceRemoved []string

	tr     []int // old shard → new shard, gone if removed
	byName map[string]*TableDiff
}

// TableDiff is what changes for one table.
type TableDiff struct {
	// Name is the table name as configured (tables are matched by it).
	Name   string
	Change Change
	// Partitions is the partition count PartitionMoves counts in: the larger
	// of the two maps' counts (hash in both maps, counts multiples of each
	// other), else 0.
	Partitions int
	// PartitionMoves lists the moving partitions in ascending order, for
	// Change == PartitionsMove.
	PartitionMoves []PartitionMove

	oldT, newT *Table
	d          *MapDiff
}

// gone marks an old shard absent from the new map.
const gone = -2

// Diff computes what moves going from map oldMap to map newMap. Both must be
// non-nil; neither is modified.
func Diff(oldMap, newMap *Map) *MapDiff {
	d := &MapDiff{Old: oldMap, New: newMap, byName: map[string]*TableDiff{}}
	d.matchShards()

	olds := map[string]*Table{}
	for _, t := range oldMap.tables {
		olds[t.name] = t
	}
	news := map[string]*Table{}
	for _, t := range newMap.tables {
		news[t.name] = t
	}
	for name, ot := range olds {
		d.addTable(name, ot, news[name])
	}
	for name, nt := range news {
		if olds[name] == nil {
			d.addTable(name, nil, nt)
		}
	}
	slices.SortFunc(d.Tables, func(a, b *TableDiff) int { return strings.Compare(a.Name, b.Name) })

	d.ReferenceAdded = missing(newMap.refs, oldMap.refs)
	d.ReferenceRemoved = missing(oldMap.refs, newMap.refs)
	return d
}

// missing returns the names of a not in b, in a's order.
func missing(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func (d *MapDiff) matchShards() {
	o, n := d.Old.shards, d.New.shards
	d.tr = make([]int, o.n)
	byName := o.names != nil && n.names != nil
	for i := range d.tr {
		d.tr[i] = gone
		if byName {
			if j, ok := n.byName[o.names[i]]; ok {
				d.tr[i] = j
			}
		} else if i < n.n {
			d.tr[i] = i
		}
	}
	kept := make([]bool, n.n)
	for i, j := range d.tr {
		if j == gone {
			d.ShardsRemoved = append(d.ShardsRemoved, d.Old.ShardName(i))
		} else {
			kept[j] = true
		}
	}
	for j, k := range kept {
		if !k {
			d.ShardsAdded = append(d.ShardsAdded, d.New.ShardName(j))
		}
	}
}

// translate maps an old shard number to the new map's number for the same
// shard: NoShard stays NoShard, a removed shard becomes gone.
func (d *MapDiff) translate(s int) int {
	if s < 0 {
		return s
	}
	return d.tr[s]
}

func (d *MapDiff) addTable(name string, ot, nt *Table) {
	td := &TableDiff{Name: name, oldT: ot, newT: nt, d: d}
	d.Tables = append(d.Tables, td)
	d.byName[name] = td
	switch {
	case ot == nil:
		td.Change = Added
	case nt == nil:
		td.Change = Removed
	default:
		os, ns := ot.space, nt.space
		if os.fn == Hash && ns.fn == Hash && os.typ == ns.typ {
			if f := max(os.partitions, ns.partitions); f%os.partitions == 0 && f%ns.partitions == 0 {
				td.Partitions = f
				td.PartitionMoves = d.partitionMoves(os, ns, f)
				if len(td.PartitionMoves) > 0 {
					td.Change = PartitionsMove
				}
				return
			}
		}
		if !d.sameFunction(os, ns) {
			td.Change = KeysMove
		}
	}
}

func (d *MapDiff) partitionMoves(os, ns *keySpace, f int) []PartitionMove {
	ko, kn := f/os.partitions, f/ns.partitions
	var moves []PartitionMove
	for p := 0; p < f; p++ {
		from, to := int(os.ptable[p/ko]), int(ns.ptable[p/kn])
		if d.translate(from) != to {
			moves = append(moves, PartitionMove{Partition: p, From: from, To: to})
		}
	}
	return moves
}

// sameFunction reports whether every key has the same shard under os and
// ns. It may answer false for equivalent functions written differently.
func (d *MapDiff) sameFunction(os, ns *keySpace) bool {
	if os.typ != ns.typ || os.fn != ns.fn || d.translate(os.def) != ns.def {
		return false
	}
	sameShards := func(a []int32, b []int32) bool {
		return slices.EqualFunc(a, b, func(x, y int32) bool { return d.translate(int(x)) == int(y) })
	}
	switch os.fn {
	case Modulo:
		if os.shards != ns.shards {
			return false
		}
		for i := 0; i < os.shards; i++ {
			if d.translate(i) != i {
				return false
			}
		}
		return true
	case Range:
		return slices.Equal(os.rInt, ns.rInt) && slices.Equal(os.rText, ns.rText) &&
			slices.Equal(os.rUUID, ns.rUUID) && sameShards(os.rShard, ns.rShard)
	case List:
		return sameList(os.lInt, ns.lInt, d.translate) && sameList(os.lText, ns.lText, d.translate) &&
			sameList(os.lUUID, ns.lUUID, d.translate)
	}
	return false
}

func sameList[K comparable](a, b map[K]int32, translate func(int) int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, s := range a {
		t, ok := b[k]
		if !ok || translate(int(s)) != int(t) {
			return false
		}
	}
	return true
}

// Table returns the diff of the table configured as name.
func (d *MapDiff) Table(name string) (*TableDiff, bool) {
	td, ok := d.byName[name]
	return td, ok
}

// Moves reports where key k of table is in the old map (from) and in the
// new one (to), and whether it moved: whether its shard differs (a key that
// had or has no shard, or a table absent from a map, counts as NoShard).
// Table names resolve in each map as Map.Table does. It works for every
// function and does not allocate.
func (d *MapDiff) Moves(table string, k Key) (from, to int, moved bool) {
	ot, _ := d.Old.Table(table)
	nt, _ := d.New.Table(table)
	return d.moves(ot, nt, k)
}

// Moves is MapDiff.Moves for this table.
func (td *TableDiff) Moves(k Key) (from, to int, moved bool) {
	return td.d.moves(td.oldT, td.newT, k)
}

func (d *MapDiff) moves(ot, nt *Table, k Key) (from, to int, moved bool) {
	from, to = NoShard, NoShard
	if ot != nil {
		from = max(ot.space.shard(&k), NoShard)
	}
	if nt != nil {
		to = max(nt.space.shard(&k), NoShard)
	}
	return from, to, d.translate(from) != to
}

// PartitionOf returns the partition of k counted in td.Partitions, to match
// against PartitionMoves. It fails with ErrBadKey when Partitions is 0 or k
// has the wrong type.
func (td *TableDiff) PartitionOf(k Key) (int, error) {
	if td.Partitions == 0 {
		return NoShard, fmt.Errorf("%w: table %q: no partitions to compare (%s)", ErrBadKey, td.Name, td.Change)
	}
	if k.typ != td.newT.space.typ {
		return NoShard, td.newT.keyError(k, badType)
	}
	return PartitionOf(HashKey(k), td.Partitions), nil
}
