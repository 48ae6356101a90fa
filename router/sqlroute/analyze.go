package sqlroute

import (
	"cmp"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// cursorOptHold is CURSOR_OPT_HOLD from PostgreSQL's parsenodes.h.
const cursorOptHold = 0x0020

// stmtResult is the routing of one statement of a query.
type stmtResult struct {
	kind   Kind
	target Target
	// neutral statements act on whatever connection they are sent to
	// (COMMIT, SET, FETCH, ...) and do not pull a multi-statement query to
	// either role; on their own they go to the primary.
	neutral bool
	reason  string
	flags   Flags
	// exec: the statement runs its subqueries, DML and function calls now
	// (false for PREPARE, EXPLAIN without ANALYZE, DDL bodies).
	exec bool
	// written are relations the statement itself changes, besides the DML
	// targets that facts collects.
	written      []*pg_query.RangeVar
	writtenNames []string
}

func primaryWrite(k Kind, reason string) stmtResult {
	return stmtResult{kind: k, target: Primary, reason: reason, flags: FlagWrite, exec: true}
}

func replicaRead(k Kind, reason string) stmtResult {
	return stmtResult{kind: k, target: Replica, reason: reason, exec: true}
}

func neutral(k Kind, flags Flags) stmtResult {
	return stmtResult{kind: k, target: Primary, neutral: true, reason: k.String(), flags: flags}
}

// analyzer classifies parsed statements.
type analyzer struct {
	funcs *funcMatcher
}

// tableSet accumulates distinct relation names in order.
type tableSet struct {
	names []string
}

func (s *tableSet) add(name string) {
	for _, n := range s.names {
		if n == name {
			return
		}
	}
	s.names = append(s.names, name)
}

// statement classifies one top-level statement and adds its tables to read
// and written.
func (a *analyzer) statement(n *pg_query.Node, read, written *tableSet) stmtResult {
	f := facts{funcs: a.funcs}
	f.walk(n.ProtoReflect())
	r := a.classify(n, &f)
	// Volatility and user functions count wherever the call appears, also
	// in parts that do not run now: more flags only means less caching.
	if f.fn&fnVolatile != 0 {
		r.flags |= FlagVolatile
	}
	if f.fn&fnUser != 0 {
		r.flags |= FlagUserFunction
	}
	if r.exec {
		if f.fn&fnSession != 0 {
			r.flags |= FlagSessionState
		}
		if f.fn&fnAdvisory != 0 {
			r.flags |= FlagAdvisoryLock
		}
		if f.fn&fnPin != 0 {
			r.flags |= FlagPin
		}
	}

	targets := make(map[*pg_query.RangeVar]bool, len(r.written)+len(f.dmlTargets))
	var wr []*pg_query.RangeVar
	for _, rv := range r.written {
		if rv != nil && !targets[rv] {
			targets[rv] = true
			wr = append(wr, rv)
		}
	}
	if r.exec {
		for _, rv := range f.dmlTargets {
			if !targets[rv] {
				targets[rv] = true
				wr = append(wr, rv)
			}
		}
	}
	// The tree walk order is not the text order; sort by position.
	byLocation := func(a, b *pg_query.RangeVar) int { return cmp.Compare(a.Location, b.Location) }
	slices.SortStableFunc(wr, byLocation)
	for _, rv := range wr {
		written.add(relName(rv))
	}
	for _, name := range r.writtenNames {
		written.add(name)
	}
	slices.SortStableFunc(f.rels, byLocation)
	for _, rv := range f.rels {
		if targets[rv] || f.isCTE(rv) {
			continue
		}
		read.add(relName(rv))
	}
	return r
}

// classify routes statement n, whose tree f describes.
func (a *analyzer) classify(n *pg_query.Node, f *facts) stmtResult {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return a.query(f)
	case *pg_query.Node_InsertStmt:
		return primaryWrite(KindInsert, "INSERT")
	case *pg_query.Node_UpdateStmt:
		return primaryWrite(KindUpdate, "UPDATE")
	case *pg_query.Node_DeleteStmt:
		return primaryWrite(KindDelete, "DELETE")
	case *pg_query.Node_MergeStmt:
		return primaryWrite(KindMerge, "MERGE")
	case *pg_query.Node_ExplainStmt:
		return a.explain(s.ExplainStmt, f)
	case *pg_query.Node_CopyStmt:
		return a.copy(s.CopyStmt, f)
	case *pg_query.Node_DeclareCursorStmt:
		r := a.classify(s.DeclareCursorStmt.GetQuery(), f)
		r.kind = KindDeclareCursor
		if r.target == Replica {
			r.reason = "DECLARE CURSOR"
		}
		if s.DeclareCursorStmt.Options&cursorOptHold != 0 {
			r.flags |= FlagSessionState | FlagPin
		}
		return r
	case *pg_query.Node_CallStmt:
		return primaryWrite(KindCall, "CALL")
	case *pg_query.Node_DoStmt:
		return primaryWrite(KindDo, "DO")
	case *pg_query.Node_TransactionStmt:
		return transaction(s.TransactionStmt)
	case *pg_query.Node_VariableSetStmt:
		return variableSet(s.VariableSetStmt)
	case *pg_query.Node_VariableShowStmt:
		return replicaRead(KindShow, "SHOW")
	case *pg_query.Node_DiscardStmt:
		if s.DiscardStmt.Target == pg_query.DiscardMode_DISCARD_ALL {
			return neutral(KindDiscard, FlagSessionState|FlagClearsPrepared)
		}
		return neutral(KindDiscard, FlagSessionState)
	case *pg_query.Node_ListenStmt:
		r := primaryWrite(KindListen, "LISTEN")
		r.flags |= FlagListen | FlagSessionState | FlagPin
		return r
	case *pg_query.Node_UnlistenStmt:
		return neutral(KindUnlisten, FlagListen|FlagSessionState)
	case *pg_query.Node_NotifyStmt:
		return primaryWrite(KindNotify, "NOTIFY")
	case *pg_query.Node_PrepareStmt:
		// Kept with the EXECUTEs that will use it, on the primary.
		return stmtResult{kind: KindPrepare, target: Primary, reason: "PREPARE", flags: FlagSessionState | FlagPin}
	case *pg_query.Node_ExecuteStmt:
		// The session layer knows what was prepared; this package does not.
		return stmtResult{kind: KindExecute, target: Primary, reason: "EXECUTE of a prepared statement", exec: true}
	case *pg_query.Node_DeallocateStmt:
		return neutral(KindDeallocate, FlagSessionState|FlagClearsPrepared)
	case *pg_query.Node_FetchStmt:
		return neutral(KindFetch, 0)
	case *pg_query.Node_ClosePortalStmt:
		return neutral(KindClose, 0)
	case *pg_query.Node_ConstraintsSetStmt:
		r := neutral(KindSet, 0)
		r.reason = "SET CONSTRAINTS"
		return r
	case *pg_query.Node_LockStmt:
		return primaryWrite(KindLock, "LOCK")
	case *pg_query.Node_VacuumStmt:
		if s.VacuumStmt.IsVacuumcmd {
			return primaryWrite(KindMaintenance, "VACUUM")
		}
		return primaryWrite(KindMaintenance, "ANALYZE")
	case *pg_query.Node_ClusterStmt:
		return primaryWrite(KindMaintenance, "CLUSTER")
	case *pg_query.Node_ReindexStmt:
		return primaryWrite(KindMaintenance, "REINDEX")
	case *pg_query.Node_CheckPointStmt:
		return primaryWrite(KindMaintenance, "CHECKPOINT")
	case *pg_query.Node_RefreshMatViewStmt:
		r := primaryWrite(KindMaintenance, "REFRESH MATERIALIZED VIEW")
		r.written = append(r.written, s.RefreshMatViewStmt.Relation)
		return r
	case *pg_query.Node_TruncateStmt:
		r := primaryWrite(KindTruncate, "TRUNCATE")
		for _, rel := range s.TruncateStmt.Relations {
			if rv := rel.GetRangeVar(); rv != nil {
				r.written = append(r.written, rv)
			}
		}
		return r
	case *pg_query.Node_CreateStmt:
		return createRel(KindDDL, "CREATE TABLE", s.CreateStmt.Relation, false)
	case *pg_query.Node_CreateTableAsStmt:
		reason := "CREATE TABLE AS"
		if s.CreateTableAsStmt.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
			reason = "CREATE MATERIALIZED VIEW"
		}
		return createRel(KindDDL, reason, s.CreateTableAsStmt.GetInto().GetRel(), true)
	case *pg_query.Node_ViewStmt:
		return createRel(KindDDL, "CREATE VIEW", s.ViewStmt.View, false)
	case *pg_query.Node_CreateSeqStmt:
		return createRel(KindDDL, "CREATE SEQUENCE", s.CreateSeqStmt.Sequence, false)
	case *pg_query.Node_AlterTableStmt:
		r := primaryWrite(KindDDL, "ALTER "+objectTypeName(s.AlterTableStmt.Objtype))
		r.exec = false
		r.written = append(r.written, s.AlterTableStmt.Relation)
		return r
	case *pg_query.Node_RenameStmt:
		r := primaryWrite(KindDDL, "ALTER "+objectTypeName(s.RenameStmt.RenameType)+" RENAME")
		r.exec = false
		if s.RenameStmt.Relation != nil {
			r.written = append(r.written, s.RenameStmt.Relation)
		}
		return r
	case *pg_query.Node_DropStmt:
		return drop(s.DropStmt)
	case *pg_query.Node_GrantStmt:
		if s.GrantStmt.IsGrant {
			return utility(KindDCL, "GRANT")
		}
		return utility(KindDCL, "REVOKE")
	case *pg_query.Node_LoadStmt:
		return stmtResult{kind: KindOther, target: Primary, reason: "LOAD", flags: FlagSessionState}
	case nil:
		return neutral(KindEmpty, 0)
	}
	return otherUtility(n)
}

// query routes an executed SELECT (or VALUES, TABLE, WITH ... SELECT).
func (a *analyzer) query(f *facts) stmtResult {
	switch {
	case f.dml:
		return primaryWrite(KindSelect, "data-modifying CTE")
	case f.into != nil:
		r := primaryWrite(KindSelect, "SELECT INTO")
		if rv := f.into.GetRel(); rv != nil {
			r.written = append(r.written, rv)
			if rv.Relpersistence == "t" {
				r.flags |= FlagSessionState | FlagPin
			}
		}
		return r
	case f.lock > pg_query.LockClauseStrength_LCS_NONE:
		return primaryWrite(KindSelect, lockReason(f.lock))
	case f.writeFunc != "":
		return primaryWrite(KindSelect, "write function "+f.writeFunc)
	}
	return replicaRead(KindSelect, "SELECT")
}

func lockReason(s pg_query.LockClauseStrength) string {
	switch s {
	case pg_query.LockClauseStrength_LCS_FORKEYSHARE:
		return "SELECT FOR KEY SHARE"
	case pg_query.LockClauseStrength_LCS_FORSHARE:
		return "SELECT FOR SHARE"
	case pg_query.LockClauseStrength_LCS_FORNOKEYUPDATE:
		return "SELECT FOR NO KEY UPDATE"
	}
	return "SELECT FOR UPDATE"
}

// explain: without ANALYZE nothing runs, so a replica can plan anything
// (except EXECUTE, whose prepared statement lives on the primary). With
// ANALYZE the inner statement runs. ANALYZE counts as present whatever its
// argument: the argument may be a literal, which the digest does not see.
func (a *analyzer) explain(e *pg_query.ExplainStmt, f *facts) stmtResult {
	analyze := false
	for _, o := range e.Options {
		if d := o.GetDefElem(); d != nil && d.Defname == "analyze" {
			analyze = true
		}
	}
	inner := e.GetQuery()
	if !analyze {
		if inner.GetExecuteStmt() != nil {
			return stmtResult{kind: KindExplain, target: Primary, reason: "EXPLAIN EXECUTE of a prepared statement"}
		}
		return stmtResult{kind: KindExplain, target: Replica, reason: "EXPLAIN"}
	}
	r := a.classify(inner, f)
	r.kind = KindExplain
	if r.target == Primary {
		r.reason = "EXPLAIN ANALYZE " + r.reason
	} else {
		r.reason = "EXPLAIN ANALYZE"
	}
	return r
}

func (a *analyzer) copy(c *pg_query.CopyStmt, f *facts) stmtResult {
	if c.IsFrom {
		r := primaryWrite(KindCopyFrom, "COPY FROM")
		r.written = append(r.written, c.Relation)
		return r
	}
	if q := c.GetQuery(); q != nil {
		r := a.classify(q, f)
		r.kind = KindCopyTo
		if r.target == Replica {
			r.reason = "COPY TO"
		}
		return r
	}
	return replicaRead(KindCopyTo, "COPY TO")
}

func transaction(t *pg_query.TransactionStmt) stmtResult {
	switch t.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		if replicaTxn(t.Options) {
			return stmtResult{kind: KindBegin, target: Replica, reason: "BEGIN READ ONLY", flags: FlagTxnControl | FlagReadOnlyTxn}
		}
		return stmtResult{kind: KindBegin, target: Primary, reason: "BEGIN", flags: FlagTxnControl}
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return neutral(KindCommit, FlagTxnControl)
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return neutral(KindRollback, FlagTxnControl)
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return neutral(KindSavepoint, FlagTxnControl)
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return neutral(KindRelease, FlagTxnControl)
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return neutral(KindRollbackTo, FlagTxnControl)
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		r := primaryWrite(KindPrepareTransaction, "PREPARE TRANSACTION")
		r.flags |= FlagTxnControl
		return r
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		r := primaryWrite(KindCommitPrepared, "COMMIT PREPARED")
		r.flags |= FlagTxnControl
		return r
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		r := primaryWrite(KindRollbackPrepared, "ROLLBACK PREPARED")
		r.flags |= FlagTxnControl
		return r
	}
	return neutral(KindOther, FlagTxnControl)
}

// replicaTxn reports whether transaction options make a transaction a
// replica can run: READ ONLY, never READ WRITE (the server applies the
// options in order and a standby rejects READ WRITE even if READ ONLY
// follows), and not SERIALIZABLE (a standby refuses serializable mode). The
// grammar builds all of these from keywords, so the answer depends only on
// the digest.
func replicaTxn(opts []*pg_query.Node) bool {
	readOnly := false
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		switch d.Defname {
		case "transaction_read_only":
			if d.GetArg().GetAConst().GetIval().GetIval() == 0 {
				return false // READ WRITE
			}
			readOnly = true
		case "transaction_isolation":
			if d.GetArg().GetAConst().GetSval().GetSval() == "serializable" {
				return false
			}
		}
	}
	return readOnly
}

func variableSet(v *pg_query.VariableSetStmt) stmtResult {
	switch {
	case v.Kind == pg_query.VariableSetKind_VAR_SET_MULTI && v.Name == "TRANSACTION SNAPSHOT":
		return neutral(KindSetTransaction, FlagTxnControl)
	case v.Kind == pg_query.VariableSetKind_VAR_SET_MULTI && v.Name == "TRANSACTION":
		var flags Flags = FlagTxnControl
		if replicaTxn(v.Args) {
			flags |= FlagReadOnlyTxn
		}
		return neutral(KindSetTransaction, flags)
	case v.Kind == pg_query.VariableSetKind_VAR_SET_MULTI && v.Name == "SESSION CHARACTERISTICS":
		r := neutral(KindSet, FlagSessionState)
		r.reason = "SET SESSION CHARACTERISTICS"
		return r
	case v.Kind == pg_query.VariableSetKind_VAR_RESET || v.Kind == pg_query.VariableSetKind_VAR_RESET_ALL:
		return neutral(KindReset, FlagSessionState)
	case v.IsLocal:
		return neutral(KindSet, 0)
	}
	return neutral(KindSet, FlagSessionState)
}

// createRel routes CREATE TABLE / VIEW / SEQUENCE / TABLE AS; temporary
// relations are session state. runsQuery: CREATE TABLE AS runs its query.
func createRel(k Kind, reason string, rv *pg_query.RangeVar, runsQuery bool) stmtResult {
	r := primaryWrite(k, reason)
	r.exec = runsQuery
	if rv != nil {
		r.written = append(r.written, rv)
		if rv.Relpersistence == "t" {
			r.flags |= FlagSessionState | FlagPin
			r.reason = strings.Replace(reason, "CREATE ", "CREATE TEMP ", 1)
		}
	}
	return r
}

func drop(d *pg_query.DropStmt) stmtResult {
	r := primaryWrite(KindDDL, "DROP "+objectTypeName(d.RemoveType))
	r.exec = false
	switch d.RemoveType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW,
		pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
		for _, o := range d.Objects {
			var parts []string
			for _, it := range o.GetList().GetItems() {
				parts = append(parts, quoteIdent(it.GetString_().GetSval()))
			}
			if len(parts) > 0 {
				r.writtenNames = append(r.writtenNames, strings.Join(parts, "."))
			}
		}
	}
	return r
}

// utility is a statement that changes the catalog: primary, nothing in it
// runs now.
func utility(k Kind, reason string) stmtResult {
	r := primaryWrite(k, reason)
	r.exec = false
	return r
}

// otherUtility routes any statement without a rule of its own to the
// primary, naming it after its parse node ("CreateFunctionStmt" becomes
// "CREATE FUNCTION").
func otherUtility(n *pg_query.Node) stmtResult {
	name := "statement"
	kind := KindOther
	m := n.ProtoReflect()
	if fd := m.WhichOneof(m.Descriptor().Oneofs().Get(0)); fd != nil && fd.Message() != nil {
		name = string(fd.Message().Name())
	}
	switch {
	case strings.Contains(name, "Role") || strings.Contains(name, "Owned") || strings.Contains(name, "DefaultPrivileges"):
		kind = KindDCL
	case hasAnyPrefix(name, "Create", "Alter", "Drop", "Define", "Comment", "Composite", "Index", "Rule", "SecLabel", "ImportForeignSchema"):
		kind = KindDDL
	}
	if name == "AlterSystemStmt" {
		kind = KindOther
	}
	return utility(kind, nodeTag(name))
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// nodeTag turns "CreateFunctionStmt" into "CREATE FUNCTION".
func nodeTag(name string) string {
	name = strings.TrimSuffix(name, "Stmt")
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if i > 0 && 'A' <= c && c <= 'Z' && !('A' <= name[i-1] && name[i-1] <= 'Z') {
			b.WriteByte(' ')
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// objectTypeName turns OBJECT_FOREIGN_TABLE into "FOREIGN TABLE".
func objectTypeName(t pg_query.ObjectType) string {
	s := strings.TrimPrefix(t.String(), "OBJECT_")
	if s == "MATVIEW" {
		return "MATERIALIZED VIEW"
	}
	return strings.ReplaceAll(s, "_", " ")
}

// relName formats a relation reference as written: [catalog.][schema.]name,
// double-quoting parts that are not plain lower-case identifiers.
func relName(rv *pg_query.RangeVar) string {
	name := quoteIdent(rv.Relname)
	if rv.Schemaname != "" {
		name = quoteIdent(rv.Schemaname) + "." + name
	}
	if rv.Catalogname != "" {
		name = quoteIdent(rv.Catalogname) + "." + name
	}
	return name
}

func quoteIdent(s string) string {
	plain := s != "" && !isDigit(s[0]) && s[0] != '$'
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = ('a' <= c && c <= 'z') || isDigit(c) || c == '_' || c == '$'
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
