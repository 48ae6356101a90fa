package sqlroute

import (
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Agg is how a result column of a multi-shard read combines across shards.
type Agg uint8

// Aggregates the merger combines. Other aggregates make a fan-out unsafe.
const (
	AggNone  Agg = iota // a plain column (a group key when the query groups)
	AggCount            // count(x), count(*): the sum of the shards' counts
	AggSum              // sum(x): the sum of the shards' sums (NULL when all are NULL)
	AggMin              // min(x)
	AggMax              // max(x)
	AggAvg              // avg(x): sent to the shards as sum(x) and count(x) (a hidden column)
)

func (a Agg) String() string {
	return [...]string{"", "count", "sum", "min", "max", "avg"}[a]
}

// SortKey is one ORDER BY key of a multi-shard read, in the result's
// columns.
type SortKey struct {
	// Col is the result column (0-based); -1 when the key names a column
	// of a SELECT * (resolve Name against the RowDescription).
	Col        int
	Name       string
	Desc       bool
	NullsFirst bool
}

// Merge says how the proxy combines the rows of a read that ran on several
// shards into what one server holding all the rows would have returned.
// The shards answer Merge.SQL (the client's statement when empty); their
// rows are grouped (Group), sorted by Sort with a k-way merge, made
// distinct (Distinct), then Offset rows are skipped and at most Limit
// returned. Columns past Visible are dropped before the client sees them.
type Merge struct {
	// SQL is the statement the shards run instead of the client's, "" for
	// the client's own: aggregates rewritten (avg as sum and count), LIMIT
	// raised to LIMIT+OFFSET with the OFFSET removed, or both removed when
	// the query aggregates.
	SQL string
	// Sort is the order of the result; empty: any order (concatenation).
	Sort []SortKey
	// Group combines rows whose GroupCols are equal, per Aggs.
	Group     bool
	GroupCols []int
	// Aggs gives each visible result column's aggregate (nil when none).
	Aggs []Agg
	// AvgCount maps an AggAvg column to the hidden column holding its count.
	AvgCount map[int]int
	// Distinct removes duplicate rows.
	Distinct bool
	// Limit is the most rows to return, -1 for no limit; Offset the rows to
	// skip first.
	Limit, Offset int64
	// Visible is the number of result columns the client sees; the shards'
	// rows have more when the rewrite added hidden ones (-1: all).
	Visible int
}

// aggregate names the merger does not combine; a fan-out with one of them
// is unsafe.
var otherAggregates = map[string]bool{
	"array_agg": true, "string_agg": true, "bool_and": true, "bool_or": true, "every": true,
	"bit_and": true, "bit_or": true, "bit_xor": true, "stddev": true, "stddev_pop": true, "stddev_samp": true,
	"variance": true, "var_pop": true, "var_samp": true, "json_agg": true, "jsonb_agg": true,
	"json_object_agg": true, "jsonb_object_agg": true, "xmlagg": true, "percentile_cont": true,
	"percentile_disc": true, "mode": true, "corr": true, "covar_pop": true, "covar_samp": true,
	"regr_avgx": true, "regr_avgy": true, "regr_count": true, "regr_intercept": true, "regr_r2": true,
	"regr_slope": true, "regr_sxx": true, "regr_sxy": true, "regr_syy": true, "range_agg": true,
	"range_intersect_agg": true, "any_value": true, "grouping": true,
}

// target is one item of a SELECT list.
type target struct {
	name     string // output column name, "" when unknown
	agg      Agg
	node     *pg_query.Node
	constant bool
}

// sortSpec is one ORDER BY item.
type sortSpec struct {
	pos        value // ORDER BY <n>
	target     int32 // the target it names, -1 when by position or by name
	name       string
	desc       bool
	nullsFirst bool
}

// selectShape is how a top-level SELECT's results combine across shards.
type selectShape struct {
	targets  []target
	star     bool
	sort     []sortSpec
	group    []int32 // the target of each GROUP BY item (-1: by position)
	groupPos []value // GROUP BY <n>
	grouped  bool    // GROUP BY present
	distinct bool
	aggs     bool
	limit    value
	offset   value
	rewrite  bool   // the shards need a rewritten statement
	unsafe   string // why merging would be wrong
}

func (ss *selectShape) fail(reason string) {
	if ss.unsafe == "" {
		ss.unsafe = reason
	}
}

// mergeShape analyses a top-level SELECT for merging.
func (b *shapeBuilder) mergeShape(s *pg_query.SelectStmt) *selectShape {
	ss := &selectShape{limit: value{kind: valNone}, offset: value{kind: valNone}}
	if len(s.ValuesLists) > 0 {
		return ss
	}
	switch {
	case len(s.DistinctClause) == 1 && s.DistinctClause[0].GetNode() == nil:
		ss.distinct = true
	case len(s.DistinctClause) > 0:
		ss.fail("DISTINCT ON")
	}
	if len(s.WindowClause) > 0 {
		ss.fail("window function")
	}
	if s.HavingClause != nil {
		ss.fail("HAVING")
	}
	if len(s.LockingClause) > 0 {
		ss.fail("FOR UPDATE/SHARE")
	}
	if s.IntoClause != nil {
		ss.fail("SELECT INTO")
	}
	if s.LimitOption == pg_query.LimitOption_LIMIT_OPTION_WITH_TIES {
		ss.fail("FETCH ... WITH TIES")
	}
	for _, t := range s.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		tg := target{name: rt.Name, node: rt.Val}
		switch v := rt.Val.GetNode().(type) {
		case *pg_query.Node_ColumnRef:
			f := v.ColumnRef.Fields
			if len(f) > 0 && f[len(f)-1].GetAStar() != nil {
				ss.star = true
			} else if tg.name == "" && len(f) > 0 {
				tg.name = f[len(f)-1].GetString_().GetSval()
			}
		case *pg_query.Node_FuncCall:
			name := funcName(v.FuncCall)
			if tg.name == "" {
				tg.name = name
			}
			tg.agg = aggOf(v.FuncCall, name, ss)
		case *pg_query.Node_AConst:
			tg.constant = true
		case *pg_query.Node_TypeCast:
			if v.TypeCast.Arg.GetAConst() != nil {
				tg.constant = true
			}
		}
		if tg.agg == AggNone && hasWindowOrAgg(rt.Val, ss) {
			ss.fail("an aggregate or window function inside an expression")
		}
		if tg.agg != AggNone {
			ss.aggs = true
			if tg.agg == AggAvg {
				ss.rewrite = true
			}
		}
		ss.targets = append(ss.targets, tg)
	}
	for _, g := range s.GroupClause {
		ss.grouped = true
		if c := g.GetAConst(); c != nil && c.GetIval() != nil {
			ss.group = append(ss.group, -1)
			ss.groupPos = append(ss.groupPos, b.value(g))
			continue
		}
		if g.GetGroupingSet() != nil {
			ss.fail("GROUPING SETS, ROLLUP or CUBE")
			continue
		}
		i := matchTarget(ss.targets, g)
		if i < 0 {
			if c := g.GetColumnRef(); c != nil && len(c.Fields) == 1 {
				i = targetNamed(ss.targets, c.Fields[0].GetString_().GetSval())
			}
		}
		if i < 0 {
			ss.fail("a GROUP BY item is not in the select list")
		}
		ss.group = append(ss.group, int32(i))
		ss.groupPos = append(ss.groupPos, value{kind: valNone})
	}
	if (ss.aggs || ss.grouped) && ss.star {
		ss.fail("SELECT * with aggregates")
	}
	if ss.aggs || ss.grouped {
		for i, tg := range ss.targets {
			if tg.agg != AggNone || tg.constant {
				continue
			}
			found := false
			for _, g := range ss.group {
				if int(g) == i {
					found = true
				}
			}
			if !found && !ss.groupByPos() {
				ss.fail("a selected column is neither aggregated nor grouped")
			}
		}
	}
	for _, n := range s.SortClause {
		sb := n.GetSortBy()
		if sb == nil {
			continue
		}
		sp := sortSpec{target: -1, pos: value{kind: valNone}}
		switch sb.SortbyDir {
		case pg_query.SortByDir_SORTBY_DESC:
			sp.desc = true
		case pg_query.SortByDir_SORTBY_USING:
			ss.fail("ORDER BY ... USING")
		}
		sp.nullsFirst = sp.desc
		switch sb.SortbyNulls {
		case pg_query.SortByNulls_SORTBY_NULLS_FIRST:
			sp.nullsFirst = true
		case pg_query.SortByNulls_SORTBY_NULLS_LAST:
			sp.nullsFirst = false
		}
		switch {
		case sb.Node.GetAConst() != nil && sb.Node.GetAConst().GetIval() != nil:
			sp.pos = b.value(sb.Node)
		case sb.Node.GetColumnRef() != nil && len(sb.Node.GetColumnRef().Fields) == 1:
			name := sb.Node.GetColumnRef().Fields[0].GetString_().GetSval()
			if i := targetNamed(ss.targets, name); i >= 0 {
				sp.target = int32(i)
			} else if i := matchTarget(ss.targets, sb.Node); i >= 0 {
				sp.target = int32(i)
			} else if ss.star {
				sp.name = name
			} else {
				ss.fail("ORDER BY " + name + " is not in the select list")
			}
		default:
			if i := matchTarget(ss.targets, sb.Node); i >= 0 {
				sp.target = int32(i)
			} else {
				ss.fail("an ORDER BY expression is not in the select list")
			}
		}
		ss.sort = append(ss.sort, sp)
	}
	if s.LimitCount != nil {
		ss.limit = b.value(s.LimitCount)
		if ss.limit.kind != valLiteral && ss.limit.kind != valParam && ss.limit.kind != valNull {
			ss.fail("LIMIT is not a constant or parameter")
		}
	}
	if s.LimitOffset != nil {
		ss.offset = b.value(s.LimitOffset)
		if ss.offset.kind != valLiteral && ss.offset.kind != valParam && ss.offset.kind != valNull {
			ss.fail("OFFSET is not a constant or parameter")
		}
	}
	limited := ss.limit.kind != valNone || ss.offset.kind != valNone
	if ss.offset.kind != valNone || ((ss.aggs || ss.grouped) && limited) {
		ss.rewrite = true
	}
	return ss
}

func (ss *selectShape) groupByPos() bool {
	for _, g := range ss.group {
		if g < 0 {
			return true
		}
	}
	return false
}

func funcName(f *pg_query.FuncCall) string {
	if len(f.Funcname) == 0 {
		return ""
	}
	return f.Funcname[len(f.Funcname)-1].GetString_().GetSval()
}

// aggOf classifies a top-level function call of a SELECT list.
func aggOf(f *pg_query.FuncCall, name string, ss *selectShape) Agg {
	if f.Over != nil {
		ss.fail("window function")
		return AggNone
	}
	var a Agg
	switch name {
	case "count":
		a = AggCount
	case "sum":
		a = AggSum
	case "min":
		a = AggMin
	case "max":
		a = AggMax
	case "avg":
		a = AggAvg
	default:
		if otherAggregates[name] {
			ss.fail("aggregate " + name)
		}
		return AggNone
	}
	if len(f.Funcname) == 2 && f.Funcname[0].GetString_().GetSval() != "pg_catalog" {
		return AggNone // a user function with the same name
	}
	if f.AggDistinct || f.AggFilter != nil || len(f.AggOrder) > 0 || f.AggWithinGroup || f.FuncVariadic {
		ss.fail(name + " with DISTINCT, FILTER or ORDER BY")
	}
	if (a == AggCount && !f.AggStar && len(f.Args) != 1) || (a != AggCount && len(f.Args) != 1) {
		ss.fail(name + " with an unexpected argument list")
	}
	return a
}

// hasWindowOrAgg reports whether an expression calls an aggregate or a
// window function below its top (where the merger cannot see it).
func hasWindowOrAgg(n *pg_query.Node, ss *selectShape) bool {
	found := false
	var walk func(m protoreflect.Message, top bool)
	walk = func(m protoreflect.Message, top bool) {
		if found {
			return
		}
		switch x := m.Interface().(type) {
		case *pg_query.FuncCall:
			name := funcName(x)
			if x.Over != nil || name == "count" || name == "sum" || name == "min" || name == "max" || name == "avg" || otherAggregates[name] {
				if !top {
					found = true
					return
				}
			}
		case *pg_query.SubLink:
			return // its aggregates are its own
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind {
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message(), false)
				}
			} else if !fd.IsMap() {
				walk(v.Message(), false)
			}
			return true
		})
	}
	if n != nil {
		// The top node itself (a bare aggregate) is the merger's business;
		// its arguments are not.
		walk(n.ProtoReflect(), true)
	}
	return found
}

// targetNamed finds the target whose output name is name.
func targetNamed(ts []target, name string) int {
	found := -1
	for i, t := range ts {
		if t.name == name {
			if found >= 0 {
				return -1 // ambiguous
			}
			found = i
		}
	}
	return found
}

// matchTarget finds the target whose expression is n (ignoring positions).
func matchTarget(ts []target, n *pg_query.Node) int {
	for i, t := range ts {
		if t.node != nil && sameTree(t.node.ProtoReflect(), n.ProtoReflect()) {
			return i
		}
	}
	return -1
}

// sameTree compares two parse trees, ignoring location fields.
func sameTree(a, b protoreflect.Message) bool {
	if a.Descriptor() != b.Descriptor() {
		return false
	}
	fields := a.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "location" {
			continue
		}
		if a.Has(fd) != b.Has(fd) {
			return false
		}
		if !a.Has(fd) {
			continue
		}
		va, vb := a.Get(fd), b.Get(fd)
		switch {
		case fd.IsList():
			la, lb := va.List(), vb.List()
			if la.Len() != lb.Len() {
				return false
			}
			for j := 0; j < la.Len(); j++ {
				if fd.Kind() == protoreflect.MessageKind {
					if !sameTree(la.Get(j).Message(), lb.Get(j).Message()) {
						return false
					}
				} else if !la.Get(j).Equal(lb.Get(j)) {
					return false
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			if !sameTree(va.Message(), vb.Message()) {
				return false
			}
		default:
			if !va.Equal(vb) {
				return false
			}
		}
	}
	return true
}

// rewriteSelect rewrites the first statement of sql, a SELECT with the
// given shape, for the shards: avg(x) becomes sum(x) plus a hidden
// count(x) column, and LIMIT/OFFSET become LIMIT limit+offset (or vanish
// when the query aggregates). It returns the text and the hidden columns
// (target index → hidden column index).
func rewriteSelect(sql string, ss *selectShape) (string, map[int]int, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return "", nil, err
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].GetStmt().GetSelectStmt() == nil {
		return "", nil, fmt.Errorf("rewrite: not a single SELECT")
	}
	s := tree.Stmts[0].GetStmt().GetSelectStmt()
	hidden := map[int]int{}
	n := len(s.TargetList)
	for i, t := range s.TargetList {
		if i >= len(ss.targets) || ss.targets[i].agg != AggAvg {
			continue
		}
		rt := t.GetResTarget()
		f := rt.Val.GetFuncCall()
		if f == nil {
			return "", nil, fmt.Errorf("rewrite: avg target %d is not a call", i)
		}
		if rt.Name == "" {
			rt.Name = "avg"
		}
		count := &pg_query.FuncCall{Funcname: []*pg_query.Node{pg_query.MakeStrNode("count")}, Args: f.Args, Funcformat: f.Funcformat, Location: -1}
		f.Funcname = []*pg_query.Node{pg_query.MakeStrNode("sum")}
		hidden[i] = n
		s.TargetList = append(s.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Name: "tg_count_" + strconv.Itoa(i), Val: &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: count}}, Location: -1}}})
		n++
	}
	switch {
	case ss.aggs || ss.grouped:
		s.LimitCount, s.LimitOffset = nil, nil
		s.LimitOption = pg_query.LimitOption_LIMIT_OPTION_DEFAULT
	case s.LimitOffset != nil && s.LimitCount != nil && s.LimitCount.GetAConst().GetIsnull() == false:
		s.LimitCount = &pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: &pg_query.A_Expr{
			Kind: pg_query.A_Expr_Kind_AEXPR_OP, Name: []*pg_query.Node{pg_query.MakeStrNode("+")},
			Lexpr: castBigint(s.LimitCount), Rexpr: castBigint(s.LimitOffset), Location: -1}}}
		s.LimitOffset = nil
	default:
		s.LimitOffset = nil
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", nil, err
	}
	return strings.TrimSpace(out), hidden, nil
}

func castBigint(n *pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg:      n,
		TypeName: &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode("int8")}, Typemod: -1, Location: -1},
		Location: -1}}}
}
