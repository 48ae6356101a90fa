package sqlroute

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestClassifyDecisions(t *testing.T) {
	type want struct {
		target  Target
		kind    Kind
		kinds   []Kind // nil: []Kind{kind}
		reason  string
		flags   Flags
		read    []string
		written []string
	}
	const (
		txn  = FlagTxnControl
		sess = FlagSessionState
		w    = FlagWrite
		vol  = FlagVolatile
		user = FlagUserFunction
	)
	tests := []struct {
		sql  string
		want want
	}{
		{"SELECT 1", want{Replica, KindSelect, nil, "SELECT", 0, nil, nil}},
		{"select * from users u join public.orders o on o.uid = u.id where u.id = $1",
			want{Replica, KindSelect, nil, "SELECT", 0, []string{"users", "public.orders"}, nil}},
		{`SELECT * FROM "Users", "a.b".c, db.s.t`, want{Replica, KindSelect, nil, "SELECT", 0, []string{`"Users"`, `"a.b".c`, "db.s.t"}, nil}},
		{"WITH x AS (SELECT * FROM t) SELECT * FROM x, s.x", want{Replica, KindSelect, nil, "SELECT", 0, []string{"t", "s.x"}, nil}},
		{"TABLE t", want{Replica, KindSelect, nil, "SELECT", 0, []string{"t"}, nil}},
		{"VALUES (1)", want{Replica, KindSelect, nil, "SELECT", 0, nil, nil}},
		{"SHOW work_mem", want{Replica, KindShow, nil, "SHOW", 0, nil, nil}},

		// Writes and why.
		{"INSERT INTO t SELECT * FROM u", want{Primary, KindInsert, nil, "INSERT", w, []string{"u"}, []string{"t"}}},
		{"UPDATE t SET a = 1 FROM u WHERE t.id = u.id", want{Primary, KindUpdate, nil, "UPDATE", w, []string{"u"}, []string{"t"}}},
		{"DELETE FROM s.t USING u", want{Primary, KindDelete, nil, "DELETE", w, []string{"u"}, []string{"s.t"}}},
		{"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", want{Primary, KindMerge, nil, "MERGE", w, []string{"s"}, []string{"t"}}},
		{"WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x JOIN u USING (id)",
			want{Primary, KindSelect, nil, "data-modifying CTE", w, []string{"u"}, []string{"t"}}},
		{"SELECT * FROM t FOR UPDATE", want{Primary, KindSelect, nil, "SELECT FOR UPDATE", w, []string{"t"}, nil}},
		{"SELECT * FROM t a FOR SHARE OF a", want{Primary, KindSelect, nil, "SELECT FOR SHARE", w, []string{"t"}, nil}},
		{"SELECT * FROM t FOR NO KEY UPDATE", want{Primary, KindSelect, nil, "SELECT FOR NO KEY UPDATE", w, []string{"t"}, nil}},
		{"SELECT * FROM t FOR KEY SHARE", want{Primary, KindSelect, nil, "SELECT FOR KEY SHARE", w, []string{"t"}, nil}},
		{"SELECT * INTO s.n FROM t", want{Primary, KindSelect, nil, "SELECT INTO", w, []string{"t"}, []string{"s.n"}}},
		{"SELECT 1 INTO TEMP n", want{Primary, KindSelect, nil, "SELECT INTO", w | sess | FlagPin, nil, []string{"n"}}},
		{"SELECT (SELECT nextval('s'))", want{Primary, KindSelect, nil, "write function nextval", w | vol, nil, nil}},
		{"SELECT pg_catalog.setval('s', 1)", want{Primary, KindSelect, nil, "write function pg_catalog.setval", w | vol, nil, nil}},
		{"SELECT pg_advisory_lock(1)", want{Primary, KindSelect, nil, "write function pg_advisory_lock", w | sess | FlagAdvisoryLock | FlagPin | vol, nil, nil}},
		{"SELECT pg_advisory_unlock(1)", want{Primary, KindSelect, nil, "write function pg_advisory_unlock", w | sess | FlagAdvisoryLock | vol, nil, nil}},
		{"SELECT pg_advisory_xact_lock(1)", want{Primary, KindSelect, nil, "write function pg_advisory_xact_lock", w | vol, nil, nil}},
		{"SELECT billing.charge(1)", want{Primary, KindSelect, nil, "write function billing.charge", w | user, nil, nil}},
		{"SELECT other.charge(1)", want{Replica, KindSelect, nil, "SELECT", user, nil, nil}},
		{"SELECT AUDIT_EVENT()", want{Primary, KindSelect, nil, "write function audit_event", w | user, nil, nil}},
		{"SELECT set_config('a', 'b', false)", want{Replica, KindSelect, nil, "SELECT", sess | vol, nil, nil}},

		// EXPLAIN.
		{"EXPLAIN DELETE FROM t", want{Replica, KindExplain, nil, "EXPLAIN", 0, []string{"t"}, nil}},
		{"EXPLAIN ANALYZE DELETE FROM t", want{Primary, KindExplain, nil, "EXPLAIN ANALYZE DELETE", w, nil, []string{"t"}}},
		{"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t", want{Replica, KindExplain, nil, "EXPLAIN ANALYZE", 0, []string{"t"}, nil}},
		{"EXPLAIN ANALYZE SELECT nextval('s')", want{Primary, KindExplain, nil, "EXPLAIN ANALYZE write function nextval", w | vol, nil, nil}},
		{"EXPLAIN EXECUTE p", want{Primary, KindExplain, nil, "EXPLAIN EXECUTE of a prepared statement", 0, nil, nil}},

		// COPY.
		{"COPY t TO STDOUT", want{Replica, KindCopyTo, nil, "COPY TO", 0, []string{"t"}, nil}},
		{"COPY (SELECT * FROM t) TO STDOUT", want{Replica, KindCopyTo, nil, "COPY TO", 0, []string{"t"}, nil}},
		{"COPY t FROM STDIN", want{Primary, KindCopyFrom, nil, "COPY FROM", w, nil, []string{"t"}}},
		{"COPY (DELETE FROM t RETURNING *) TO STDOUT", want{Primary, KindCopyTo, nil, "DELETE", w, nil, []string{"t"}}},

		// Transaction control.
		{"BEGIN", want{Primary, KindBegin, nil, "BEGIN", txn, nil, nil}},
		{"START TRANSACTION READ ONLY", want{Replica, KindBegin, nil, "BEGIN READ ONLY", txn | FlagReadOnlyTxn, nil, nil}},
		{"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY, DEFERRABLE", want{Replica, KindBegin, nil, "BEGIN READ ONLY", txn | FlagReadOnlyTxn, nil, nil}},
		{"BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY", want{Primary, KindBegin, nil, "BEGIN", txn, nil, nil}},
		{"BEGIN READ ONLY, READ WRITE", want{Primary, KindBegin, nil, "BEGIN", txn, nil, nil}},
		{"BEGIN READ WRITE, READ ONLY", want{Primary, KindBegin, nil, "BEGIN", txn, nil, nil}},
		{"SET TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE", want{Primary, KindSetTransaction, nil, "SET TRANSACTION", txn, nil, nil}},
		{"COMMIT", want{Primary, KindCommit, nil, "COMMIT", txn, nil, nil}},
		{"END", want{Primary, KindCommit, nil, "COMMIT", txn, nil, nil}},
		{"ABORT", want{Primary, KindRollback, nil, "ROLLBACK", txn, nil, nil}},
		{"SAVEPOINT a", want{Primary, KindSavepoint, nil, "SAVEPOINT", txn, nil, nil}},
		{"RELEASE a", want{Primary, KindRelease, nil, "RELEASE", txn, nil, nil}},
		{"ROLLBACK TO a", want{Primary, KindRollbackTo, nil, "ROLLBACK TO", txn, nil, nil}},
		{"SET TRANSACTION READ ONLY", want{Primary, KindSetTransaction, nil, "SET TRANSACTION", txn | FlagReadOnlyTxn, nil, nil}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", want{Primary, KindSetTransaction, nil, "SET TRANSACTION", txn, nil, nil}},
		{"SET TRANSACTION SNAPSHOT '1'", want{Primary, KindSetTransaction, nil, "SET TRANSACTION", txn, nil, nil}},
		{"PREPARE TRANSACTION 'x'", want{Primary, KindPrepareTransaction, nil, "PREPARE TRANSACTION", w | txn, nil, nil}},
		{"COMMIT PREPARED 'x'", want{Primary, KindCommitPrepared, nil, "COMMIT PREPARED", w | txn, nil, nil}},
		{"ROLLBACK PREPARED 'x'", want{Primary, KindRollbackPrepared, nil, "ROLLBACK PREPARED", w | txn, nil, nil}},

		// Session state.
		{"SET search_path = a", want{Primary, KindSet, nil, "SET", sess, nil, nil}},
		{"SET LOCAL search_path = a", want{Primary, KindSet, nil, "SET", 0, nil, nil}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", want{Primary, KindSet, nil, "SET SESSION CHARACTERISTICS", sess, nil, nil}},
		{"SET CONSTRAINTS ALL DEFERRED", want{Primary, KindSet, nil, "SET CONSTRAINTS", 0, nil, nil}},
		{"RESET ALL", want{Primary, KindReset, nil, "RESET", sess, nil, nil}},
		{"DISCARD ALL", want{Primary, KindDiscard, nil, "DISCARD", sess | FlagClearsPrepared, nil, nil}},
		{"DISCARD TEMP", want{Primary, KindDiscard, nil, "DISCARD", sess, nil, nil}},
		{"LISTEN ch", want{Primary, KindListen, nil, "LISTEN", w | sess | FlagListen | FlagPin, nil, nil}},
		{"UNLISTEN *", want{Primary, KindUnlisten, nil, "UNLISTEN", sess | FlagListen, nil, nil}},
		{"NOTIFY ch", want{Primary, KindNotify, nil, "NOTIFY", w, nil, nil}},
		{"PREPARE p AS DELETE FROM t", want{Primary, KindPrepare, nil, "PREPARE", sess | FlagPin, []string{"t"}, nil}},
		{"EXECUTE p(1)", want{Primary, KindExecute, nil, "EXECUTE of a prepared statement", 0, nil, nil}},
		{"DEALLOCATE ALL", want{Primary, KindDeallocate, nil, "DEALLOCATE", sess | FlagClearsPrepared, nil, nil}},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t", want{Replica, KindDeclareCursor, nil, "DECLARE CURSOR", sess | FlagPin, []string{"t"}, nil}},
		{"DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE", want{Primary, KindDeclareCursor, nil, "SELECT FOR UPDATE", w, []string{"t"}, nil}},
		{"FETCH 10 FROM c", want{Primary, KindFetch, nil, "FETCH", 0, nil, nil}},
		{"CLOSE c", want{Primary, KindClose, nil, "CLOSE", 0, nil, nil}},
		{"CREATE TEMP TABLE x (a int)", want{Primary, KindDDL, nil, "CREATE TEMP TABLE", w | sess | FlagPin, nil, []string{"x"}}},
		{"CREATE TEMP TABLE x AS SELECT * FROM t", want{Primary, KindDDL, nil, "CREATE TEMP TABLE AS", w | sess | FlagPin, []string{"t"}, []string{"x"}}},
		{"LOAD 'auto_explain'", want{Primary, KindOther, nil, "LOAD", sess, nil, nil}},

		// Utility statements.
		{"CALL p()", want{Primary, KindCall, nil, "CALL", w | user, nil, nil}},
		{"DO $$ BEGIN END $$", want{Primary, KindDo, nil, "DO", w, nil, nil}},
		{"LOCK TABLE t", want{Primary, KindLock, nil, "LOCK", w, []string{"t"}, nil}},
		{"VACUUM t", want{Primary, KindMaintenance, nil, "VACUUM", w, []string{"t"}, nil}},
		{"ANALYZE t", want{Primary, KindMaintenance, nil, "ANALYZE", w, []string{"t"}, nil}},
		{"REFRESH MATERIALIZED VIEW mv", want{Primary, KindMaintenance, nil, "REFRESH MATERIALIZED VIEW", w, nil, []string{"mv"}}},
		{"TRUNCATE a, b", want{Primary, KindTruncate, nil, "TRUNCATE", w, nil, []string{"a", "b"}}},
		{"CREATE TABLE s.t (a int)", want{Primary, KindDDL, nil, "CREATE TABLE", w, nil, []string{"s.t"}}},
		{"CREATE MATERIALIZED VIEW mv AS SELECT * FROM t", want{Primary, KindDDL, nil, "CREATE MATERIALIZED VIEW", w, []string{"t"}, []string{"mv"}}},
		{"ALTER TABLE t ADD COLUMN c int", want{Primary, KindDDL, nil, "ALTER TABLE", w, nil, []string{"t"}}},
		{"DROP TABLE a.b, \"C\"", want{Primary, KindDDL, nil, "DROP TABLE", w, nil, []string{"a.b", `"C"`}}},
		{"DROP INDEX i", want{Primary, KindDDL, nil, "DROP INDEX", w, nil, nil}},
		{"CREATE INDEX ON t (a)", want{Primary, KindDDL, nil, "INDEX", w, []string{"t"}, nil}},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END",
			want{Primary, KindDDL, nil, "CREATE FUNCTION", w, []string{"t"}, nil}},
		{"GRANT SELECT ON t TO r", want{Primary, KindDCL, nil, "GRANT", w, []string{"t"}, nil}},
		{"REVOKE SELECT ON t FROM r", want{Primary, KindDCL, nil, "REVOKE", w, []string{"t"}, nil}},
		{"CREATE ROLE r", want{Primary, KindDCL, nil, "CREATE ROLE", w, nil, nil}},
		{"ALTER SYSTEM SET work_mem = '1MB'", want{Primary, KindOther, nil, "ALTER SYSTEM", w, nil, nil}},

		// Multi-statement queries.
		{"SELECT * FROM a; SELECT * FROM b", want{Replica, KindSelect, []Kind{KindSelect, KindSelect}, "SELECT", FlagMultiStatement, []string{"a", "b"}, nil}},
		{"SELECT * FROM a; DELETE FROM a; SELECT 1", want{Primary, KindSelect, []Kind{KindSelect, KindDelete, KindSelect}, "DELETE", w | FlagMultiStatement, []string{"a"}, []string{"a"}}},
		{"BEGIN; SELECT 1; COMMIT", want{Primary, KindBegin, []Kind{KindBegin, KindSelect, KindCommit}, "BEGIN", txn | FlagMultiStatement, nil, nil}},
		{"BEGIN READ ONLY; SELECT 1; COMMIT", want{Replica, KindBegin, []Kind{KindBegin, KindSelect, KindCommit}, "BEGIN READ ONLY", txn | FlagReadOnlyTxn | FlagMultiStatement, nil, nil}},
		{"SET search_path = a; SELECT 1", want{Replica, KindSet, []Kind{KindSet, KindSelect}, "SELECT", sess | FlagMultiStatement, nil, nil}},
		{"COMMIT; SET x = 1", want{Primary, KindCommit, []Kind{KindCommit, KindSet}, "COMMIT", txn | sess | FlagMultiStatement, nil, nil}},

		// Hints.
		{"/* tiergate: primary */ SELECT 1", want{Primary, KindSelect, nil, "hint", FlagHint, nil, nil}},
		{"SELECT 1 /* Tiergate:Replica */", want{Replica, KindSelect, nil, "hint", FlagHint, nil, nil}},
		{"/* tiergate: replica */ DELETE FROM t", want{Replica, KindDelete, nil, "hint", w | FlagHint, nil, []string{"t"}}},
		{"/* tiergate: replica */ SELECT 1 /* tiergate: primary */", want{Primary, KindSelect, nil, "hint", FlagHint, nil, nil}},

		// Empty.
		{"", want{Primary, KindEmpty, []Kind{}, "empty query", 0, nil, nil}},
		{" ; -- nothing\n;", want{Primary, KindEmpty, []Kind{}, "empty query", 0, nil, nil}},
	}
	c := newTestClassifier(t, Config{WriteFunctions: []string{"billing.charge", "Audit_Event"}})
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			got, err := c.Classify(tc.sql)
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			kinds := tc.want.kinds
			if kinds == nil {
				kinds = []Kind{tc.want.kind}
			}
			if got.Target != tc.want.target || got.Kind != tc.want.kind || got.Reason != tc.want.reason || got.Flags != tc.want.flags {
				t.Errorf("got %s %s %q %v, want %s %s %q %v", got.Target, got.Kind, got.Reason, got.Flags,
					tc.want.target, tc.want.kind, tc.want.reason, tc.want.flags)
			}
			if len(got.Kinds) != len(kinds) || (len(kinds) > 0 && !reflect.DeepEqual(got.Kinds, kinds)) {
				t.Errorf("Kinds = %v, want %v", got.Kinds, kinds)
			}
			if !equalStrings(got.TablesRead, tc.want.read) || !equalStrings(got.TablesWritten, tc.want.written) {
				t.Errorf("tables read %q written %q, want %q and %q", got.TablesRead, got.TablesWritten, tc.want.read, tc.want.written)
			}
			if got.Digest != Digest(tc.sql) {
				t.Errorf("Digest = %x, want %x", got.Digest, Digest(tc.sql))
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClassifyProxySettings(t *testing.T) {
	tests := []struct {
		sql     string
		kind    Kind
		setting ProxySetting
		errPart string // "" for no error
	}{
		{"SET tiergate.route = primary", KindProxySet, ProxySetting{Name: "route", Route: RoutePrimary}, ""},
		{"set TIERGATE.ROUTE to Replica;", KindProxySet, ProxySetting{Name: "route", Route: RouteReplica}, ""},
		{"SET SESSION tiergate.route = 'auto'", KindProxySet, ProxySetting{Name: "route", Route: RouteAuto}, ""},
		{"SET LOCAL tiergate.route TO 'PRIMARY'", KindProxySet, ProxySetting{Name: "route", Route: RoutePrimary, Local: true}, ""},
		{"SET tiergate.route TO DEFAULT", KindProxySet, ProxySetting{Name: "route", Route: RouteAuto}, ""},
		{`SET "tiergate"."route" = "replica"`, KindProxySet, ProxySetting{Name: "route", Route: RouteReplica}, ""},
		{"/* tiergate: replica */ SET tiergate.route = primary", KindProxySet, ProxySetting{Name: "route", Route: RoutePrimary}, ""},
		{";; RESET tiergate.route ;", KindProxySet, ProxySetting{Name: "route", Route: RouteAuto}, ""},
		{"SHOW tiergate.route", KindShow, ProxySetting{Name: "route", Show: true}, ""},
		{"SET tiergate.route = sideways", KindProxySet, ProxySetting{}, `"sideways" is not one of`},
		{"SET tiergate.route = 'default'", KindProxySet, ProxySetting{}, `"default" is not one of`},
		{"SET tiergate.route = 1", KindProxySet, ProxySetting{}, "expected SET"},
		{"SET tiergate.route", KindProxySet, ProxySetting{}, "expected SET"},
		{"SET tiergate.route = primary replica", KindProxySet, ProxySetting{}, "expected SET"},
		{"SET tiergate.foo = 1", KindProxySet, ProxySetting{}, "unknown setting tiergate.foo"},
		{"RESET tiergate.foo", KindProxySet, ProxySetting{}, "unknown setting"},
		{"SHOW tiergate.route extra", KindShow, ProxySetting{}, "expected SET"},
		{"SELECT 1; SET tiergate.route = primary", KindProxySet, ProxySetting{}, "only statement"},
		{"SET tiergate.route = primary; SELECT 1", KindProxySet, ProxySetting{}, "only statement"},
	}
	c := newTestClassifier(t, Config{})
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			d, err := c.Classify(tc.sql)
			if tc.errPart == "" {
				if err != nil {
					t.Fatalf("Classify: %v", err)
				}
			} else if err == nil || !errors.Is(err, ErrProxySetting) || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("err = %v, want ErrProxySetting containing %q", err, tc.errPart)
			}
			if d.Kind != tc.kind || !d.Has(FlagProxySetting) {
				t.Errorf("Kind %s flags %v, want %s with proxy-setting", d.Kind, d.Flags, tc.kind)
			}
			if tc.errPart == "" && d.Setting != tc.setting {
				t.Errorf("Setting = %+v, want %+v", d.Setting, tc.setting)
			}
		})
	}
	if s := c.Stats(); s.Parses != 0 || s.Entries != 0 {
		t.Errorf("proxy settings must not be parsed or cached: %+v", s)
	}
}

// Statements that merely look like proxy settings are ordinary SQL.
func TestClassifyNotProxySettings(t *testing.T) {
	c := newTestClassifier(t, Config{})
	for _, sql := range []string{
		"SET tiergate = 1",
		"SET search_path = tiergate",
		"SELECT 'SET tiergate.route = primary'",
		"SET x.tiergate = 1",
		"SELECT tiergate.route FROM tiergate",
	} {
		d, err := c.Classify(sql)
		if err != nil || d.Has(FlagProxySetting) {
			t.Errorf("%q: flags %v err %v, want an ordinary statement", sql, d.Flags, err)
		}
	}
}

func TestClassifyUnparsable(t *testing.T) {
	c := newTestClassifier(t, Config{MaxParseBytes: 64})
	tests := []struct {
		sql, reason string
		target      Target
	}{
		{"SELEC 1", "unparsable", Primary},
		{"SELECT 'open", "unparsable", Primary},
		{"SELECT * FROM t WHERE x = '" + strings.Repeat("a", 64) + "'", "too large to parse", Primary},
		{"/* tiergate: replica */ SELEC 1", "hint", Replica},
		{"SELECT 1\x00; DELETE FROM t", "unparsable", Primary},
	}
	for _, tc := range tests {
		for i := 0; i < 2; i++ { // twice: never cached
			d, err := c.Classify(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if d.Target != tc.target || d.Reason != tc.reason || !d.Has(FlagUnparsable) || d.Kind != KindUnknown {
				t.Errorf("%q: %s %q %v %s, want %s %q unparsable", tc.sql, d.Target, d.Reason, d.Flags, d.Kind, tc.target, tc.reason)
			}
		}
	}
	s := c.Stats()
	if s.Entries != 0 || s.Unparsable != 10 || s.Hits != 0 {
		t.Errorf("stats %+v: want no entries, 10 unparsable, no hits", s)
	}
}

// The grammar rejects some literal values (a type modifier must fit an
// int), so two statements of one shape can differ in parsability. A parse
// failure must never seed the cache; a valid statement of the shape does,
// and later invalid ones then follow it (the server reports their error).
func TestUnparsableDoesNotPoisonCache(t *testing.T) {
	c := newTestClassifier(t, Config{})
	bad := "SELECT 'a'::varchar(99999999999)"
	good := "SELECT 'a'::varchar(10)"
	if Digest(bad) != Digest(good) {
		t.Fatal("test needs two statements of one shape")
	}
	if d, _ := c.Classify(bad); !d.Has(FlagUnparsable) || d.Target != Primary {
		t.Fatalf("%q: %s %q, want primary unparsable", bad, d.Target, d.Reason)
	}
	if d, _ := c.Classify(good); d.Target != Replica {
		t.Fatalf("%q: %s %q, want replica (the failure must not be cached)", good, d.Target, d.Reason)
	}
	if d, _ := c.Classify(bad); d.Target != Replica || d.Has(FlagUnparsable) {
		t.Fatalf("%q after %q: %s %q, want the cached replica decision", bad, good, d.Target, d.Reason)
	}
}

// Left-deep expression chains must not reach the parser, whose recursive
// output would overflow the C stack and crash the process.
func TestDeepExpressionsDoNotCrash(t *testing.T) {
	c := newTestClassifier(t, Config{MaxParseBytes: 64 << 20})
	const n = 100000
	for name, sql := range map[string]string{
		"plus":   "SELECT 1" + strings.Repeat(" + 1", n),
		"cast":   "SELECT 1" + strings.Repeat("::int", n),
		"isnull": "SELECT 1" + strings.Repeat(" IS NULL", n),
		"join":   "SELECT * FROM a" + strings.Repeat(" JOIN a ON true", n),
		"union":  "SELECT 1" + strings.Repeat(" UNION SELECT 1", n),
		"concat": "SELECT 'a'" + strings.Repeat(" || 'a'", n),
		"parens": "SELECT " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n),
		"not":    "SELECT " + strings.Repeat("NOT ", n) + "true",
		"case":   "SELECT " + strings.Repeat("CASE WHEN true THEN ", n) + "1" + strings.Repeat(" END", n),
	} {
		t.Run(name, func(t *testing.T) {
			d, err := c.Classify(sql)
			if err != nil {
				t.Fatal(err)
			}
			if d.Target != Primary || !d.Has(FlagUnparsable) {
				t.Errorf("%s: %s %q, want primary unparsable", name, d.Target, d.Reason)
			}
		})
	}
	// Long but shallow statements still parse.
	in := "SELECT * FROM t WHERE id IN (" + strings.Repeat("1, ", n) + "1)"
	ors := "SELECT * FROM t WHERE " + strings.Repeat("a = 1 OR ", 1000) + "true"
	for _, sql := range []string{in, ors} {
		if d, _ := c.Classify(sql); d.Target != Replica {
			t.Errorf("%.40q...: %s %q, want replica", sql, d.Target, d.Reason)
		}
	}
}

func TestClassifyCacheHitDoesNotAllocate(t *testing.T) {
	c := newTestClassifier(t, Config{})
	sql := "SELECT * FROM users WHERE id = 42 AND name = 'x'"
	first, _ := c.Classify(sql)
	other := "select * FROM users where id = 7 and name = 'yy'"
	allocs := testing.AllocsPerRun(100, func() {
		d, _ := c.Classify(other)
		if d.Target != first.Target {
			t.Fatal("different decision")
		}
	})
	if allocs != 0 {
		t.Errorf("cached Classify allocates %.1f times", allocs)
	}
	if s := c.Stats(); s.Parses != 1 || s.Hits < 100 {
		t.Errorf("stats %+v: want 1 parse and 100+ hits", s)
	}
}

func TestClassifyCacheIsBounded(t *testing.T) {
	c := newTestClassifier(t, Config{CacheSize: 10})
	for i := 0; i < 200; i++ {
		if _, err := c.Classify("SELECT c" + itoa(i) + " FROM t"); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Stats().Entries; n > 10 {
		t.Errorf("cache holds %d entries, want at most 10", n)
	}
}

func TestClassifyConcurrent(t *testing.T) {
	c := newTestClassifier(t, corpusConfig)
	entries := loadCorpus(t)
	want := make([]Decision, len(entries))
	for i, e := range entries {
		want[i] = uncachedWithLiterals(c, e.sql)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				for i, e := range entries {
					d, _ := c.Classify(e.sql)
					if d.Target != want[i].Target || d.Reason != want[i].Reason || d.Flags != want[i].Flags {
						t.Errorf("%s: concurrent %s %q, want %s %q", e.source, d.Target, d.Reason, want[i].Target, want[i].Reason)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{CacheSize: -1}); err == nil {
		t.Error("New accepted cache_size -1")
	}
	if _, err := New(Config{WriteFunctions: []string{"a.b.c"}}); err == nil {
		t.Error("New accepted write function a.b.c")
	}
	if _, err := New(Config{VolatileFunctions: []string{"f()"}}); err == nil {
		t.Error("New accepted volatile function f()")
	}
}

func TestStringers(t *testing.T) {
	if Primary.String() != "primary" || Replica.String() != "replica" || Target(9).String() != "Target(9)" {
		t.Error("Target.String")
	}
	if KindCopyFrom.String() != "COPY FROM" || Kind(200).String() != "Kind(200)" {
		t.Error("Kind.String")
	}
	for k := Kind(0); k < kindCount; k++ {
		if kindNames[k] == "" {
			t.Errorf("Kind %d has no name", k)
		}
	}
	if s := (FlagWrite | FlagHint).String(); s != "write|hint" {
		t.Errorf("Flags.String = %q", s)
	}
	if s := Flags(0).String(); s != "0" {
		t.Errorf("Flags(0).String = %q", s)
	}
	if s := (FlagVolatile | FlagUserFunction | FlagCacheHint | FlagNoCacheHint).String(); s != "volatile|user-function|cache-hint|nocache-hint" {
		t.Errorf("cache flags String = %q", s)
	}
	if FlagNoCacheHint != 1<<(len(flagNames)-1) {
		t.Errorf("flagNames has %d names, last flag is %#x", len(flagNames), FlagNoCacheHint)
	}
	if s := Flags(1 << 20).String(); s != "0x100000" {
		t.Errorf("unknown flag String = %q", s)
	}
	if RouteReplica.String() != "replica" || RouteAuto.String() != "auto" || RoutePrimary.String() != "primary" || Route(7).String() != "Route(7)" {
		t.Error("Route.String")
	}
}
