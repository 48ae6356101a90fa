package sqlroute

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// facts is what one walk over a statement's parse tree finds, wherever it
// sits in the tree (subqueries, CTEs, the inner statement of EXPLAIN).
type facts struct {
	funcs *funcMatcher

	// dml: an INSERT, UPDATE, DELETE or MERGE appears somewhere.
	dml bool
	// dmlTargets are the relations those statements modify.
	dmlTargets []*pg_query.RangeVar
	// lock is the strongest row-locking clause (FOR UPDATE, ...).
	lock pg_query.LockClauseStrength
	// into is the first INTO clause (SELECT ... INTO, CREATE TABLE AS).
	into *pg_query.IntoClause
	// writeFunc is the first writing function called, as written.
	writeFunc string
	// fn is the union of the classes of all functions called, with
	// fnVolatile also for SQL value functions (CURRENT_DATE, ...),
	// statistics views and TABLESAMPLE without REPEATABLE.
	fn funcClass
	// ctes are the names of all common table expressions.
	ctes []string
	// rels are all relation references, in tree order.
	rels []*pg_query.RangeVar
}

// walk visits every message below m (m included).
func (f *facts) walk(m protoreflect.Message) {
	if !f.visit(m.Interface()) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				f.walk(l.Get(i).Message())
			}
		case fd.IsMap():
			// pg_query's tree has no maps.
		default:
			f.walk(v.Message())
		}
		return true
	})
}

// visit records what a node says; it reports whether to descend into it.
func (f *facts) visit(m protoreflect.ProtoMessage) bool {
	switch n := m.(type) {
	case *pg_query.RangeVar:
		f.rels = append(f.rels, n)
		if isVolatileRelation(n) {
			f.fn |= fnVolatile
		}
	case *pg_query.RangeTableSample:
		if n.Repeatable == nil {
			f.fn |= fnVolatile // a new sample every time
		}
	case *pg_query.FuncCall:
		f.funcCall(n)
	case *pg_query.SQLValueFunction:
		// CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME, CURRENT_USER,
		// SESSION_USER, CURRENT_SCHEMA, ...: all depend on the clock or
		// the session.
		f.fn |= fnVolatile
	case *pg_query.InsertStmt:
		f.dmlTarget(n.Relation)
	case *pg_query.UpdateStmt:
		f.dmlTarget(n.Relation)
	case *pg_query.DeleteStmt:
		f.dmlTarget(n.Relation)
	case *pg_query.MergeStmt:
		f.dmlTarget(n.Relation)
	case *pg_query.LockingClause:
		if n.Strength > f.lock {
			f.lock = n.Strength
		}
		return false // FOR UPDATE OF names aliases, not tables
	case *pg_query.IntoClause:
		if f.into == nil {
			f.into = n
		}
		return false // the target is reported by the statement, if executed
	case *pg_query.CommonTableExpr:
		f.ctes = append(f.ctes, n.Ctename)
	}
	return true
}

func (f *facts) dmlTarget(rv *pg_query.RangeVar) {
	f.dml = true
	if rv != nil {
		f.dmlTargets = append(f.dmlTargets, rv)
	}
}

func (f *facts) funcCall(n *pg_query.FuncCall) {
	var schema, name string
	switch len(n.Funcname) {
	case 1:
		name = n.Funcname[0].GetString_().GetSval()
	case 2:
		schema = n.Funcname[0].GetString_().GetSval()
		name = n.Funcname[1].GetString_().GetSval()
	default:
		// catalog.schema.name: the server rejects cross-database
		// references; whatever it is, it is not a known built-in.
		f.fn |= fnUser
		return
	}
	c := f.funcs.classify(schema, name)
	f.fn |= c
	if c&fnWrite != 0 && f.writeFunc == "" {
		if schema != "" {
			f.writeFunc = schema + "." + name
		} else {
			f.writeFunc = name
		}
	}
}

// isCTE reports whether an unqualified relation name refers to a CTE.
func (f *facts) isCTE(rv *pg_query.RangeVar) bool {
	if rv.Schemaname != "" || rv.Catalogname != "" {
		return false
	}
	for _, c := range f.ctes {
		if c == rv.Relname {
			return true
		}
	}
	return false
}
