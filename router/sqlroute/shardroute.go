package sqlroute

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unsafe"

	"github.com/maypok86/otter/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/tiergate/tiergate/shardmap"
)

// MaxRouterShards is the most shards a ShardRouter handles (shard sets are
// 64-bit masks).
const MaxRouterShards = 64

// Errors of shard routing. The session layer reports ErrCrossShard and
// ErrShardKeyUpdate as SQLSTATE 0A000 (feature not supported) and
// ErrShardKey as 22023 (invalid parameter value).
var (
	// ErrCrossShard: the statement would need several shards and the proxy
	// cannot run it there correctly (a window function across shards, a
	// join of sharded tables on other columns, ...).
	ErrCrossShard = errors.New("cross-shard statement not supported")
	// ErrShardKeyUpdate: an UPDATE moves rows to another shard.
	ErrShardKeyUpdate = errors.New("UPDATE of the shard key would move rows to another shard")
	// ErrShardKey: a shard key value is missing, NULL or not valid for its
	// table (wraps shardmap.ErrBadKey or shardmap.ErrUnknownShard when they
	// are the cause).
	ErrShardKey = errors.New("bad shard key")
)

// ShardOptions tune a ShardRouter.
type ShardOptions struct {
	// AllowUnsafe runs statements the merger cannot answer correctly on
	// every shard anyway, concatenating the results, instead of failing
	// with ErrCrossShard (allow_unsafe_cross_shard).
	AllowUnsafe bool
}

// ShardRouter decides which shards of one sharded database a statement
// runs on, from the Classifier's decision (its cached parse-tree shape)
// and the shard map. It is immutable and safe for concurrent use; build a
// new one when the map changes. Route does not allocate for a statement
// that lands on one shard by a parameter or a literal.
type ShardRouter struct {
	m    *shardmap.Map
	opts ShardOptions

	rewrites *otter.Cache[string, *rewritten] // text → rewritten SELECT for the shards
}

type rewritten struct {
	sql    string
	hidden map[int]int
}

// NewShardRouter returns a router over m. It fails when m has more than
// MaxRouterShards shards.
func NewShardRouter(m *shardmap.Map, opts ShardOptions) (*ShardRouter, error) {
	if m.Shards() > MaxRouterShards {
		return nil, fmt.Errorf("sqlroute: %d shards: at most %d are supported", m.Shards(), MaxRouterShards)
	}
	cache, err := otter.New(&otter.Options[string, *rewritten]{MaximumSize: 1000, Executor: func(fn func()) { fn() }})
	if err != nil {
		return nil, err
	}
	return &ShardRouter{m: m, opts: opts, rewrites: cache}, nil
}

// Map returns the shard map the router routes by.
func (r *ShardRouter) Map() *shardmap.Map { return r.m }

// ShardArgs are the per-execution inputs of Route besides the text.
type ShardArgs struct {
	// Params and Formats are the Bind message's parameter values (nil for
	// NULL) and format codes (none: all text; one: all the same; else one
	// per parameter). Nil for a simple query.
	Params  [][]byte
	Formats []int16
	// Bound is true when Params are known (a Bind); false when routing a
	// statement before its parameters arrive.
	Bound bool
	// Shard is the session's SET tiergate.shard (a shard name or number),
	// Key its SET tiergate.shard_key; "" when unset. A comment hint in the
	// text takes precedence over both.
	Shard string
	Key   string
	// Explain fills ShardRoute.Detail.
	Explain bool
}

// ShardRoute is where a statement runs in a sharded database.
type ShardRoute struct {
	// Shard is the one shard the statement runs on, or -1.
	Shard int
	// Shards are the shards of a multi-shard statement (a fan-out read or a
	// write to several shards), ascending; nil otherwise.
	Shards []int
	// Any: the statement names no sharded table (or only reads reference
	// tables): any one shard answers it; Shard is -1.
	Any bool
	// Write: the statement may change data (FlagWrite).
	Write bool
	// Reason is a short why ("shard key", "fan-out", "reference table").
	Reason string
	// Detail explains the decision step by step (with ShardArgs.Explain).
	Detail string
	// Merge says how to combine a multi-shard read's rows; nil means
	// concatenate them (writes, EXPLAIN, unsafe reads when allowed).
	Merge *Merge
	// Inserts splits a multi-row INSERT whose rows belong to several
	// shards: one statement per shard.
	Inserts []ShardInsert
	// Copy splits the rows of a COPY ... FROM STDIN into a sharded table.
	Copy *CopySplit
	// CopyOut is the format of a COPY ... TO STDOUT run on several shards,
	// whose data the proxy concatenates (one header, one binary trailer).
	CopyOut *CopySplit
	// Unsafe: a multi-shard statement the merger cannot answer correctly,
	// run anyway because of ShardOptions.AllowUnsafe.
	Unsafe bool
	// Replicated: a write of a table that is on every shard (a reference
	// table, DDL): every shard does the same, so one shard's command tag
	// stands for all (row counts are not summed).
	Replicated bool
}

// Multi reports whether the statement runs on more than one shard.
func (r *ShardRoute) Multi() bool { return len(r.Shards) > 1 }

// ShardInsert is the part of a multi-row INSERT for one shard.
type ShardInsert struct {
	Shard int
	// SQL is the INSERT with only this shard's rows; its parameters are
	// renumbered $1.. in order of Params.
	SQL string
	// Params are the client's parameter numbers (1-based) that SQL's
	// parameters take, in order.
	Params []int
}

// CopySplit tells how to split COPY ... FROM STDIN rows by shard.
type CopySplit struct {
	// Table is the target table; nil for a table on every shard (a
	// reference table), whose rows all go to every shard (KeyCol is -1).
	Table *shardmap.Table
	// KeyCol is the index of the shard key among the copied columns, and
	// Cols their number.
	KeyCol, Cols int
	// Format is text, csv or binary; the rest are the COPY options.
	Format    string
	Delimiter byte
	Null      string
	Quote     byte
	Escape    byte
	Header    bool
}

// routeCtx carries one Route call's state.
type routeCtx struct {
	sql     string
	d       Decision // copies: pointers to the caller's would make them escape
	args    ShardArgs
	lits    *litRuns // scanned on first use
	scanned bool
	r       *ShardRouter
	det     *strings.Builder
}

// litBuf is stack room for the literals of most statements.
type litBuf struct {
	toks [16]litTok
	runs [16]int32
}

// errReshape: a literal run's length differs from the analysed text's;
// the text must be analysed on its own.
var errReshape = errors.New("reshape")

func (rc *routeCtx) literals() *litRuns {
	if !rc.scanned {
		scanLiterals(rc.sql, rc.lits)
		rc.scanned = true
	}
	return rc.lits
}

func (rc *routeCtx) explain(format string, a ...any) {
	if rc.det != nil {
		if rc.det.Len() > 0 {
			rc.det.WriteString("; ")
		}
		fmt.Fprintf(rc.det, format, a...)
	}
}

// Route decides where sql, classified as d by a Classifier, runs. Errors wrap ErrCrossShard, ErrShardKeyUpdate or ErrShardKey.
func (r *ShardRouter) Route(sql string, d *Decision, args *ShardArgs) (ShardRoute, error) {
	var lb litBuf
	lits := litRuns{toks: lb.toks[:0], runs: lb.runs[:0]}
	rc := routeCtx{sql: sql, d: *d, r: r, lits: &lits}
	if args != nil {
		rc.args = *args
	}
	if rc.args.Explain {
		rc.det = &strings.Builder{}
	}
	route, err := r.route(&rc, rc.d.shape)
	if errors.Is(err, errReshape) {
		// A literal list of another length than when the shape was cached:
		// analyse this text on its own (not cached).
		var sh *shape
		if tree, perr := pg_query.Parse(sql); perr == nil {
			sh = shapeOf(sql, tree)
		}
		rc.scanned = false
		route, err = r.route(&rc, sh)
	}
	route.Write = d.Has(FlagWrite)
	if rc.det != nil {
		route.Detail = rc.det.String()
	}
	return route, err
}

func (r *ShardRouter) route(rc *routeCtx, sh *shape) (ShardRoute, error) {
	d := &rc.d
	if s, ok, err := r.hinted(rc, sh); ok || err != nil {
		return ShardRoute{Shard: s, Reason: "hint"}, err
	}
	if sh == nil || len(sh.stmts) == 0 {
		if rc.det != nil {
			rc.explain("statement not analysed (%s): any shard", d.Reason)
		}
		return ShardRoute{Shard: -1, Any: true, Reason: d.Reason}, nil
	}
	if len(sh.stmts) == 1 {
		return r.routeStmt(rc, &sh.stmts[0], kindAt(d, 0))
	}
	// Several statements: they must agree on one shard, or all be
	// statements every shard runs alike (a schema script: DDL and
	// reference-table writes), which then run on every shard.
	out := ShardRoute{Shard: -1, Any: true, Reason: "any shard"}
	every := false
	for i := range sh.stmts {
		sr, err := r.routeStmt(rc, &sh.stmts[i], kindAt(d, i))
		if err != nil {
			return sr, err
		}
		switch {
		case sr.Any:
		case sr.Replicated && sr.Copy == nil && len(sr.Shards) == r.m.Shards() && (out.Any || every):
			every = true
			out = sr
		case sr.Shards != nil || sr.Inserts != nil || sr.Copy != nil || every:
			return sr, fmt.Errorf("%w: a statement of a multi-statement query needs several shards; send it on its own", ErrCrossShard)
		case out.Any:
			out = sr
		case out.Shard != sr.Shard:
			return sr, fmt.Errorf("%w: the statements of a multi-statement query are on shards %s and %s", ErrCrossShard, r.m.ShardName(out.Shard), r.m.ShardName(sr.Shard))
		}
	}
	return out, nil
}

func kindAt(d *Decision, i int) Kind {
	if i < len(d.Kinds) {
		return d.Kinds[i]
	}
	return d.Kind
}

// hinted applies a shard hint: the comment's, else the session's.
func (r *ShardRouter) hinted(rc *routeCtx, sh *shape) (int, bool, error) {
	var kind hint
	var val string
	if rc.d.Has(FlagShardHint) {
		var sc scanResult
		scanSQL(rc.sql, &sc, nil)
		kind, val = sc.shardHint, sc.shardHintVal
	}
	if kind == hintNone {
		switch {
		case rc.args.Shard != "":
			kind, val = hintShard, rc.args.Shard
		case rc.args.Key != "":
			kind, val = hintShardKey, rc.args.Key
		}
	}
	switch kind {
	case hintShard:
		s, ok := r.m.ShardIndex(val)
		if !ok {
			return -1, false, fmt.Errorf("%w: shard %q does not exist", ErrShardKey, val)
		}
		if rc.det != nil {
			rc.explain("hint shard=%s: shard %s", val, r.m.ShardName(s))
		}
		return s, true, nil
	case hintShardKey:
		t := r.hintTable(sh)
		if t == nil {
			return -1, false, fmt.Errorf("%w: shard_key hint but no sharded table", ErrShardKey)
		}
		k, err := shardmap.ParseKey(t.Type(), val)
		if err == nil {
			var s int
			if s, err = t.ShardFor(k); err == nil {
				if rc.det != nil {
					rc.explain("hint shard_key=%s (mapped as a key of %s): shard %s", val, t.Name(), r.m.ShardName(s))
				}
				return s, true, nil
			}
		}
		return -1, false, fmt.Errorf("%w: %w", ErrShardKey, err)
	}
	return -1, false, nil
}

// hintTable is the table whose function maps a shard_key hint: the first
// sharded table of the statement, else the map's first table.
func (r *ShardRouter) hintTable(sh *shape) *shardmap.Table {
	if sh != nil {
		for _, st := range sh.stmts {
			for _, rl := range st.rels {
				if t, ok := r.m.Table(rl.name); ok {
					return t
				}
			}
		}
	}
	if ts := r.m.Tables(); len(ts) > 0 {
		return ts[0]
	}
	return nil
}

// session-only statements: they run wherever the session's connection is.
func neutralKind(k Kind) bool {
	switch k {
	case KindEmpty, KindSet, KindReset, KindShow, KindDiscard, KindListen, KindUnlisten, KindNotify,
		KindPrepare, KindExecute, KindDeallocate, KindFetch, KindClose, KindBegin, KindCommit, KindRollback,
		KindSavepoint, KindRelease, KindRollbackTo, KindSetTransaction, KindProxySet, KindCall, KindDo,
		KindPrepareTransaction, KindCommitPrepared, KindRollbackPrepared, KindUnknown:
		return true
	}
	return false
}

// relInfo is a relation of the statement as the map sees it.
type relInfo struct {
	t    *shardmap.Table // nil: not sharded
	mask uint64          // the shards its rows may be on (after conditions)
	set  bool            // a condition restricted mask
	comp int             // co-location component
}

func (r *ShardRouter) all() uint64 {
	n := r.m.Shards()
	if n == 64 {
		return ^uint64(0)
	}
	return 1<<uint(n) - 1
}

// routeStmt routes one statement.
func (r *ShardRouter) routeStmt(rc *routeCtx, st *stmtShape, kind Kind) (ShardRoute, error) {
	none := ShardRoute{Shard: -1}
	if st.kind == KindOther {
		if neutralKind(kind) {
			if rc.det != nil {
				rc.explain("%s: any shard", kind)
			}
			return ShardRoute{Shard: -1, Any: true, Reason: kind.String()}, nil
		}
		if len(st.rels) == 0 && kind != KindDDL && kind != KindTruncate && kind != KindMaintenance && kind != KindDCL {
			if rc.det != nil {
				rc.explain("%s: any shard", kind)
			}
			return ShardRoute{Shard: -1, Any: true, Reason: kind.String()}, nil
		}
		if rc.det != nil {
			rc.explain("%s: every shard", kind)
		}
		route := r.everyShard("schema change")
		route.Replicated = true
		return route, nil
	}
	var buf [8]relInfo
	infos, err := r.relInfos(rc, st, buf[:0])
	if err != nil {
		return none, err
	}
	sharded := 0
	for _, ri := range infos {
		if ri.t != nil {
			sharded++
		}
	}
	switch st.kind {
	case KindInsert:
		return r.routeInsert(rc, st, infos)
	case KindCopyFrom:
		return r.routeCopyFrom(rc, st, infos)
	case KindUpdate, KindDelete, KindMerge:
		return r.routeModify(rc, st, infos)
	}
	// Reads: SELECT, EXPLAIN, COPY TO, DECLARE.
	if sharded == 0 {
		if rc.d.Has(FlagWrite) && len(st.rels) == 0 {
			if rc.det != nil {
				rc.explain("no table: any shard")
			}
		} else {
			if rc.det != nil {
				rc.explain("no sharded table: any shard")
			}
		}
		return ShardRoute{Shard: -1, Any: true, Reason: "no sharded table"}, nil
	}
	mask, why := r.spread(rc, st, infos)
	if bits.OnesCount64(mask) == 1 {
		s := bits.TrailingZeros64(mask)
		if rc.det != nil {
			rc.explain("shard %s", r.m.ShardName(s))
		}
		return ShardRoute{Shard: s, Reason: "shard key"}, nil
	}
	if mask == 0 {
		// The key matches no shard (key = NULL): any shard answers with
		// no rows.
		if rc.det != nil {
			rc.explain("the shard key matches no shard: any shard")
		}
		return ShardRoute{Shard: -1, Any: true, Reason: "no shard"}, nil
	}
	route := ShardRoute{Shard: -1, Shards: maskList(mask), Reason: "fan-out"}
	if why == "" {
		why = st.unsafe
	}
	if why == "" && st.sel != nil && !st.explain && st.copy == nil {
		m, unsafe, err := r.mergePlan(rc, st.sel)
		if err != nil {
			return none, err
		}
		why = unsafe
		route.Merge = m
	}
	if cs := st.copy; cs != nil {
		// COPY ... TO: the shards' data is concatenated.
		if !cs.stdio {
			return none, fmt.Errorf("%w: COPY ... TO a file or program from several shards", ErrCrossShard)
		}
		if why == "" && st.sel != nil {
			m, unsafe, err := r.mergePlan(rc, st.sel)
			if err != nil {
				return none, err
			}
			if unsafe != "" || len(m.Sort) > 0 || m.Group || m.Distinct || m.Limit >= 0 || m.Offset > 0 || m.SQL != "" {
				why = "COPY (query) TO with ORDER BY, LIMIT, aggregates or DISTINCT across shards"
			}
		}
		route.CopyOut = &CopySplit{KeyCol: -1, Format: cs.format, Header: cs.header}
	}
	if why != "" {
		if !r.opts.AllowUnsafe {
			return none, fmt.Errorf("%w: %s (add the shard key to the statement, or set allow_unsafe_cross_shard)", ErrCrossShard, why)
		}
		route.Merge = nil
		route.Unsafe = true
		if rc.det != nil {
			rc.explain("unsafe (%s): results concatenated", why)
		}
	}
	if rc.det != nil {
		rc.explain("fan-out to %d shards", len(route.Shards))
	}
	return route, nil
}

func (r *ShardRouter) everyShard(reason string) ShardRoute {
	return ShardRoute{Shard: -1, Shards: maskList(r.all()), Reason: reason}
}

func maskList(mask uint64) []int {
	out := make([]int, 0, bits.OnesCount64(mask))
	for mask != 0 {
		s := bits.TrailingZeros64(mask)
		out = append(out, s)
		mask &^= 1 << uint(s)
	}
	return out
}

// relInfos resolves the relations against the map and applies the
// conditions on shard keys.
func (r *ShardRouter) relInfos(rc *routeCtx, st *stmtShape, infos []relInfo) ([]relInfo, error) {
	all := r.all()
	for i, rl := range st.rels {
		ri := relInfo{mask: all, comp: i}
		if t, ok := r.m.Table(rl.name); ok {
			ri.t = t
		}
		infos = append(infos, ri)
	}
	for _, c := range st.conds {
		i := int(c.rel)
		if i == -1 {
			i = onlyShardedIn(st, infos, c.scope)
		}
		if i < 0 || infos[i].t == nil || infos[i].t.Column() != c.column {
			continue
		}
		m, ok, err := r.valuesMask(rc, infos[i].t, c.values)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		infos[i].mask &= m
		infos[i].set = true
		if rc.det != nil {
			rc.explain("%s.%s: %s", st.rels[i].qual, c.column, r.maskNames(m))
		}
	}
	// Co-located tables joined on their keys share their rows' shards.
	for changed := true; changed; {
		changed = false
		for _, j := range st.joins {
			a, b := &infos[j.a], &infos[j.b]
			if a.t == nil || b.t == nil || a.comp == b.comp || !a.t.CoLocated(b.t) || a.t.Column() != j.colA || b.t.Column() != j.colB {
				continue
			}
			from, to := b.comp, a.comp
			for k := range infos {
				if infos[k].comp == from {
					infos[k].comp = to
				}
			}
			changed = true
		}
	}
	for k := range infos {
		if infos[k].t == nil {
			continue
		}
		for l := range infos {
			if l != k && infos[l].comp == infos[k].comp && infos[l].set {
				infos[k].mask &= infos[l].mask
				infos[k].set = true
			}
		}
	}
	return infos, nil
}

// onlyShardedIn returns the only sharded relation of a scope, else -1.
func onlyShardedIn(st *stmtShape, infos []relInfo, scope int32) int {
	found := -1
	for i, rl := range st.rels {
		if rl.scope == scope && infos[i].t != nil {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// spread returns the shards a statement's sharded relations may need, and
// why running it on several of them would be wrong ("" when it would not).
func (r *ShardRouter) spread(rc *routeCtx, st *stmtShape, infos []relInfo) (uint64, string) {
	var mask uint64
	comp, why := -1, ""
	for i, ri := range infos {
		if ri.t == nil {
			continue
		}
		if !ri.set {
			if rc.det != nil {
				rc.explain("no condition on %s.%s: every shard", st.rels[i].qual, ri.t.Column())
			}
		}
		mask |= ri.mask
		if st.rels[i].scope != 0 && why == "" {
			why = "a subquery or CTE reads sharded table " + st.rels[i].name
		}
		switch {
		case comp < 0:
			comp = ri.comp
		case comp != ri.comp && why == "":
			why = "a join of sharded tables that is not on co-located shard keys"
		}
	}
	return mask, why
}

func (r *ShardRouter) maskNames(m uint64) string {
	if m == 0 {
		return "no shard"
	}
	var names []string
	for _, s := range maskList(m) {
		names = append(names, r.m.ShardName(s))
	}
	return "shard " + strings.Join(names, ", ")
}

// valuesMask maps the values of a condition to the shards of their keys;
// ok is false when some value cannot be evaluated.
func (r *ShardRouter) valuesMask(rc *routeCtx, t *shardmap.Table, vals []value) (uint64, bool, error) {
	var m uint64
	for _, v := range vals {
		vm, ok, err := r.valueMask(rc, t, v)
		if err != nil || !ok {
			return 0, ok, err
		}
		m |= vm
	}
	return m, true, nil
}

func (r *ShardRouter) valueMask(rc *routeCtx, t *shardmap.Table, v value) (uint64, bool, error) {
	switch v.kind {
	case valNull:
		return 0, true, nil
	case valParam:
		raw, format, ok := rc.param(int(v.param))
		if !ok {
			return 0, false, nil
		}
		if raw == nil {
			return 0, true, nil
		}
		return r.keyMask(t, raw, format)
	case valLiteral:
		lits := rc.literals()
		run := lits.run(int(v.run))
		if run == nil {
			return 0, false, errReshape
		}
		if v.elem >= 0 {
			if len(run) != int(v.runLen) {
				return 0, false, errReshape
			}
			run = run[v.elem : v.elem+1]
		}
		var m uint64
		for i, tok := range run {
			s, ok := literalValue(rc.sql, tok, v.neg && i == 0)
			if !ok {
				return 0, false, nil
			}
			km, ok, err := r.keyMask(t, unsafe.Slice(unsafe.StringData(s), len(s)), shardmap.TextFormat)
			if err != nil || !ok {
				return 0, ok, err
			}
			m |= km
		}
		return m, true, nil
	case valArrayParam:
		raw, format, ok := rc.param(int(v.param))
		if !ok || raw == nil {
			return 0, ok, nil
		}
		elems, err := decodeArray(raw, format)
		if err != nil {
			return 0, false, nil
		}
		var m uint64
		for _, e := range elems {
			if e.null {
				continue
			}
			km, ok, err := r.keyMask(t, e.b, e.format)
			if err != nil || !ok {
				return 0, ok, err
			}
			m |= km
		}
		return m, true, nil
	}
	return 0, false, nil
}

func (r *ShardRouter) keyMask(t *shardmap.Table, raw []byte, format int16) (uint64, bool, error) {
	k, err := t.Type().Decode(raw, format)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", ErrShardKey, err)
	}
	s, err := t.ShardFor(k)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", ErrShardKey, err)
	}
	return 1 << uint(s), true, nil
}

// param returns Bind parameter n (1-based) and its format.
func (rc *routeCtx) param(n int) ([]byte, int16, bool) {
	a := &rc.args
	if !a.Bound || n < 1 || n > len(a.Params) {
		return nil, 0, false
	}
	var f int16
	switch len(a.Formats) {
	case 0:
	case 1:
		f = a.Formats[0]
	default:
		if n-1 < len(a.Formats) {
			f = a.Formats[n-1]
		}
	}
	return a.Params[n-1], f, true
}

// targetRel returns the DML target's index, -1 if there is none.
func targetRel(st *stmtShape) int {
	for i, rl := range st.rels {
		if rl.target {
			return i
		}
	}
	return -1
}

// writeAll routes a write to a table that is not sharded: every shard.
func (r *ShardRouter) writeAll(rc *routeCtx, st *stmtShape, infos []relInfo, name string) (ShardRoute, error) {
	for i, ri := range infos {
		if ri.t != nil && !r.opts.AllowUnsafe {
			return ShardRoute{Shard: -1}, fmt.Errorf("%w: a write to %s reads sharded table %s", ErrCrossShard, name, st.rels[i].name)
		}
	}
	if rc.det != nil {
		rc.explain("%s is not sharded: every shard", name)
	}
	route := r.everyShard("reference table")
	route.Replicated = true
	return route, nil
}

func (r *ShardRouter) routeModify(rc *routeCtx, st *stmtShape, infos []relInfo) (ShardRoute, error) {
	none := ShardRoute{Shard: -1}
	ti := targetRel(st)
	if ti < 0 {
		return none, fmt.Errorf("%w: no target table", ErrCrossShard)
	}
	if infos[ti].t == nil {
		return r.writeAll(rc, st, infos, st.rels[ti].name)
	}
	t := infos[ti].t
	mask, why := r.spread(rc, st, infos)
	if why == "" {
		why = st.unsafe
	}
	for _, sc := range st.sets {
		if sc.column != t.Column() {
			continue
		}
		nm, ok, err := r.valueMask(rc, t, sc.val)
		if err != nil {
			return none, err
		}
		if !ok || bits.OnesCount64(nm) != 1 {
			return none, fmt.Errorf("%w: SET %s to an expression the proxy cannot map to a shard", ErrShardKeyUpdate, sc.column)
		}
		if bits.OnesCount64(mask) != 1 || mask != nm {
			return none, fmt.Errorf("%w: the new %s is on shard %s, the rows are on %s", ErrShardKeyUpdate, sc.column,
				r.m.ShardName(bits.TrailingZeros64(nm)), r.maskNames(mask))
		}
	}
	switch {
	case bits.OnesCount64(mask) == 1:
		s := bits.TrailingZeros64(mask)
		if rc.det != nil {
			rc.explain("shard %s", r.m.ShardName(s))
		}
		return ShardRoute{Shard: s, Reason: "shard key"}, nil
	case mask == 0:
		if rc.det != nil {
			rc.explain("the shard key matches no shard: any shard")
		}
		return ShardRoute{Shard: -1, Any: true, Reason: "no shard"}, nil
	}
	if why != "" && !r.opts.AllowUnsafe {
		return none, fmt.Errorf("%w: %s", ErrCrossShard, why)
	}
	if rc.det != nil {
		rc.explain("write on %d shards", bits.OnesCount64(mask))
	}
	return ShardRoute{Shard: -1, Shards: maskList(mask), Reason: "multi-shard write", Unsafe: why != ""}, nil
}

func (r *ShardRouter) routeInsert(rc *routeCtx, st *stmtShape, infos []relInfo) (ShardRoute, error) {
	none := ShardRoute{Shard: -1}
	ti := targetRel(st)
	if ti < 0 || st.insert == nil {
		return none, fmt.Errorf("%w: INSERT without a target", ErrCrossShard)
	}
	if infos[ti].t == nil {
		return r.writeAll(rc, st, infos, st.rels[ti].name)
	}
	t, ins := infos[ti].t, st.insert
	name := st.rels[ti].name
	for i, ri := range infos {
		if i != ti && ri.t != nil {
			return none, fmt.Errorf("%w: INSERT into %s reads sharded table %s", ErrCrossShard, name, st.rels[i].name)
		}
	}
	if ins.selectSrc || ins.rows == nil {
		return none, fmt.Errorf("%w: INSERT into sharded table %s must use VALUES (INSERT ... SELECT and DEFAULT VALUES cannot be routed)", ErrCrossShard, name)
	}
	if ins.cols == nil {
		return none, fmt.Errorf("%w: INSERT into sharded table %s needs a column list", ErrShardKey, name)
	}
	k := -1
	for i, c := range ins.cols {
		if c == t.Column() {
			k = i
		}
	}
	if k < 0 {
		return none, fmt.Errorf("%w: INSERT into %s must set the shard key column %s", ErrShardKey, name, t.Column())
	}
	for _, c := range ins.conflict {
		if c == t.Column() {
			return none, fmt.Errorf("%w: ON CONFLICT DO UPDATE SET %s", ErrShardKeyUpdate, c)
		}
	}
	var first int = -1
	var rowShards []int
	for ri, row := range ins.rows {
		if k >= len(row) {
			return none, fmt.Errorf("%w: row %d of the INSERT has no value for %s", ErrShardKey, ri+1, t.Column())
		}
		m, ok, err := r.valueMask(rc, t, row[k])
		if err != nil {
			return none, err
		}
		if !ok || m == 0 {
			what := "an expression the proxy cannot evaluate"
			if ok {
				what = "NULL"
			}
			return none, fmt.Errorf("%w: the %s of row %d of the INSERT into %s is %s", ErrShardKey, t.Column(), ri+1, name, what)
		}
		s := bits.TrailingZeros64(m)
		if first < 0 {
			first = s
		}
		if s != first && rowShards == nil {
			rowShards = make([]int, len(ins.rows))
			for j := 0; j < ri; j++ {
				rowShards[j] = first
			}
		}
		if rowShards != nil {
			rowShards[ri] = s
		}
	}
	if rowShards == nil {
		if rc.det != nil {
			rc.explain("%s = ... : shard %s", t.Column(), r.m.ShardName(first))
		}
		return ShardRoute{Shard: first, Reason: "shard key"}, nil
	}
	parts, err := splitInsert(rc.sql, rowShards)
	if err != nil {
		return none, fmt.Errorf("%w: splitting the INSERT: %v", ErrCrossShard, err)
	}
	route := ShardRoute{Shard: -1, Reason: "multi-row INSERT split", Inserts: parts}
	for _, p := range parts {
		route.Shards = append(route.Shards, p.Shard)
	}
	if rc.det != nil {
		rc.explain("rows split over %d shards", len(parts))
	}
	return route, nil
}

func (r *ShardRouter) routeCopyFrom(rc *routeCtx, st *stmtShape, infos []relInfo) (ShardRoute, error) {
	none := ShardRoute{Shard: -1}
	ti := targetRel(st)
	cs := st.copy
	if ti < 0 || cs == nil {
		return none, fmt.Errorf("%w: COPY without a table", ErrCrossShard)
	}
	name := st.rels[ti].name
	if infos[ti].t == nil {
		if rc.det != nil {
			rc.explain("%s is not sharded: every shard", name)
		}
		route := r.everyShard("reference table")
		route.Replicated = true
		if cs.stdio {
			// Every row goes to every shard.
			route.Copy = &CopySplit{KeyCol: -1, Cols: len(cs.cols), Format: cs.format, Null: cs.null, Header: cs.header}
			if len(cs.delimiter) == 1 && len(cs.quote) == 1 {
				route.Copy.Delimiter, route.Copy.Quote = cs.delimiter[0], cs.quote[0]
			}
			if len(cs.escape) == 1 {
				route.Copy.Escape = cs.escape[0]
			}
		}
		return route, nil
	}
	t := infos[ti].t
	if !cs.stdio {
		return none, fmt.Errorf("%w: COPY into sharded table %s must read FROM STDIN", ErrCrossShard, name)
	}
	if cs.cols == nil {
		return none, fmt.Errorf("%w: COPY into sharded table %s needs a column list", ErrShardKey, name)
	}
	k := -1
	for i, c := range cs.cols {
		if c == t.Column() {
			k = i
		}
	}
	if k < 0 {
		return none, fmt.Errorf("%w: COPY into %s must include the shard key column %s", ErrShardKey, name, t.Column())
	}
	split := &CopySplit{Table: t, KeyCol: k, Cols: len(cs.cols), Format: cs.format, Null: cs.null, Header: cs.header}
	if split.Format != "text" && split.Format != "csv" && split.Format != "binary" {
		return none, fmt.Errorf("%w: COPY format %q", ErrCrossShard, cs.format)
	}
	if len(cs.delimiter) != 1 || len(cs.quote) != 1 || len(cs.escape) > 1 {
		return none, fmt.Errorf("%w: COPY options with multi-byte delimiter, quote or escape", ErrCrossShard)
	}
	split.Delimiter, split.Quote = cs.delimiter[0], cs.quote[0]
	if cs.escape != "" {
		split.Escape = cs.escape[0]
	}
	if rc.det != nil {
		rc.explain("COPY rows split by %s over every shard", t.Column())
	}
	route := r.everyShard("COPY split")
	route.Copy = split
	return route, nil
}

// mergePlan builds the merge of a fan-out read, or says why the merge
// would be wrong.
func (r *ShardRouter) mergePlan(rc *routeCtx, ss *selectShape) (*Merge, string, error) {
	if ss.unsafe != "" {
		return nil, ss.unsafe, nil
	}
	m := &Merge{Limit: -1, Visible: -1, Distinct: ss.distinct, Group: ss.aggs || ss.grouped}
	for _, sp := range ss.sort {
		k := SortKey{Col: int(sp.target), Name: sp.name, Desc: sp.desc, NullsFirst: sp.nullsFirst}
		if sp.pos.kind != valNone {
			n, ok, err := r.intValue(rc, sp.pos)
			if err != nil {
				return nil, "", err
			}
			if !ok || n < 1 || (!ss.star && int(n) > len(ss.targets)) {
				return nil, "ORDER BY position out of range", nil
			}
			k.Col = int(n) - 1
		}
		m.Sort = append(m.Sort, k)
	}
	if m.Group {
		m.Aggs = make([]Agg, len(ss.targets))
		for i, t := range ss.targets {
			m.Aggs[i] = t.agg
		}
		for i, g := range ss.group {
			col := int(g)
			if g < 0 {
				n, ok, err := r.intValue(rc, ss.groupPos[i])
				if err != nil {
					return nil, "", err
				}
				if !ok || n < 1 || int(n) > len(ss.targets) {
					return nil, "GROUP BY position out of range", nil
				}
				col = int(n) - 1
			}
			if m.Aggs[col] != AggNone {
				return nil, "GROUP BY an aggregate", nil
			}
			m.GroupCols = append(m.GroupCols, col)
		}
		for i, t := range ss.targets {
			if t.agg != AggNone || t.constant {
				continue
			}
			found := false
			for _, g := range m.GroupCols {
				found = found || g == i
			}
			if !found {
				return nil, "a selected column is neither aggregated nor grouped", nil
			}
		}
	}
	for _, lv := range []struct {
		v   value
		dst *int64
	}{{ss.limit, &m.Limit}, {ss.offset, &m.Offset}} {
		if lv.v.kind == valNone || lv.v.kind == valNull {
			continue
		}
		n, ok, err := r.intValue(rc, lv.v)
		if err != nil {
			return nil, "", err
		}
		if !ok && rc.args.Bound {
			return nil, "LIMIT or OFFSET that is not an integer", nil
		}
		*lv.dst = max(n, 0)
	}
	if ss.rewrite {
		rw, ok := r.rewrites.GetIfPresent(rc.sql)
		if !ok {
			sql, hidden, err := rewriteSelect(rc.sql, ss)
			if err != nil {
				return nil, "", fmt.Errorf("%w: rewriting the query for the shards: %v", ErrCrossShard, err)
			}
			rw = &rewritten{sql: sql, hidden: hidden}
			r.rewrites.Set(rc.sql, rw)
		}
		m.SQL = rw.sql
		if len(rw.hidden) > 0 {
			m.AvgCount = rw.hidden
			m.Visible = len(ss.targets)
		}
	}
	return m, "", nil
}

// intValue evaluates an integer LIMIT, OFFSET or position.
func (r *ShardRouter) intValue(rc *routeCtx, v value) (int64, bool, error) {
	switch v.kind {
	case valLiteral:
		lits := rc.literals()
		run := lits.run(int(v.run))
		if run == nil || v.elem < 0 || len(run) != int(v.runLen) {
			return 0, false, errReshape
		}
		s, ok := literalValue(rc.sql, run[v.elem], v.neg)
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		return n, err == nil, nil
	case valParam:
		raw, format, ok := rc.param(int(v.param))
		if !ok || raw == nil {
			return 0, false, nil
		}
		k, err := shardmap.Bigint.Decode(raw, format)
		if err != nil {
			return 0, false, nil
		}
		return k.Int64(), true, nil
	}
	return 0, false, nil
}
