package sqlroute

import (
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "select $?"},
		{"  select\t*\nFROM   Users  WHERE id=42  ", "select * from users where id = $?"},
		{"SELECT * FROM t WHERE a IN (1, 2, 3) AND b = 'x'", "select * from t where a in ( $? ) and b = $?"},
		{"SELECT f('a', 2, $$x$$, E'\\n', B'01')", "select f ( $? )"},
		{"SELECT f(a, 1, 2, b, 3)", "select f ( a , $? , b , $? )"},
		{"SELECT 1, 2,", "select $? ,"},
		{"VALUES (1, 2), (3, 4)", "values ( $? ) , ( $? )"},
		{`SELECT "Col", "a""b" FROM "T"`, `select "Col" , "a""b" from "T"`},
		{"SELECT $1, $2::int, x::text", "select $1 , $2 :: int , x :: text"},
		{"SELECT a::int, b :: int", "select a :: int , b :: int"},
		{"SELECT 1 -- comment\n + 2 /* block /* nested */ */", "select $? + $?"},
		{"/* tiergate: primary */ SELECT 1", "/*tiergate:primary*/ select $?"},
		{"SELECT /*TIERGATE:replica*/ 1", "select /*tiergate:replica*/ $?"},
		{"SELECT /* other */ 1", "select $?"},
		{"SELECT 1;", "select $?"},
		{";; SELECT 1 ;; SELECT 2 ;", "select $? ; select $?"},
		{"SELECT 'open", "select $!"},
		{"SELECT /* open", "select $!"},
		{`SELECT "open`, "select $!"},
		{"SELECT $$open", "select $!"},
		{"SELECT 123abc", "select $!"},
		{"SELECT 0x1F, 0o17, 0b101, 1_000, 1.5e-3, .5, 5.", "select $?"},
		{"SELECT a<>b, a<=b, a->>'k', a@>b, a||b", "select a <> b , a <= b , a ->> $? , a @> b , a || b"},
		{"SELECT a-1, a--1\n", "select a - $? , a"},
		{"SELECT a+/*c*/b", "select a + b"},
		{"SELECT a$b, $ x", "select a$b , $ x"},
		{"SELECT U&'x', u&\"y\"", `select $? , u&"y"`},
		{"SELECT e'x', x'ff', n'z'", "select $?"},
		{"SELECT tablE'x'", "select table $?"},
		{"", ""},
		{"  -- only a comment", ""},
		{"SELECT $tag$ a $$ b $tag$ FROM t", "select $? from t"},
		{"SELECT $1$x$1$", "select $1 $!"}, // $x$ opens a dollar quote that never closes
		{"SELECT (1); SELECT ';'", "select ( $? ) ; select $?"},
		{"CREATE RULE r AS ON INSERT TO t DO (INSERT INTO u VALUES (1); DELETE FROM v)",
			"create rule r as on insert to t do ( insert into u values ( $? ) ; delete from v )"},
	}
	for _, tc := range tests {
		got := Normalize(tc.in)
		if got != tc.want {
			t.Errorf("Normalize(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if d := Digest(tc.in); d != xxhash.Sum64String(got) {
			t.Errorf("Digest(%q) = %x, want xxhash of %q = %x", tc.in, d, got, xxhash.Sum64String(got))
		}
	}
}

func TestDigestSameShape(t *testing.T) {
	pairs := [][2]string{
		{"SELECT * FROM t WHERE id = 1", "select  *  from T where ID=999999"},
		{"SELECT * FROM t WHERE name = 'alice'", "SELECT * FROM t WHERE name = E'bob\\'s'"},
		{"SELECT * FROM t WHERE name = 'a'", "SELECT * FROM t WHERE name = $q$b$q$"},
		{"SELECT * FROM t WHERE id IN (1)", "SELECT * FROM t WHERE id IN (1, 2, 3, 4, 5, 6)"},
		{"INSERT INTO t VALUES (1, 'a', 2.5)", "INSERT INTO t VALUES (7, 'zz', 1e9)"},
		{"SELECT 1 -- trailing comment", "SELECT /* leading */ 2"},
		{"SELECT 1;", "SELECT 1"},
		{"SELECT 1", ";SELECT 1;;"},
		{"select x::int", "SELECT x :: INT"},
		{"/* tiergate: primary */ SELECT 1", "/*TIERGATE:PRIMARY*/SELECT 2"},
		{"SELECT interval '1 day'", "SELECT interval '2 hours'"},
		{"SELECT 'a'\n'b'", "SELECT 'c'\n'd'"},
	}
	for _, p := range pairs {
		if Digest(p[0]) != Digest(p[1]) {
			t.Errorf("different digests for the same shape:\n  %q -> %q\n  %q -> %q", p[0], Normalize(p[0]), p[1], Normalize(p[1]))
		}
	}
}

func TestDigestDifferentShape(t *testing.T) {
	pairs := [][2]string{
		{"SELECT * FROM t WHERE id = 1", "SELECT * FROM u WHERE id = 1"},
		{"SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = $1"},
		{"SELECT a FROM t", "SELECT 'a' FROM t"},
		{`SELECT a FROM t`, `SELECT "a" FROM t`},
		{`SELECT "A" FROM t`, `SELECT "a" FROM t`},
		{"SELECT 1", "/* tiergate: primary */ SELECT 1"},
		{"/* tiergate: primary */ SELECT 1", "/* tiergate: replica */ SELECT 1"},
		{"SELECT 1", "SELECT 1; SELECT 1"},
		{"SELECT * FROM t", "SELECT * FROM t FOR UPDATE"},
		{"SELECT a <> b", "SELECT a < > b"},
		{"SELECT ab", "SELECT a b"},
		{"SELECT a.b", "SELECT a . b c"},
		{"SELECT f(1, 2)", "SELECT f(1), 2"},
		{"SELECT 1", "SELECT 'open"},
		{"SELECT 1", "SELECT 1abc"},
		{"SELECT nextval('s')", "SELECT currval('s')"},
		{"SELECT $1", "SELECT $2"},
		{"EXPLAIN DELETE FROM t", "EXPLAIN ANALYZE DELETE FROM t"},
		{"BEGIN", "BEGIN READ ONLY"},
	}
	for _, p := range pairs {
		if Digest(p[0]) == Digest(p[1]) {
			t.Errorf("same digest for different shapes: %q and %q (%q)", p[0], p[1], Normalize(p[0]))
		}
	}
}

func TestDigestLongText(t *testing.T) {
	// Longer than the normaliser's buffer, with a long identifier and a
	// long quoted identifier crossing buffer boundaries.
	long := "SELECT " + strings.Repeat("Col_Name_", 200) + `, "` + strings.Repeat("Q", 1500) + `" FROM t WHERE x = '` + strings.Repeat("v", 3000) + "'"
	n := Normalize(long)
	if want := "select " + strings.Repeat("col_name_", 200) + ` , "` + strings.Repeat("Q", 1500) + `" from t where x = $?`; n != want {
		t.Errorf("Normalize(long) = %.80q..., want %.80q...", n, want)
	}
	if Digest(long) != xxhash.Sum64String(n) {
		t.Error("Digest(long) != xxhash(Normalize(long))")
	}
}

func TestDigestDoesNotAllocate(t *testing.T) {
	sql := "/* app */ SELECT u.id, u.name FROM users u WHERE u.email = 'a@b.c' AND u.id IN (1, 2, 3) -- x"
	if n := testing.AllocsPerRun(100, func() { Digest(sql) }); n != 0 {
		t.Errorf("Digest allocates %.1f times", n)
	}
}

func TestScanFacts(t *testing.T) {
	tests := []struct {
		sql        string
		statements int
		proxy      bool
		hint       hint
		bad        bool
	}{
		{"SELECT 1", 1, false, hintNone, false},
		{"SELECT 1; SELECT 2;", 2, false, hintNone, false},
		{"CREATE RULE r AS ON INSERT TO t DO (INSERT INTO u VALUES (1); DELETE FROM v)", 1, false, hintNone, false},
		{"SET tiergate.route = primary", 1, true, hintNone, false},
		{"SET SESSION tiergate . route TO primary", 1, true, hintNone, false},
		{"set local TIERGATE.x = 1", 1, true, hintNone, false},
		{`SET "tiergate".route = 1`, 1, true, hintNone, false},
		{"RESET tiergate.route", 1, true, hintNone, false},
		{"SHOW tiergate.route", 1, true, hintNone, false},
		{"SELECT 1; SET tiergate.route = x", 2, true, hintNone, false},
		{"SET search_path = tiergate.route", 1, false, hintNone, false},
		{"SET tiergate", 1, false, hintNone, false},
		{"SHOW SESSION tiergate.route", 1, false, hintNone, false},
		{"/* tiergate: replica */ SELECT 1", 1, false, hintReplica, false},
		{"/* tiergate: replica */ SELECT /* tiergate: primary */ 1", 1, false, hintPrimary, false},
		{"SELECT 'x", 1, false, hintNone, true},
	}
	for _, tc := range tests {
		var sc scanResult
		scanSQL(tc.sql, &sc, nil)
		if sc.statements != tc.statements || sc.proxySetting != tc.proxy || sc.hint != tc.hint || sc.bad != tc.bad {
			t.Errorf("%q: statements %d proxy %v hint %d bad %v, want %d %v %d %v", tc.sql,
				sc.statements, sc.proxySetting, sc.hint, sc.bad, tc.statements, tc.proxy, tc.hint, tc.bad)
		}
	}
}

func TestScanChain(t *testing.T) {
	tests := []struct {
		sql  string
		want int
	}{
		{"SELECT a, b FROM t", 0},
		{"SELECT a + b * c FROM t WHERE x::int IS NULL AND y[1] LIKE 'z'", 6},
		{"SELECT 1 + 1; SELECT 1 + 1 + 1", 2},
		{"SELECT * FROM a JOIN b ON true UNION SELECT 1 IN (1)", 4}, // * is an operator token
	}
	for _, tc := range tests {
		if got := chainLength(tc.sql); got != tc.want {
			t.Errorf("%q: chain %d, want %d", tc.sql, got, tc.want)
		}
	}
}
