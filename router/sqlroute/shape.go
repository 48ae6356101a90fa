package sqlroute

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A shape is what shard routing needs from a statement's parse tree,
// independent of any shard map: the relations it names (by scope), the
// equality conditions on their columns, the rows of an INSERT, the SET list
// of an UPDATE, the column list of a COPY, and how a SELECT's results would
// combine across shards. It is built once per digest and cached with the
// Decision, so it holds no literal values, only references to them (value).

// valueKind says where a value of a statement comes from.
type valueKind uint8

const (
	valOther      valueKind = iota // an expression the router does not evaluate
	valParam                       // a Bind parameter $n
	valLiteral                     // a constant of the text
	valNull                        // NULL
	valDefault                     // DEFAULT in a VALUES row
	valArrayParam                  // = ANY($n): an array parameter
	valNone                        // absent (no LIMIT)
)

// value refers to a value of a statement. Literals are found again in any
// text with the same digest by their run and element (see litRuns).
type value struct {
	kind   valueKind
	param  int32 // valParam, valArrayParam: 1-based
	run    int32 // valLiteral: the literal run
	elem   int32 // valLiteral: the element of the run, -1 for all of them
	runLen int32 // valLiteral with elem >= 0: the run's length when analysed
	neg    bool  // valLiteral: a minus sign precedes it
}

// rel is one relation reference.
type rel struct {
	name   string // as in Decision.TablesRead
	qual   string // what qualifies its columns: the alias, else the bare name
	scope  int32  // 0: the statement's top level; subqueries and CTEs get their own
	target bool   // the INSERT/UPDATE/DELETE/COPY target
}

// cond is a conjunct column = value or column IN (values) of a WHERE clause
// or of an inner join's ON clause.
type cond struct {
	rel    int32 // index in stmtShape.rels; -1: an unqualified column
	scope  int32 // scope of an unqualified column
	column string
	values []value
}

// joinEq is a conjunct a.col = b.col (any join's ON clause, USING, or WHERE).
type joinEq struct {
	a, b       int32
	colA, colB string
}

// setCol is one assignment of an UPDATE's SET list.
type setCol struct {
	column string
	val    value
}

// insertShape is an INSERT's column list and VALUES rows.
type insertShape struct {
	cols      []string  // nil: no column list
	rows      [][]value // nil for INSERT ... SELECT and DEFAULT VALUES
	selectSrc bool      // INSERT ... SELECT (or a VALUES with expressions the router cannot split)
	conflict  []string  // columns ON CONFLICT DO UPDATE assigns
	returning bool
	// valuesRun is the first literal run of the VALUES rows and rowsText the
	// byte range of "(...), (...)" in the analysed text, for splitting.
	valuesLoc int32
}

// copyShape is a COPY's target columns and format options.
type copyShape struct {
	cols      []string // nil: every column, in table order
	from      bool     // COPY ... FROM
	stdio     bool     // STDIN / STDOUT (not a file or program)
	query     bool     // COPY (query) TO
	format    string   // text, csv or binary
	delimiter string
	null      string
	quote     string
	escape    string
	header    bool
}

// stmtShape is the shape of one statement.
type stmtShape struct {
	kind    Kind
	rels    []rel
	conds   []cond
	joins   []joinEq
	insert  *insertShape
	sets    []setCol
	copy    *copyShape
	sel     *selectShape // the top-level SELECT (also under EXPLAIN, COPY (query), DECLARE)
	explain bool         // EXPLAIN <statement>: the shape is the inner statement's
	// unsafe says why running the statement on several shards would give a
	// wrong answer, whatever the map ("" when only the tables matter).
	unsafe string
}

// shape is the shape of a query: one stmtShape per statement.
type shape struct {
	stmts []stmtShape
}

// litIndex maps positions in the analysed text to literal runs.
type litIndex struct {
	runs litRuns
	at   map[int32][2]int32 // literal start (or its minus sign) → run, element
}

func newLitIndex(sql string) *litIndex {
	ix := &litIndex{at: map[int32][2]int32{}}
	scanLiterals(sql, &ix.runs)
	for r := range ix.runs.runs {
		for e, t := range ix.runs.run(r) {
			ix.at[t.start] = [2]int32{int32(r), int32(e)}
			if t.minus >= 0 {
				ix.at[t.minus] = [2]int32{int32(r), int32(e)}
			}
		}
	}
	return ix
}

// shapeBuilder builds the shape of one statement.
type shapeBuilder struct {
	lits   *litIndex
	st     *stmtShape
	scopes [][]int32 // the rels visible in each open scope, innermost last
	ids    []int32   // scope id of each open scope
	next   int32
}

// buildShape returns the shape of a parsed statement.
func buildShape(n *pg_query.Node, lits *litIndex) stmtShape {
	b := &shapeBuilder{lits: lits, st: &stmtShape{}}
	b.statement(n)
	return *b.st
}

func (b *shapeBuilder) unsafe(reason string) {
	if b.st.unsafe == "" {
		b.st.unsafe = reason
	}
}

func (b *shapeBuilder) open() int32 {
	id := b.next
	b.next++
	b.scopes = append(b.scopes, nil)
	b.ids = append(b.ids, id)
	return id
}

func (b *shapeBuilder) close() {
	b.scopes = b.scopes[:len(b.scopes)-1]
	b.ids = b.ids[:len(b.ids)-1]
}

func (b *shapeBuilder) scope() int32 { return b.ids[len(b.ids)-1] }

func (b *shapeBuilder) addRel(rv *pg_query.RangeVar, target bool) int32 {
	if rv == nil {
		return -1
	}
	qual := rv.Relname
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		qual = rv.Alias.Aliasname
	}
	i := int32(len(b.st.rels))
	b.st.rels = append(b.st.rels, rel{name: relName(rv), qual: qual, scope: b.scope(), target: target})
	b.scopes[len(b.scopes)-1] = append(b.scopes[len(b.scopes)-1], i)
	return i
}

// resolve finds the relation a qualifier names, innermost scope first.
func (b *shapeBuilder) resolve(qual string) int32 {
	for s := len(b.scopes) - 1; s >= 0; s-- {
		for _, i := range b.scopes[s] {
			if b.st.rels[i].qual == qual {
				return i
			}
		}
	}
	return -2
}

func (b *shapeBuilder) statement(n *pg_query.Node) {
	b.open()
	defer b.close()
	switch s := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		b.st.kind = KindSelect
		b.st.sel = b.selectStmt(s.SelectStmt, true)
	case *pg_query.Node_InsertStmt:
		b.st.kind = KindInsert
		b.insertStmt(s.InsertStmt)
	case *pg_query.Node_UpdateStmt:
		b.st.kind = KindUpdate
		u := s.UpdateStmt
		b.with(u.WithClause)
		b.addRel(u.Relation, true)
		b.fromList(u.FromClause)
		for _, t := range u.TargetList {
			rt := t.GetResTarget()
			if rt == nil {
				continue
			}
			if len(rt.Indirection) == 0 {
				b.st.sets = append(b.st.sets, setCol{column: rt.Name, val: b.value(rt.Val)})
			} else {
				b.st.sets = append(b.st.sets, setCol{column: rt.Name, val: value{kind: valOther}})
			}
			b.exprs(rt.Val)
		}
		b.where(u.WhereClause)
		b.exprs(u.ReturningList...)
	case *pg_query.Node_DeleteStmt:
		b.st.kind = KindDelete
		d := s.DeleteStmt
		b.with(d.WithClause)
		b.addRel(d.Relation, true)
		b.fromList(d.UsingClause)
		b.where(d.WhereClause)
		b.exprs(d.ReturningList...)
	case *pg_query.Node_MergeStmt:
		b.st.kind = KindMerge
		m := s.MergeStmt
		b.with(m.WithClause)
		b.addRel(m.Relation, true)
		b.fromItem(m.SourceRelation, false)
		b.unsafe("MERGE")
	case *pg_query.Node_CopyStmt:
		b.copyStmt(s.CopyStmt)
	case *pg_query.Node_ExplainStmt:
		inner := buildShape(s.ExplainStmt.GetQuery(), b.lits)
		*b.st = inner
		b.st.explain = true
		b.st.kind = KindExplain
	case *pg_query.Node_DeclareCursorStmt:
		inner := buildShape(s.DeclareCursorStmt.GetQuery(), b.lits)
		*b.st = inner
		b.st.kind = KindDeclareCursor
		b.unsafe("DECLARE CURSOR")
	default:
		// Utility statements: the relations they name, if any.
		b.st.kind = KindOther
		b.genericRels(n.ProtoReflect())
	}
}

// genericRels records every RangeVar under m (DDL, TRUNCATE, LOCK, ...).
func (b *shapeBuilder) genericRels(m protoreflect.Message) {
	if rv, ok := m.Interface().(*pg_query.RangeVar); ok {
		b.addRel(rv, true)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				b.genericRels(l.Get(i).Message())
			}
		} else if !fd.IsMap() {
			b.genericRels(v.Message())
		}
		return true
	})
}

func (b *shapeBuilder) with(w *pg_query.WithClause) {
	if w == nil {
		return
	}
	for _, c := range w.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		b.subStatement(cte.Ctequery)
	}
}

// subStatement walks a nested statement (CTE, subquery) in a new scope.
func (b *shapeBuilder) subStatement(n *pg_query.Node) {
	b.open()
	defer b.close()
	switch s := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		b.selectStmt(s.SelectStmt, false)
	case *pg_query.Node_InsertStmt:
		b.addRel(s.InsertStmt.Relation, true)
		b.exprs(s.InsertStmt.SelectStmt)
		b.unsafe("data-modifying CTE")
	case *pg_query.Node_UpdateStmt:
		b.addRel(s.UpdateStmt.Relation, true)
		b.fromList(s.UpdateStmt.FromClause)
		b.where(s.UpdateStmt.WhereClause)
		b.unsafe("data-modifying CTE")
	case *pg_query.Node_DeleteStmt:
		b.addRel(s.DeleteStmt.Relation, true)
		b.fromList(s.DeleteStmt.UsingClause)
		b.where(s.DeleteStmt.WhereClause)
		b.unsafe("data-modifying CTE")
	default:
		b.exprs(n)
	}
}

// selectStmt walks a SELECT in the current scope; top is the statement's
// own top level, whose merge shape it returns.
func (b *shapeBuilder) selectStmt(s *pg_query.SelectStmt, top bool) *selectShape {
	if s == nil {
		return nil
	}
	b.with(s.WithClause)
	if s.Op != pg_query.SetOperation_SETOP_NONE && s.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		if top {
			b.unsafe("UNION, INTERSECT or EXCEPT")
		}
		for _, arm := range []*pg_query.SelectStmt{s.Larg, s.Rarg} {
			b.open()
			b.selectStmt(arm, false)
			b.close()
		}
		b.exprs(s.SortClause...)
		b.exprs(s.LimitCount, s.LimitOffset)
		return nil
	}
	b.fromList(s.FromClause)
	b.where(s.WhereClause)
	b.exprs(s.TargetList...)
	b.exprs(s.GroupClause...)
	b.exprs(s.HavingClause)
	b.exprs(s.SortClause...)
	b.exprs(s.ValuesLists...)
	b.exprs(s.DistinctClause...)
	if !top {
		return nil
	}
	return b.mergeShape(s)
}

func (b *shapeBuilder) fromList(items []*pg_query.Node) {
	for _, it := range items {
		b.fromItem(it, true)
	}
}

// fromItem records a FROM item; inner is false under an outer join, whose
// ON constants do not restrict the rows of the join's result.
func (b *shapeBuilder) fromItem(n *pg_query.Node, inner bool) {
	switch f := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		b.addRel(f.RangeVar, false)
	case *pg_query.Node_JoinExpr:
		j := f.JoinExpr
		b.fromItem(j.Larg, inner)
		b.fromItem(j.Rarg, inner)
		innerJoin := j.Jointype == pg_query.JoinType_JOIN_INNER
		for _, c := range conjuncts(j.Quals) {
			b.pred(c, innerJoin)
		}
		b.exprs(j.Quals)
		if len(j.UsingClause) > 0 {
			l, r := j.Larg.GetRangeVar(), j.Rarg.GetRangeVar()
			if l != nil && r != nil {
				li, ri := b.resolve(qualOf(l)), b.resolve(qualOf(r))
				for _, u := range j.UsingClause {
					col := u.GetString_().GetSval()
					if li >= 0 && ri >= 0 && col != "" {
						b.st.joins = append(b.st.joins, joinEq{a: li, b: ri, colA: col, colB: col})
					}
				}
			}
		}
	case *pg_query.Node_RangeSubselect:
		b.subStatement(f.RangeSubselect.Subquery)
	default:
		b.exprs(n)
	}
}

func qualOf(rv *pg_query.RangeVar) string {
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		return rv.Alias.Aliasname
	}
	return rv.Relname
}

func (b *shapeBuilder) where(n *pg_query.Node) {
	for _, c := range conjuncts(n) {
		b.pred(c, true)
	}
	b.exprs(n)
}

// conjuncts splits a boolean expression at its top-level ANDs.
func conjuncts(n *pg_query.Node) []*pg_query.Node {
	if n == nil {
		return nil
	}
	if be := n.GetBoolExpr(); be != nil && be.Boolop == pg_query.BoolExprType_AND_EXPR {
		var out []*pg_query.Node
		for _, a := range be.Args {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []*pg_query.Node{n}
}

// pred records an equality conjunct; constants only when consts is true.
func (b *shapeBuilder) pred(n *pg_query.Node, consts bool) {
	e := n.GetAExpr()
	if e == nil || len(e.Name) != 1 || e.Name[0].GetString_().GetSval() != "=" {
		return
	}
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		lc, rc := e.Lexpr.GetColumnRef(), e.Rexpr.GetColumnRef()
		switch {
		case lc != nil && rc != nil:
			la, lcol := b.column(lc)
			ra, rcol := b.column(rc)
			if la >= 0 && ra >= 0 {
				b.st.joins = append(b.st.joins, joinEq{a: la, b: ra, colA: lcol, colB: rcol})
			}
		case lc != nil && consts:
			b.addCond(lc, b.value(e.Rexpr))
		case rc != nil && consts:
			b.addCond(rc, b.value(e.Lexpr))
		}
	case pg_query.A_Expr_Kind_AEXPR_IN:
		c := e.Lexpr.GetColumnRef()
		list := e.Rexpr.GetList()
		if c == nil || list == nil || !consts {
			return
		}
		b.addCond(c, b.values(list.Items)...)
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY:
		c := e.Lexpr.GetColumnRef()
		if c == nil || !consts {
			return
		}
		r := e.Rexpr
		if tc := r.GetTypeCast(); tc != nil {
			r = tc.Arg
		}
		switch {
		case r.GetAArrayExpr() != nil:
			b.addCond(c, b.values(r.GetAArrayExpr().Elements)...)
		case r.GetParamRef() != nil:
			b.addCond(c, value{kind: valArrayParam, param: r.GetParamRef().Number})
		}
	}
}

// column resolves a column reference to (relation, column name); the
// relation is -1 for an unqualified column, -2 when the qualifier names
// no relation in scope.
func (b *shapeBuilder) column(c *pg_query.ColumnRef) (int32, string) {
	names := make([]string, 0, len(c.Fields))
	for _, f := range c.Fields {
		s := f.GetString_()
		if s == nil {
			return -2, "" // a.* or similar
		}
		names = append(names, s.Sval)
	}
	switch len(names) {
	case 1:
		return -1, names[0]
	case 0:
		return -2, ""
	}
	return b.resolve(names[len(names)-2]), names[len(names)-1]
}

func (b *shapeBuilder) addCond(c *pg_query.ColumnRef, vals ...value) {
	r, col := b.column(c)
	if r == -2 || col == "" || len(vals) == 0 {
		return
	}
	b.st.conds = append(b.st.conds, cond{rel: r, scope: b.scope(), column: col, values: vals})
}

// values maps a list of expressions, collapsing a list that is exactly one
// whole literal run into one value (its length varies with the digest).
func (b *shapeBuilder) values(items []*pg_query.Node) []value {
	out := make([]value, 0, len(items))
	for _, it := range items {
		out = append(out, b.value(it))
	}
	if len(out) > 0 && out[0].kind == valLiteral && !out[0].neg && out[0].elem == 0 && int(out[0].runLen) == len(out) {
		whole := true
		for i, v := range out {
			if v.kind != valLiteral || v.run != out[0].run || int(v.elem) != i || v.neg {
				whole = false
				break
			}
		}
		if whole {
			return []value{{kind: valLiteral, run: out[0].run, elem: -1}}
		}
	}
	return out
}

// value maps an expression to the value it denotes, when the router can
// evaluate it: a literal, a parameter, NULL, DEFAULT, possibly cast.
func (b *shapeBuilder) value(n *pg_query.Node) value {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_AConst:
		if x.AConst.Isnull {
			return value{kind: valNull}
		}
		switch x.AConst.Val.(type) {
		case *pg_query.A_Const_Ival, *pg_query.A_Const_Sval, *pg_query.A_Const_Fval:
		default:
			return value{kind: valOther} // TRUE, FALSE, bit strings
		}
		re, ok := b.lits.at[x.AConst.Location]
		if !ok {
			return value{kind: valOther}
		}
		run := b.lits.runs.run(int(re[0]))
		t := run[re[1]]
		return value{kind: valLiteral, run: re[0], elem: re[1], runLen: int32(len(run)), neg: t.start != x.AConst.Location}
	case *pg_query.Node_ParamRef:
		return value{kind: valParam, param: x.ParamRef.Number}
	case *pg_query.Node_TypeCast:
		return b.value(x.TypeCast.Arg)
	case *pg_query.Node_SetToDefault:
		return value{kind: valDefault}
	}
	return value{kind: valOther}
}

// exprs looks for nested statements (subqueries) in expressions.
func (b *shapeBuilder) exprs(ns ...*pg_query.Node) {
	for _, n := range ns {
		if n != nil {
			b.findSubqueries(n.ProtoReflect())
		}
	}
}

func (b *shapeBuilder) findSubqueries(m protoreflect.Message) {
	switch x := m.Interface().(type) {
	case *pg_query.SubLink:
		b.exprs(x.Testexpr)
		b.subStatement(x.Subselect)
		return
	case *pg_query.RangeSubselect:
		b.subStatement(x.Subquery)
		return
	case *pg_query.SelectStmt:
		b.open()
		b.selectStmt(x, false)
		b.close()
		return
	case *pg_query.RangeVar:
		b.addRel(x, false)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				b.findSubqueries(l.Get(i).Message())
			}
		} else if !fd.IsMap() {
			b.findSubqueries(v.Message())
		}
		return true
	})
}

func (b *shapeBuilder) insertStmt(s *pg_query.InsertStmt) {
	b.with(s.WithClause)
	b.addRel(s.Relation, true)
	ins := &insertShape{returning: len(s.ReturningList) > 0}
	for _, c := range s.Cols {
		rt := c.GetResTarget()
		if rt == nil || len(rt.Indirection) > 0 {
			ins.cols = nil
			ins.selectSrc = true
			break
		}
		ins.cols = append(ins.cols, rt.Name)
	}
	if oc := s.OnConflictClause; oc != nil {
		for _, t := range oc.TargetList {
			if rt := t.GetResTarget(); rt != nil {
				ins.conflict = append(ins.conflict, rt.Name)
			}
		}
		b.exprs(oc.WhereClause)
		b.exprs(oc.TargetList...)
	}
	sel := s.SelectStmt.GetSelectStmt()
	switch {
	case sel == nil:
		// DEFAULT VALUES
	case len(sel.ValuesLists) > 0 && sel.WithClause == nil && len(sel.SortClause) == 0 && sel.LimitCount == nil && sel.LimitOffset == nil:
		for _, row := range sel.ValuesLists {
			items := row.GetList().GetItems()
			vals := make([]value, len(items))
			for i, it := range items {
				vals[i] = b.value(it)
			}
			ins.rows = append(ins.rows, vals)
		}
		b.exprs(sel.ValuesLists...)
		if len(sel.ValuesLists) > 0 {
			if l := sel.ValuesLists[0].GetList(); l != nil && len(l.Items) > 0 {
				ins.valuesLoc = exprLocation(l.Items[0])
			}
		}
	default:
		ins.selectSrc = true
		b.open()
		b.selectStmt(sel, false)
		b.close()
	}
	b.exprs(s.ReturningList...)
	b.st.insert = ins
}

// exprLocation returns an expression's position in the text, -1 if unknown.
func exprLocation(n *pg_query.Node) int32 {
	m := n.ProtoReflect()
	var loc int32 = -1
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			inner := v.Message()
			if f := inner.Descriptor().Fields().ByName("location"); f != nil {
				loc = int32(inner.Get(f).Int())
				return false
			}
		}
		return true
	})
	return loc
}

func (b *shapeBuilder) copyStmt(c *pg_query.CopyStmt) {
	if c.IsFrom {
		b.st.kind = KindCopyFrom
	} else {
		b.st.kind = KindCopyTo
	}
	cs := &copyShape{from: c.IsFrom, stdio: c.Filename == "" && !c.IsProgram, format: "text", delimiter: "\t", null: `\N`, quote: `"`}
	cs.options(c.Options)
	if c.Query != nil {
		cs.query = true
		inner := buildShape(c.Query, b.lits)
		kind := b.st.kind
		*b.st = inner
		b.st.kind = kind
		b.st.copy = cs
		return
	}
	b.addRel(c.Relation, c.IsFrom)
	for _, a := range c.Attlist {
		cs.cols = append(cs.cols, a.GetString_().GetSval())
	}
	if c.WhereClause != nil {
		b.exprs(c.WhereClause)
	}
	b.st.copy = cs
}

// options reads a COPY's format options.
func (cs *copyShape) options(opts []*pg_query.Node) {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		arg := defElemString(d.Arg)
		switch d.Defname {
		case "format":
			cs.format = strings.ToLower(arg)
		case "delimiter":
			cs.delimiter = arg
		case "null":
			cs.null = arg
		case "quote":
			cs.quote = arg
		case "escape":
			cs.escape = arg
		case "header":
			cs.header = d.Arg == nil || defElemBool(d.Arg)
		}
	}
	if cs.format == "csv" {
		if cs.delimiter == "\t" && !hasOption(opts, "delimiter") {
			cs.delimiter = ","
		}
		if !hasOption(opts, "null") {
			cs.null = ""
		}
		if cs.escape == "" {
			cs.escape = cs.quote
		}
	}
}

func hasOption(opts []*pg_query.Node, name string) bool {
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && d.Defname == name {
			return true
		}
	}
	return false
}

func defElemString(n *pg_query.Node) string {
	switch {
	case n == nil:
		return ""
	case n.GetString_() != nil:
		return n.GetString_().Sval
	case n.GetAConst() != nil:
		if s := n.GetAConst().GetSval(); s != nil {
			return s.Sval
		}
	case n.GetTypeName() != nil:
		names := n.GetTypeName().Names
		if len(names) > 0 {
			return names[len(names)-1].GetString_().GetSval()
		}
	}
	return ""
}

func defElemBool(n *pg_query.Node) bool {
	if b := n.GetBoolean(); b != nil {
		return b.Boolval
	}
	if c := n.GetAConst(); c != nil {
		if bv := c.GetBoolval(); bv != nil {
			return bv.Boolval
		}
		if iv := c.GetIval(); iv != nil {
			return iv.Ival != 0
		}
		if sv := c.GetSval(); sv != nil {
			switch strings.ToLower(sv.Sval) {
			case "true", "on", "1", "yes":
				return true
			}
			return false
		}
	}
	switch strings.ToLower(defElemString(n)) {
	case "true", "on", "1", "yes":
		return true
	}
	return false
}
