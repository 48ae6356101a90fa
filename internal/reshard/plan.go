package reshard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/tiergate/tiergate/shardmap"
)

// Plan is what a job moves, computed from shardmap.Diff: per changing
// sharded table, the old shards that lose keys and where those keys go, and
// the reference tables to copy in full to each added shard. It is
// immutable once built.
type Plan struct {
	Old, New *shardmap.Map
	Diff     *shardmap.MapDiff
	// Tables are the sharded tables whose keys move, sorted by name.
	Tables []*TablePlan
	// References are the reference tables to copy to added shards.
	References []RefCopy
}

// TablePlan is one sharded table whose keys move.
type TablePlan struct {
	// Name is the table name as configured in both maps.
	Name string
	// Column is the shard key column, Type its key type.
	Column string
	Type   shardmap.KeyType
	// Change is shardmap's classification (PartitionsMove or KeysMove).
	Change shardmap.Change
	// Sources are the old shards that lose keys, in shard order.
	Sources []*SourcePlan
	// Targets are the new shards that may gain keys, in shard order.
	Targets []string
	// TargetPredicate is, per target shard, a SQL condition on the key
	// column that every row moving to it satisfies; "" when it cannot be
	// written in SQL (see the package documentation).
	TargetPredicate map[string]string

	diff      *shardmap.TableDiff
	oldIndex  map[string]int // old shard name → old index
	newIndex  map[string]int // new shard name → new index
	newShards int
}

// SourcePlan is one (table, old shard) pair that loses keys: the unit of
// work of the copy and delete phases.
type SourcePlan struct {
	// Shard is the old shard's name.
	Shard string
	// Targets are the new shards its keys may go to, in shard order.
	Targets []string
	// Predicate is a SQL condition on the key column that every row
	// leaving the shard satisfies ("" = none: every row is read and
	// filtered in Go with TableDiff.Moves).
	Predicate string
	// Fraction is the expected share of the shard's rows that move (hash:
	// moving partitions over owned partitions), 0 when unknown.
	Fraction float64
}

// RefCopy is a reference table copied in full from an old shard to a
// shard added by the new map.
type RefCopy struct {
	Table    string
	From, To string
}

// NewPlan computes the plan for going from oldMap to newMap. It fails with
// ErrUnsupported for changes the resharder cannot carry out: a table that
// becomes sharded or stops being sharded, a changed shard key column or key
// type, and maps that name their shards in one version and number them in
// the other.
func NewPlan(oldMap, newMap *shardmap.Map) (*Plan, error) {
	if oldMap == nil || newMap == nil {
		return nil, fmt.Errorf("%w: both maps are required", ErrUnsupported)
	}
	if named(oldMap) != named(newMap) {
		return nil, fmt.Errorf("%w: shards are named in one map and numbered in the other; name them in both", ErrUnsupported)
	}
	d := shardmap.Diff(oldMap, newMap)
	p := &Plan{Old: oldMap, New: newMap, Diff: d}
	var errs []string
	for _, td := range d.Tables {
		switch td.Change {
		case shardmap.Unchanged:
			continue
		case shardmap.Added:
			errs = append(errs, fmt.Sprintf("table %q is sharded only in the new map", td.Name))
			continue
		case shardmap.Removed:
			errs = append(errs, fmt.Sprintf("table %q is sharded only in the old map", td.Name))
			continue
		}
		ot, _ := oldMap.Table(td.Name)
		nt, _ := newMap.Table(td.Name)
		if ot.Column() != nt.Column() {
			errs = append(errs, fmt.Sprintf("table %q: shard key column changes from %q to %q", td.Name, ot.Column(), nt.Column()))
			continue
		}
		if ot.Type() != nt.Type() {
			errs = append(errs, fmt.Sprintf("table %q: shard key type changes from %s to %s", td.Name, ot.Type(), nt.Type()))
			continue
		}
		p.Tables = append(p.Tables, newTablePlan(p, td, ot, nt))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, strings.Join(errs, "; "))
	}
	if len(d.ShardsAdded) > 0 && len(newMap.ReferenceTables()) > 0 {
		from := ""
		for i := 0; i < oldMap.Shards(); i++ {
			if name := oldMap.ShardName(i); !slices.Contains(d.ShardsRemoved, name) {
				from = name
				break
			}
		}
		if from == "" {
			return nil, fmt.Errorf("%w: no old shard is kept to copy reference tables from", ErrUnsupported)
		}
		for _, to := range d.ShardsAdded {
			for _, ref := range newMap.ReferenceTables() {
				p.References = append(p.References, RefCopy{Table: ref, From: from, To: to})
			}
		}
	}
	return p, nil
}

func named(m *shardmap.Map) bool {
	_, byNumber := m.ShardIndex("0")
	return !byNumber || m.ShardName(0) != "0"
}

func newTablePlan(p *Plan, td *shardmap.TableDiff, ot, nt *shardmap.Table) *TablePlan {
	tp := &TablePlan{
		Name: td.Name, Column: nt.Column(), Type: nt.Type(), Change: td.Change,
		TargetPredicate: map[string]string{},
		diff:            td,
		oldIndex:        map[string]int{},
		newIndex:        map[string]int{},
		newShards:       p.New.Shards(),
	}
	for i := 0; i < p.Old.Shards(); i++ {
		tp.oldIndex[p.Old.ShardName(i)] = i
	}
	for j := 0; j < p.New.Shards(); j++ {
		tp.newIndex[p.New.ShardName(j)] = j
	}
	col := quoteIdent(tp.Column)
	modulo := nt.Function() == shardmap.Modulo
	targets := map[int]bool{}

	if td.Change == shardmap.PartitionsMove {
		bySource := map[int]map[int]bool{}
		moving := map[int]int{}
		for _, pm := range td.PartitionMoves {
			if bySource[pm.From] == nil {
				bySource[pm.From] = map[int]bool{}
			}
			bySource[pm.From][pm.To] = true
			moving[pm.From]++
			targets[pm.To] = true
		}
		owned := map[int]int{}
		oldPT := ot.PartitionTable()
		for _, s := range oldPT {
			owned[s] += td.Partitions / len(oldPT)
		}
		for from := 0; from < p.Old.Shards(); from++ {
			if bySource[from] == nil {
				continue
			}
			sp := &SourcePlan{Shard: p.Old.ShardName(from), Targets: p.newNames(bySource[from])}
			if owned[from] > 0 {
				sp.Fraction = float64(moving[from]) / float64(owned[from])
			}
			tp.Sources = append(tp.Sources, sp)
		}
	} else {
		for from := 0; from < p.Old.Shards(); from++ {
			name := p.Old.ShardName(from)
			self, kept := tp.newIndex[name]
			ts := map[int]bool{}
			for to := 0; to < p.New.Shards(); to++ {
				if kept && to == self {
					continue
				}
				if ot.Function() == shardmap.Modulo && modulo && (from-to)%gcd(p.Old.Shards(), p.New.Shards()) != 0 {
					continue // no key is ≡ from mod N and ≡ to mod M
				}
				ts[to] = true
				targets[to] = true
			}
			if len(ts) == 0 {
				continue
			}
			sp := &SourcePlan{Shard: name, Targets: p.newNames(ts)}
			if modulo && kept {
				sp.Predicate = fmt.Sprintf("%s <> %d", modExpr(col, p.New.Shards()), self)
			}
			tp.Sources = append(tp.Sources, sp)
		}
	}
	tp.Targets = p.newNames(targets)
	if modulo {
		for _, name := range tp.Targets {
			tp.TargetPredicate[name] = fmt.Sprintf("%s = %d", modExpr(col, p.New.Shards()), tp.newIndex[name])
		}
	}
	return tp
}

// modExpr is the SQL form of modulo's key → shard: a remainder that wraps
// negative keys around, like shardmap's.
func modExpr(col string, n int) string {
	return fmt.Sprintf("((%s %% %d) + %d) %% %d", col, n, n, n)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (p *Plan) newNames(set map[int]bool) []string {
	idx := make([]int, 0, len(set))
	for j := range set {
		idx = append(idx, j)
	}
	slices.Sort(idx)
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = p.New.ShardName(j)
	}
	return out
}

// route reports where key k of the table lives in the old map and in the
// new one, by index, and whether it moves. It does not allocate.
func (tp *TablePlan) route(k shardmap.Key) (from, to int, moved bool) {
	return tp.diff.Moves(k)
}

// Shards returns every shard name the plan reads from or writes to, sorted.
func (p *Plan) Shards() []string {
	set := map[string]bool{}
	for _, tp := range p.Tables {
		for _, sp := range tp.Sources {
			set[sp.Shard] = true
		}
		for _, t := range tp.Targets {
			set[t] = true
		}
	}
	for _, rc := range p.References {
		set[rc.From], set[rc.To] = true, true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Empty reports whether nothing moves.
func (p *Plan) Empty() bool { return len(p.Tables) == 0 && len(p.References) == 0 }

// Describe writes a human-readable summary of the plan (for a dry run).
func (p *Plan) Describe(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "shard map v%d → v%d", p.Old.Version(), p.New.Version())
	if len(p.Diff.ShardsAdded) > 0 {
		fmt.Fprintf(&b, ", shards added: %s", strings.Join(p.Diff.ShardsAdded, ", "))
	}
	if len(p.Diff.ShardsRemoved) > 0 {
		fmt.Fprintf(&b, ", shards removed: %s", strings.Join(p.Diff.ShardsRemoved, ", "))
	}
	b.WriteByte('\n')
	if p.Empty() {
		b.WriteString("nothing moves\n")
	}
	for _, tp := range p.Tables {
		fmt.Fprintf(&b, "table %s (key %s %s): %s", tp.Name, tp.Column, tp.Type, tp.Change)
		if tp.Change == shardmap.PartitionsMove {
			fmt.Fprintf(&b, ", %d of %d partitions", len(tp.diff.PartitionMoves), tp.diff.Partitions)
		}
		b.WriteByte('\n')
		for _, sp := range tp.Sources {
			fmt.Fprintf(&b, "  %s → %s", sp.Shard, strings.Join(sp.Targets, ", "))
			if sp.Fraction > 0 {
				fmt.Fprintf(&b, " (~%.1f%% of its rows)", 100*sp.Fraction)
			}
			if sp.Predicate != "" {
				fmt.Fprintf(&b, " where %s", sp.Predicate)
			} else {
				b.WriteString(" (all rows scanned, filtered by key)")
			}
			b.WriteByte('\n')
		}
	}
	for _, rc := range p.References {
		fmt.Fprintf(&b, "reference table %s: copy %s → %s\n", rc.Table, rc.From, rc.To)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Fingerprint identifies the plan: a saved state is resumed only by a job
// with the same fingerprint.
func (p *Plan) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "v%d>v%d\n", p.Old.Version(), p.New.Version())
	for _, tp := range p.Tables {
		fmt.Fprintf(h, "t %s %s %s %s\n", tp.Name, tp.Column, tp.Type, tp.Change)
		for _, pm := range tp.diff.PartitionMoves {
			h.Write([]byte(strconv.Itoa(pm.Partition) + ":" + strconv.Itoa(pm.From) + ">" + strconv.Itoa(pm.To) + ","))
		}
		for _, sp := range tp.Sources {
			fmt.Fprintf(h, "s %s>%s %s\n", sp.Shard, strings.Join(sp.Targets, ","), sp.Predicate)
		}
	}
	for _, rc := range p.References {
		fmt.Fprintf(h, "r %s %s>%s\n", rc.Table, rc.From, rc.To)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
