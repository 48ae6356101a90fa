package pgproxy

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tiergate/tiergate/router/sqlroute"
)

// The merger turns the rows of a statement that ran on several shards into
// what one server holding every row would have returned, following the
// router's sqlroute.Merge plan: rows of equal groups combined (count and
// sum added, min and max compared, avg as the sum of sums over the sum of
// counts, divided as numeric_div does), then a k-way merge of the shards'
// sorted rows (or a sort of the combined groups), DISTINCT, OFFSET and
// LIMIT, and the hidden columns the rewrite added dropped.

// mergeFanout combines the shards' rows into the client's answer, with the
// RowDescription to send (nil: the statement returns no rows).
func (s *session) mergeFanout(f *fanout) (*pgproto3.RowDescription, [][][]byte, error) {
	desc := f.res[0].portalDesc()
	m := f.route.Merge
	if m == nil || desc == nil {
		var rows [][][]byte
		for _, r := range f.res {
			rows = append(rows, r.rows...)
		}
		return desc, rows, nil
	}
	mg, err := newMerger(m, desc)
	if err != nil {
		return nil, nil, err
	}
	if mg.comparesText() {
		if err := s.checkByteOrder(f); err != nil {
			return nil, nil, err
		}
	}
	rows, err := mg.run(f.res)
	if err != nil {
		return nil, nil, err
	}
	return mg.outDesc, rows, nil
}

// merger runs one Merge over rows described by desc.
type merger struct {
	plan    *sqlroute.Merge
	in      *pgproto3.RowDescription
	outDesc *pgproto3.RowDescription
	sort    []sqlroute.SortKey // columns resolved
	visible int
	err     error
}

func newMerger(m *sqlroute.Merge, desc *pgproto3.RowDescription) (*merger, error) {
	mg := &merger{plan: m, in: desc, visible: len(desc.Fields)}
	if m.Visible >= 0 && m.Visible <= len(desc.Fields) {
		mg.visible = m.Visible
	}
	for _, k := range m.Sort {
		if k.Col < 0 {
			k.Col = -1
			for i, f := range desc.Fields {
				if string(f.Name) == k.Name {
					if k.Col >= 0 {
						return nil, fmt.Errorf("%w: ORDER BY %s is ambiguous in the result", sqlroute.ErrCrossShard, k.Name)
					}
					k.Col = i
				}
			}
			if k.Col < 0 {
				return nil, fmt.Errorf("%w: ORDER BY %s is not a column of the result", sqlroute.ErrCrossShard, k.Name)
			}
		}
		if k.Col >= mg.visible {
			return nil, fmt.Errorf("%w: ORDER BY column %d is out of range", sqlroute.ErrCrossShard, k.Col+1)
		}
		mg.sort = append(mg.sort, k)
	}
	out := &pgproto3.RowDescription{Fields: append([]pgproto3.FieldDescription(nil), desc.Fields[:mg.visible]...)}
	for col, agg := range m.Aggs {
		if agg != sqlroute.AggAvg || col >= len(out.Fields) {
			continue
		}
		f := &out.Fields[col]
		switch f.DataTypeOID {
		case oidInt8, oidNumeric:
			f.DataTypeOID, f.DataTypeSize = oidNumeric, -1
		case oidFloat4, oidFloat8:
			f.DataTypeOID, f.DataTypeSize = oidFloat8, 8
		default:
			return nil, fmt.Errorf("%w: avg over type OID %d", errUnmergeable, f.DataTypeOID)
		}
		f.TypeModifier, f.TableOID, f.TableAttributeNumber = -1, 0, 0
	}
	mg.outDesc = out
	return mg, nil
}

func (mg *merger) run(res []*shardResult) ([][][]byte, error) {
	var rows [][][]byte
	switch {
	case mg.plan.Group:
		var err error
		if rows, err = mg.group(res); err != nil {
			return nil, err
		}
		if len(mg.sort) > 0 {
			slices.SortStableFunc(rows, mg.compare)
		}
	case len(mg.sort) > 0:
		rows = mg.kway(res)
	default:
		for _, r := range res {
			rows = append(rows, r.rows...)
		}
	}
	if mg.err != nil {
		return nil, mg.err
	}
	if mg.plan.Distinct {
		var err error
		if rows, err = mg.distinct(rows); err != nil {
			return nil, err
		}
	}
	if off := mg.plan.Offset; off > 0 {
		if off >= int64(len(rows)) {
			rows = nil
		} else {
			rows = rows[off:]
		}
	}
	if lim := mg.plan.Limit; lim >= 0 && lim < int64(len(rows)) {
		rows = rows[:lim]
	}
	if mg.visible < len(mg.in.Fields) && !mg.plan.Group {
		for i, r := range rows {
			rows[i] = r[:mg.visible]
		}
	}
	return rows, nil
}

// compare orders two rows by the sort keys; a comparison error is kept
// in mg.err (and the rows compare equal).
func (mg *merger) compare(a, b [][]byte) int {
	for _, k := range mg.sort {
		va, vb := a[k.Col], b[k.Col]
		var c int
		switch {
		case va == nil && vb == nil:
			c = 0
		case va == nil:
			c = 1
			if k.NullsFirst {
				c = -1
			}
			if k.Desc {
				c = -c // undone below: NULL placement does not flip with DESC
			}
		case vb == nil:
			c = -1
			if k.NullsFirst {
				c = 1
			}
			if k.Desc {
				c = -c
			}
		default:
			f := mg.in.Fields[k.Col]
			var err error
			c, err = compareValues(f.DataTypeOID, f.Format, va, vb)
			if err != nil && mg.err == nil {
				mg.err = err
			}
		}
		if k.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// shardHeap is the k-way merge's heap of shard cursors.
type shardHeap struct {
	mg   *merger
	rows [][][][]byte // per shard, its rows
	pos  []int
	idx  []int // shards with rows left, heap-ordered
}

func (h *shardHeap) Len() int { return len(h.idx) }
func (h *shardHeap) Less(i, j int) bool {
	a, b := h.idx[i], h.idx[j]
	c := h.mg.compare(h.rows[a][h.pos[a]], h.rows[b][h.pos[b]])
	if c != 0 {
		return c < 0
	}
	return a < b // stable: lower shard first
}
func (h *shardHeap) Swap(i, j int) { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *shardHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *shardHeap) Pop() any {
	n := len(h.idx)
	x := h.idx[n-1]
	h.idx = h.idx[:n-1]
	return x
}

// kway merges the shards' rows, each already sorted by the shard.
func (mg *merger) kway(res []*shardResult) [][][]byte {
	h := &shardHeap{mg: mg, pos: make([]int, len(res))}
	total := 0
	for i, r := range res {
		h.rows = append(h.rows, r.rows)
		total += len(r.rows)
		if len(r.rows) > 0 {
			h.idx = append(h.idx, i)
		}
	}
	limit := int64(total)
	if mg.plan.Limit >= 0 && !mg.plan.Distinct {
		limit = min(limit, mg.plan.Limit+mg.plan.Offset)
	}
	heap.Init(h)
	out := make([][][]byte, 0, limit)
	for h.Len() > 0 && int64(len(out)) < limit {
		s := h.idx[0]
		out = append(out, h.rows[s][h.pos[s]])
		h.pos[s]++
		if h.pos[s] == len(h.rows[s]) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	return out
}

// distinct drops duplicate rows (keeping the first, so a sorted order
// stays).
func (mg *merger) distinct(rows [][][]byte) ([][][]byte, error) {
	seen := make(map[string]struct{}, len(rows))
	out := rows[:0]
	var key []byte
	for _, r := range rows {
		key = key[:0]
		for i := 0; i < mg.visible; i++ {
			f := mg.outDesc.Fields[i]
			var err error
			if key, err = groupKey(f.DataTypeOID, f.Format, r[i], key); err != nil {
				return nil, err
			}
		}
		if _, ok := seen[string(key)]; ok {
			continue
		}
		seen[string(key)] = struct{}{}
		out = append(out, r)
	}
	return out, nil
}

// aggState accumulates one aggregate column of one group.
type aggState struct {
	i     int64
	f     float64
	d     decimal
	set   bool // a non-NULL value was seen
	count int64
	best  []byte // min/max
}

// groupRow is one group being combined.
type groupRow struct {
	keys []byte
	vals [][]byte // the first row's values (group keys and constants)
	aggs []aggState
}

// group combines the rows of equal groups across shards.
func (mg *merger) group(res []*shardResult) ([][][]byte, error) {
	p := mg.plan
	groups := map[string]*groupRow{}
	var order []*groupRow
	var key []byte
	for _, r := range res {
		for _, row := range r.rows {
			key = key[:0]
			for _, c := range p.GroupCols {
				f := mg.in.Fields[c]
				var err error
				if key, err = groupKey(f.DataTypeOID, f.Format, row[c], key); err != nil {
					return nil, err
				}
			}
			g := groups[string(key)]
			if g == nil {
				g = &groupRow{keys: append([]byte(nil), key...), vals: row, aggs: make([]aggState, len(p.Aggs))}
				groups[string(g.keys)] = g
				order = append(order, g)
			}
			for c, agg := range p.Aggs {
				if agg == sqlroute.AggNone {
					continue
				}
				if err := mg.accumulate(&g.aggs[c], agg, c, row); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([][][]byte, 0, len(order))
	for _, g := range order {
		row := make([][]byte, mg.visible)
		copy(row, g.vals[:mg.visible])
		for c, agg := range p.Aggs {
			if agg == sqlroute.AggNone || c >= mg.visible {
				continue
			}
			v, err := mg.finish(&g.aggs[c], agg, c)
			if err != nil {
				return nil, err
			}
			row[c] = v
		}
		out = append(out, row)
	}
	return out, nil
}

// accumulate adds one shard's partial aggregate of column c.
func (mg *merger) accumulate(st *aggState, agg sqlroute.Agg, c int, row [][]byte) error {
	f := mg.in.Fields[c]
	v := row[c]
	switch agg {
	case sqlroute.AggCount:
		n, err := decodeInt(f.DataTypeOID, f.Format, v)
		if err != nil {
			return err
		}
		st.i += n
		st.set = true
	case sqlroute.AggMin, sqlroute.AggMax:
		if v == nil {
			return nil
		}
		if st.best == nil {
			st.best = v
			return nil
		}
		cmp, err := compareValues(f.DataTypeOID, f.Format, v, st.best)
		if err != nil {
			return err
		}
		if (agg == sqlroute.AggMin && cmp < 0) || (agg == sqlroute.AggMax && cmp > 0) {
			st.best = v
		}
	case sqlroute.AggSum, sqlroute.AggAvg:
		if agg == sqlroute.AggAvg {
			cc := mg.plan.AvgCount[c]
			cf := mg.in.Fields[cc]
			n, err := decodeInt(cf.DataTypeOID, cf.Format, row[cc])
			if err != nil {
				return err
			}
			st.count += n
		}
		if v == nil {
			return nil
		}
		switch f.DataTypeOID {
		case oidInt8:
			n, err := decodeInt(f.DataTypeOID, f.Format, v)
			if err != nil {
				return err
			}
			if agg == sqlroute.AggAvg {
				st.d = st.d.addInit(decimal{v: big.NewInt(n)}, st.set)
			} else if (n > 0 && st.i > math.MaxInt64-n) || (n < 0 && st.i < math.MinInt64-n) {
				return fmt.Errorf("bigint out of range")
			}
			st.i += n
		case oidNumeric:
			d, err := decodeNumeric(f.Format, v)
			if err != nil {
				return err
			}
			st.d = st.d.addInit(d, st.set)
		case oidFloat4, oidFloat8:
			x, err := decodeFloat(f.DataTypeOID, f.Format, v)
			if err != nil {
				return err
			}
			st.f += x
		default:
			return fmt.Errorf("%w: %s over type OID %d", errUnmergeable, agg, f.DataTypeOID)
		}
		st.set = true
	}
	return nil
}

// addInit adds o to d, or starts from o.
func (d decimal) addInit(o decimal, started bool) decimal {
	if !started || d.v == nil && !d.nan && d.inf == 0 {
		return o
	}
	return d.add(o)
}

// finish encodes a group's aggregate of column c in the column's format.
func (mg *merger) finish(st *aggState, agg sqlroute.Agg, c int) ([]byte, error) {
	in := mg.in.Fields[c]
	out := mg.outDesc.Fields[c]
	binaryFmt := out.Format == 1
	switch agg {
	case sqlroute.AggCount:
		return encodeInt8(st.i, binaryFmt), nil
	case sqlroute.AggMin, sqlroute.AggMax:
		return st.best, nil
	case sqlroute.AggSum:
		if !st.set {
			return nil, nil
		}
		switch in.DataTypeOID {
		case oidInt8:
			return encodeInt8(st.i, binaryFmt), nil
		case oidNumeric:
			return encodeNumeric(st.d, binaryFmt), nil
		case oidFloat4:
			if binaryFmt {
				return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(st.f))), nil
			}
			return []byte(formatFloat4(float32(st.f))), nil
		default:
			return encodeFloat8(st.f, binaryFmt), nil
		}
	case sqlroute.AggAvg:
		if !st.set || st.count == 0 {
			return nil, nil
		}
		switch in.DataTypeOID {
		case oidInt8, oidNumeric:
			return encodeNumeric(numericDiv(st.d, decimal{v: big.NewInt(st.count)}), binaryFmt), nil
		default:
			return encodeFloat8(st.f/float64(st.count), binaryFmt), nil
		}
	}
	return nil, nil
}

func encodeInt8(n int64, binaryFmt bool) []byte {
	if binaryFmt {
		return binary.BigEndian.AppendUint64(nil, uint64(n))
	}
	return strconv.AppendInt(nil, n, 10)
}

func encodeFloat8(f float64, binaryFmt bool) []byte {
	if binaryFmt {
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(f))
	}
	return []byte(formatFloat8(f))
}

func encodeNumeric(d decimal, binaryFmt bool) []byte {
	if binaryFmt {
		return d.appendBinary(nil)
	}
	return []byte(d.String())
}

func isTextType(oid uint32) bool {
	switch oid {
	case oidText, oidVarchar, oidBPChar, oidName:
		return true
	}
	return false
}

// comparesText reports whether the merge orders text values (ORDER BY,
// min, max), which depends on the collation.
func (mg *merger) comparesText() bool {
	for _, k := range mg.sort {
		if isTextType(mg.in.Fields[k.Col].DataTypeOID) {
			return true
		}
	}
	for c, a := range mg.plan.Aggs {
		if (a == sqlroute.AggMin || a == sqlroute.AggMax) && c < len(mg.in.Fields) && isTextType(mg.in.Fields[c].DataTypeOID) {
			return true
		}
	}
	return false
}

// checkByteOrder refuses to merge text by byte order unless the shards'
// database collation is C or POSIX (asked once per shard map, on the
// fan-out's first connection, now idle).
func (s *session) checkByteOrder(f *fanout) error {
	sdb := f.sdb
	if sdb.collation.Load() == 0 {
		// datlocprovider (PostgreSQL 15+): 'c' libc, 'i' ICU.
		rows, err := f.res[0].sc.exec(`SELECT datcollate || '/' || coalesce(to_json(d)->>'datlocprovider', 'c')
			FROM pg_database d WHERE datname = current_database()`, s.rt().cfg.Pool.ConnectTimeout)
		if err != nil || len(rows) != 1 {
			return fmt.Errorf("%w: cannot read the database collation to merge text: %v", errUnsupported, err)
		}
		coll, provider, _ := strings.Cut(rows[0], "/")
		name := coll
		if provider != "c" {
			name = coll + " (provider " + provider + ")"
		}
		sdb.collName.Store(&name)
		if provider == "c" && (coll == "C" || coll == "POSIX" || strings.HasPrefix(coll, "C.")) {
			sdb.collation.Store(1)
		} else {
			sdb.collation.Store(2)
		}
	}
	if sdb.collation.Load() == 2 {
		return fmt.Errorf("%w: ordering text across shards needs the C collation (the database's is %s): add the shard key, or order by another column", sqlroute.ErrCrossShard, *sdb.collName.Load())
	}
	return nil
}
