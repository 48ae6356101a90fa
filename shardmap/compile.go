package shardmap

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tiergate/tiergate/internal/config"
)

// maxEntryErrors caps how many bad partition_table entries are reported.
const maxEntryErrors = 5

// New compiles c into an immutable Map. It applies the documented defaults
// itself (c is not modified) and fails with the same errors as c.Validate.
func New(c Config) (*Map, error) {
	return compile(&c)
}

func compile(c *Config) (*Map, error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Version < 1 {
		add(config.Errorf("version", "must be at least 1, got %d", c.Version))
	}
	shards, err := newShardSet(c.Shards)
	if err != nil {
		add(config.In("shards", err))
		return nil, config.Join(errs...)
	}
	m := &Map{
		version: c.Version,
		shards:  shards,
		index:   map[string]entry{},
	}
	tables := &tableCache{}

	spaces := make(map[string]*keySpace, len(c.KeySpaces))
	for i := range c.KeySpaces {
		kc := &c.KeySpaces[i]
		var nameErr error
		switch {
		case kc.Name == "":
			nameErr = config.Errorf("name", "is required")
		case spaces[kc.Name] != nil:
			nameErr = config.Errorf("name", "duplicate key space %q", kc.Name)
		}
		ks, err := compileFunction(&kc.FunctionConfig, shards, tables)
		add(config.At("key_spaces", i, config.Join(nameErr, err)))
		if ks != nil && nameErr == nil {
			ks.name = kc.Name
			spaces[kc.Name] = ks
		}
	}

	configured := map[string]string{} // config name → its field path, for duplicates
	for i := range c.Tables {
		tc := &c.Tables[i]
		var terrs []error
		if err := checkTableName("table", tc.Table); err != nil {
			terrs = append(terrs, err)
		} else if prev, dup := configured[tc.Table]; dup {
			terrs = append(terrs, config.Errorf("table", "%q is already configured at %s", tc.Table, prev))
		}
		if tc.Column == "" {
			terrs = append(terrs, config.Errorf("column", "is required"))
		}
		var ks *keySpace
		if tc.KeySpace != "" {
			if !tc.FunctionConfig.isZero() {
				terrs = append(terrs, config.Errorf("key_space", "set either key_space or the function fields (type, function, ...), not both"))
			}
			if ks = spaces[tc.KeySpace]; ks == nil {
				terrs = append(terrs, config.Errorf("key_space", "unknown key space %q", tc.KeySpace))
			}
		} else {
			var err error
			ks, err = compileFunction(&tc.FunctionConfig, shards, tables)
			terrs = append(terrs, err)
		}
		err := config.Join(terrs...)
		add(config.At("tables", i, err))
		if err == nil {
			t := &Table{name: tc.Table, column: tc.Column, space: ks}
			m.tables = append(m.tables, t)
			configured[tc.Table] = config.Index("tables", i)
			m.register(tc.Table, entry{table: t})
		}
	}

	for i, name := range c.ReferenceTables {
		path := config.Index("reference_tables", i)
		if err := checkTableName(path, name); err != nil {
			add(err)
			continue
		}
		if prev, dup := configured[name]; dup {
			add(config.Errorf(path, "%q is already configured at %s", name, prev))
			continue
		}
		configured[name] = path
		m.refs = append(m.refs, name)
		m.register(name, entry{})
	}
	if err := config.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// checkTableName accepts "table" and "schema.table".
func checkTableName(path, name string) error {
	if name == "" {
		return config.Errorf(path, "is required")
	}
	schema, table, qualified := strings.Cut(name, ".")
	if qualified && (schema == "" || table == "" || strings.Contains(table, ".")) {
		return config.Errorf(path, "%q is not a table or schema.table name", name)
	}
	return nil
}

// shardSet resolves ShardRefs against the shards of the map.
type shardSet struct {
	n      int
	names  []string // nil when the shards are only counted
	byName map[string]int
}

func newShardSet(s Shards) (*shardSet, error) {
	if s.Names == nil {
		if s.Count < 1 || s.Count > MaxShards {
			return nil, config.Errorf("", "%d shards is outside 1..%d", s.Count, MaxShards)
		}
		return &shardSet{n: s.Count}, nil
	}
	if len(s.Names) < 1 || len(s.Names) > MaxShards {
		return nil, config.Errorf("", "%d shards is outside 1..%d", len(s.Names), MaxShards)
	}
	set := &shardSet{n: len(s.Names), names: s.Names, byName: make(map[string]int, len(s.Names))}
	var errs []error
	for i, name := range s.Names {
		switch _, dup := set.byName[name]; {
		case name == "":
			errs = append(errs, config.Errorf(config.Index("", i), "a shard name must not be empty"))
		case dup:
			errs = append(errs, config.Errorf(config.Index("", i), "duplicate shard name %q", name))
		default:
			set.byName[name] = i
		}
	}
	if err := config.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

func (s *shardSet) resolve(path string, ref ShardRef) (int, error) {
	if ref == "" {
		return 0, config.Errorf(path, "is required")
	}
	if i, ok := s.byName[string(ref)]; ok {
		return i, nil
	}
	i, err := strconv.Atoi(string(ref))
	switch {
	case err == nil && i >= 0 && i < s.n:
		return i, nil
	case err == nil:
		return 0, config.Errorf(path, "shard %d is outside 0..%d", i, s.n-1)
	case s.names != nil:
		return 0, config.Errorf(path, "unknown shard %q (%s)", ref, s.known())
	}
	return 0, config.Errorf(path, "unknown shard %q (shards are numbered 0..%d)", ref, s.n-1)
}

func (s *shardSet) known() string {
	const show = 8
	if len(s.names) <= show {
		return "known: " + strings.Join(s.names, ", ")
	}
	return fmt.Sprintf("known: %s, ... (%d shards)", strings.Join(s.names[:show], ", "), len(s.names))
}

// tableCache shares default partition tables between key spaces of one map.
type tableCache struct {
	tables map[[2]int][]uint16
}

func (c *tableCache) defaultTable(partitions, shards int) ([]uint16, error) {
	key := [2]int{partitions, shards}
	if t, ok := c.tables[key]; ok {
		return t, nil
	}
	t, err := DefaultPartitionTable(partitions, shards)
	if err != nil {
		return nil, err
	}
	out := make([]uint16, len(t))
	for p, s := range t {
		out[p] = uint16(s)
	}
	if c.tables == nil {
		c.tables = map[[2]int][]uint16{}
	}
	c.tables[key] = out
	return out, nil
}

// compileFunction checks f and builds its keySpace; on error it returns
// FieldErrors with paths relative to f.
func compileFunction(f *FunctionConfig, shards *shardSet, tables *tableCache) (*keySpace, error) {
	typName, fnName, partitions := f.effective()
	var errs []error
	typ, err := ParseKeyType(typName)
	if err != nil {
		errs = append(errs, config.CheckOneOf("type", typName, BigintName, TextName, UUIDName))
	}
	var fn Function
	switch fnName {
	case ModuloName:
		fn = Modulo
	case HashName:
		fn = Hash
	case RangeName:
		fn = Range
	case ListName:
		fn = List
	default:
		errs = append(errs, config.CheckOneOf("function", fnName, HashName, ModuloName, RangeName, ListName))
	}
	if typ == 0 || fn == 0 {
		return nil, config.Join(errs...)
	}
	ks := &keySpace{typ: typ, fn: fn, shards: shards.n, def: NoShard}

	only := func(field string, set bool, fns ...Function) {
		if set && !slices.Contains(fns, fn) {
			names := make([]string, len(fns))
			for i, f := range fns {
				names[i] = f.String()
			}
			errs = append(errs, config.Errorf(field, "is only used with function %s, not %s", strings.Join(names, " or "), fn))
		}
	}
	only("partitions", f.Partitions != 0, Hash)
	only("partition_table", f.PartitionTable != nil, Hash)
	only("ranges", f.Ranges != nil, Range)
	only("list", f.List != nil, List)
	only("default", f.Default != "", Range, List)
	if f.Default != "" && (fn == Range || fn == List) {
		d, err := shards.resolve("default", f.Default)
		errs = append(errs, err)
		if err == nil {
			ks.def = d
		}
	}

	switch fn {
	case Modulo:
		if typ != Bigint {
			errs = append(errs, config.Errorf("function", "modulo needs type bigint, not %s (use hash)", typ))
		}
	case Hash:
		errs = append(errs, ks.compileHash(f, partitions, shards, tables))
	case Range:
		errs = append(errs, ks.compileRanges(f.Ranges, shards))
	case List:
		errs = append(errs, ks.compileList(f.List, shards))
	}
	if err := config.Join(errs...); err != nil {
		return nil, err
	}
	return ks, nil
}

func (ks *keySpace) compileHash(f *FunctionConfig, partitions int, shards *shardSet, tables *tableCache) error {
	if partitions < shards.n || partitions > MaxPartitions {
		return config.Errorf("partitions", "%d is outside %d..%d (at least one partition per shard)", partitions, shards.n, MaxPartitions)
	}
	ks.partitions = partitions
	if f.PartitionTable == nil {
		t, err := tables.defaultTable(partitions, shards.n)
		if err != nil {
			return config.Errorf("partitions", "%v", err)
		}
		ks.ptable = t
		return nil
	}
	if len(f.PartitionTable) != partitions {
		return config.Errorf("partition_table", "has %d entries, want one per partition (%d)", len(f.PartitionTable), partitions)
	}
	ks.ptable = make([]uint16, partitions)
	var errs []error
	bad := 0
	for p, ref := range f.PartitionTable {
		s, err := shards.resolve(config.Index("partition_table", p), ref)
		if err != nil {
			if bad++; bad <= maxEntryErrors {
				errs = append(errs, err)
			}
			continue
		}
		ks.ptable[p] = uint16(s)
	}
	if bad > maxEntryErrors {
		errs = append(errs, config.Errorf("partition_table", "%d more bad entries", bad-maxEntryErrors))
	}
	return config.Join(errs...)
}

// bound is a parsed range bound; an absent bound is !set.
type bound struct {
	set bool
	k   Key
}

type parsedRange struct {
	i        int // index in the config
	from, to bound
	shard    int
}

func compareKeys(a, b Key) int {
	switch a.typ {
	case Bigint:
		return cmp.Compare(a.n, b.n)
	case Text:
		return strings.Compare(a.s, b.s)
	}
	return bytes.Compare(a.u[:], b.u[:])
}

func (ks *keySpace) parseValue(path, v string) (Key, error) {
	k, err := ParseKey(ks.typ, v)
	if err != nil {
		return Key{}, config.Errorf(path, "%q is not a valid %s", v, ks.typ)
	}
	return k, nil
}

func (ks *keySpace) compileRanges(rcs []RangeConfig, shards *shardSet) error {
	if len(rcs) == 0 {
		return config.Errorf("ranges", "at least one range is required")
	}
	var errs []error
	rs := make([]parsedRange, 0, len(rcs))
	for i, rc := range rcs {
		r := parsedRange{i: i}
		var rerrs []error
		if rc.From != nil {
			k, err := ks.parseValue("from", *rc.From)
			r.from = bound{err == nil, k}
			rerrs = append(rerrs, err)
		}
		if rc.To != nil {
			k, err := ks.parseValue("to", *rc.To)
			r.to = bound{err == nil, k}
			rerrs = append(rerrs, err)
		}
		if r.from.set && r.to.set && compareKeys(r.from.k, r.to.k) >= 0 {
			rerrs = append(rerrs, config.Errorf("to", "%s is not above from (%s): the range is empty", r.to.k, r.from.k))
		}
		s, err := shards.resolve("shard", rc.Shard)
		r.shard = s
		rerrs = append(rerrs, err)
		if err := config.Join(rerrs...); err != nil {
			errs = append(errs, config.At("ranges", i, err))
			continue
		}
		if !r.from.set {
			r.from = bound{true, minKey(ks.typ)}
		}
		rs = append(rs, r)
	}
	if len(errs) > 0 {
		return config.Join(errs...)
	}
	slices.SortFunc(rs, func(a, b parsedRange) int { return compareKeys(a.from.k, b.from.k) })
	for j := 1; j < len(rs); j++ {
		prev, cur := rs[j-1], rs[j]
		if !prev.to.set || compareKeys(prev.to.k, cur.from.k) > 0 {
			lo, hi := min(prev.i, cur.i), max(prev.i, cur.i)
			errs = append(errs, config.At("ranges", hi, config.Errorf("", "overlaps ranges[%d]", lo)))
		}
	}
	if len(errs) > 0 {
		return config.Join(errs...)
	}
	// Breakpoints: each range starts its shard at from and, if bounded,
	// hands back to the default at to.
	var starts []Key
	var shardOf []int32
	for _, r := range rs {
		if n := len(starts); n > 0 && compareKeys(starts[n-1], r.from.k) == 0 {
			shardOf[n-1] = int32(r.shard)
		} else {
			starts = append(starts, r.from.k)
			shardOf = append(shardOf, int32(r.shard))
		}
		if r.to.set {
			starts = append(starts, r.to.k)
			shardOf = append(shardOf, int32(ks.def))
		}
	}
	// Merge neighbours on the same shard, so that equal mappings compile
	// to equal breakpoints (Diff compares them).
	prev := int32(ks.def)
	for i, k := range starts {
		if shardOf[i] == prev {
			continue
		}
		prev = shardOf[i]
		ks.rShard = append(ks.rShard, prev)
		switch ks.typ {
		case Bigint:
			ks.rInt = append(ks.rInt, k.n)
		case Text:
			ks.rText = append(ks.rText, k.s)
		case UUID:
			ks.rUUID = append(ks.rUUID, toU128(k.u))
		}
	}
	return nil
}

func minKey(t KeyType) Key {
	switch t {
	case Bigint:
		return Int64Key(-1 << 63)
	case Text:
		return TextKey("")
	}
	return UUIDKey([16]byte{})
}

func (ks *keySpace) compileList(lcs []ListConfig, shards *shardSet) error {
	if len(lcs) == 0 {
		return config.Errorf("list", "at least one entry is required")
	}
	switch ks.typ {
	case Bigint:
		ks.lInt = map[int64]int32{}
	case Text:
		ks.lText = map[string]int32{}
	case UUID:
		ks.lUUID = map[[16]byte]int32{}
	}
	type seenAt struct{ entry, value int }
	seen := map[Key]seenAt{}
	var errs []error
	for i, lc := range lcs {
		var lerrs []error
		s, err := shards.resolve("shard", lc.Shard)
		lerrs = append(lerrs, err)
		if len(lc.Values) == 0 {
			lerrs = append(lerrs, config.Errorf("values", "at least one value is required"))
		}
		for j, v := range lc.Values {
			path := config.Index("values", j)
			k, err := ks.parseValue(path, v)
			if err != nil {
				lerrs = append(lerrs, err)
				continue
			}
			if at, dup := seen[k]; dup {
				lerrs = append(lerrs, config.Errorf(path, "duplicate value %s (also list[%d].values[%d])", k, at.entry, at.value))
				continue
			}
			seen[k] = seenAt{i, j}
			switch ks.typ {
			case Bigint:
				ks.lInt[k.n] = int32(s)
			case Text:
				ks.lText[k.s] = int32(s)
			case UUID:
				ks.lUUID[k.u] = int32(s)
			}
		}
		errs = append(errs, config.At("list", i, config.Join(lerrs...)))
	}
	return config.Join(errs...)
}
