package sqlroute

import (
	"strings"
	"testing"
)

// volatileConfig names one qualified and one any-schema volatile function.
var volatileConfig = Config{
	WriteFunctions:    []string{"billing.charge"},
	VolatileFunctions: []string{"app.tick", "Jitter"},
}

// cacheFacts are the flags this file is about.
const cacheFacts = FlagVolatile | FlagUserFunction

// volatileBuiltins are the built-ins that make a statement volatile.
var volatileBuiltins = []string{
	"now", "random", "random_normal", "setseed", "clock_timestamp",
	"statement_timestamp", "transaction_timestamp", "timeofday",
	"gen_random_uuid", "uuidv4", "uuidv7", "uuid_generate_v1",
	"uuid_generate_v1mc", "uuid_generate_v4", "nextval", "currval",
	"lastval", "setval", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
	"txid_current", "txid_current_if_assigned", "txid_current_snapshot",
	"txid_snapshot_xmin", "txid_snapshot_xmax", "txid_snapshot_xip",
	"txid_visible_in_snapshot", "txid_status", "pg_current_xact_id",
	"pg_current_xact_id_if_assigned", "pg_current_snapshot",
	"pg_backend_pid", "current_setting", "current_schema", "current_schemas",
	"current_query", "inet_client_addr", "inet_client_port",
	"inet_server_addr", "inet_server_port", "pg_postmaster_start_time",
	"pg_conf_load_time", "pg_is_in_recovery", "pg_last_wal_receive_lsn",
	"pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp",
	"pg_current_wal_lsn", "pg_current_wal_insert_lsn",
	"pg_current_wal_flush_lsn", "age", "set_config",
}

func TestVolatileBuiltins(t *testing.T) {
	c := newTestClassifier(t, volatileConfig)
	for _, name := range volatileBuiltins {
		for _, sql := range []string{
			"SELECT " + name + "()",
			"SELECT pg_catalog." + name + "(1, 2)",
			"SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = " + strings.ToUpper(name) + "())",
		} {
			d, err := c.Classify(sql)
			if err != nil || d.Has(FlagUnparsable) {
				t.Fatalf("%q: %v %v", sql, d.Flags, err)
			}
			if got := d.Flags & cacheFacts; got != FlagVolatile {
				t.Errorf("%q: %v, want volatile (and not user-function)", sql, got)
			}
		}
	}
}

func TestVolatileAndUserFunctions(t *testing.T) {
	const (
		vol  = FlagVolatile
		user = FlagUserFunction
	)
	tests := []struct {
		sql  string
		want Flags // FlagVolatile and FlagUserFunction only
	}{
		// SQL value functions (all of them depend on the clock or session).
		{"SELECT CURRENT_DATE", vol},
		{"SELECT current_time", vol},
		{"SELECT CURRENT_TIME(3)", vol},
		{"SELECT CURRENT_TIMESTAMP", vol},
		{"SELECT current_timestamp(0)", vol},
		{"SELECT LOCALTIME", vol},
		{"SELECT LOCALTIME(2)", vol},
		{"SELECT LOCALTIMESTAMP", vol},
		{"SELECT localtimestamp(6)", vol},
		{"SELECT CURRENT_USER", vol},
		{"SELECT CURRENT_ROLE", vol},
		{"SELECT SESSION_USER", vol},
		{"SELECT USER", vol},
		{"SELECT CURRENT_SCHEMA", vol},
		{"SELECT CURRENT_CATALOG", vol},
		{"SELECT SYSTEM_USER", vol},
		{"SELECT * FROM docs WHERE owner = current_user", vol},

		// Where the call sits.
		{"SELECT * FROM t WHERE created_at > now() - interval '1 day'", vol},
		{"SELECT * FROM t WHERE created_at > CURRENT_DATE - 1", vol},
		{"WITH x AS (SELECT random() AS r) SELECT * FROM x", vol},
		{"SELECT * FROM (SELECT clock_timestamp()) s", vol},
		{"SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t = t.id AND u.at < now())", vol},
		{"SELECT count(*) FILTER (WHERE at > now()) FROM t", vol},
		{"SELECT CASE WHEN a THEN gen_random_uuid() END FROM t", vol},
		{"SELECT 1; SELECT now()", vol},
		{"SELECT pg_catalog.now()", vol},
		{"EXPLAIN SELECT now()", vol},                                 // in a part that does not run: still set
		{"CREATE TABLE t (at timestamptz DEFAULT now())", vol},        // likewise
		{"INSERT INTO t (id) VALUES (nextval('s'))", vol},             // a write anyway
		{"SELECT * FROM t WHERE day = ANY(ARRAY[current_date])", vol}, // inside an array

		// 'now', 'today', 'tomorrow', 'yesterday' as date/time input.
		{"SELECT 'now'::timestamptz", vol},
		{"SELECT CAST('today' AS date)", vol},
		{"SELECT timestamp 'now'", vol},
		{"SELECT date 'Tomorrow'", vol},
		{"SELECT '  YESTERDAY '::date", vol},
		{"SELECT 'tomorrow 08:00'::timestamp", vol},
		{"SELECT E'now'::timestamptz", vol},
		{`SELECT E'\x6eow'::timestamptz`, vol}, // escapes decoded
		{"SELECT $$today$$::date", vol},
		{"SELECT $d$today$d$::date", vol},
		{"SELECT N'now'::timestamptz", vol},
		{"SELECT U&'now'::timestamptz", vol},
		{"SELECT * FROM t WHERE created_at > 'now'", vol}, // implicit cast: the server's clock too
		{"SELECT * FROM t WHERE day BETWEEN 'yesterday' AND 'today'", vol},
		{"SELECT * FROM (SELECT 'now'::timestamptz AS at) s WHERE at IS NOT NULL", vol},
		{"SELECT * FROM t WHERE note = 'buy now'", vol}, // the type is unknown here: a word is enough

		// Views whose rows change by themselves, random samples.
		{"SELECT * FROM pg_stat_activity", vol},
		{"SELECT * FROM pg_catalog.pg_locks l JOIN t ON t.pid = l.pid", vol},
		{"SELECT * FROM pg_statio_user_tables", vol},
		{"SELECT name, setting FROM pg_settings", vol},
		{"SELECT * FROM t TABLESAMPLE BERNOULLI (10)", vol},
		{"SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (42)", 0},
		{"SELECT * FROM pg_class", 0},
		{"SELECT * FROM app.pg_stat_activity", 0}, // not the system view

		// Not volatile.
		{"SELECT to_timestamp(x) FROM t", 0},
		{"SELECT to_timestamp('2024-01-01', 'YYYY-MM-DD')", 0},
		{"SELECT count(*) FROM t", 0},
		{"SELECT lower(name) FROM users", 0},
		{"SELECT date_trunc('day', created_at) FROM t", 0},
		{"SELECT 'nowhere'::text", 0},
		{"SELECT 'knowledge', 'todays', 'yesterdays', 'snow'", 0},
		{"SELECT * FROM t WHERE day = '2024-01-01'::date", 0},
		{"SELECT now_col, today, \"now\" FROM t", 0},
		{"SELECT B'0101', X'0a'", 0},
		{"SELECT '" + strings.Repeat(" ", maxTimeLiteral) + "now'", 0}, // longer than any date/time input
		{"SELECT extract(year FROM d), substring(s FROM 1 FOR 2), trim(both ' ' FROM s), position('a' IN s) FROM t", 0},
		{"SELECT overlay(s PLACING 'x' FROM 2), s IS NORMALIZED, normalize(s), collation for (s) FROM t", 0},
		{"SELECT ts AT TIME ZONE 'UTC', s SIMILAR TO 'a%', s LIKE 'a%' ESCAPE '!', (a, b) OVERLAPS (c, d) FROM t", 0},
		{"SELECT coalesce(a, b), nullif(a, 0), greatest(a, b), least(a, b) FROM t", 0},
		{"SELECT sum(x), avg(x), stddev(x), var_pop(x), string_agg(s, ','), jsonb_agg(j) FROM t", 0},
		{"SELECT row_number() OVER (), lag(x) OVER (ORDER BY y) FROM t", 0},
		{"SELECT jsonb_build_object('a', 1), to_jsonb(t), array_length(a, 1), unnest(a) FROM t", 0},
		{"SELECT * FROM generate_series(1, 10)", 0},
		{"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t", 0},
		{`SELECT "lower"('A')`, 0},

		// User functions.
		{"SELECT my_func(x) FROM t", user},
		{"SELECT app.f()", user},
		{"SELECT pg_catalog.lower('A')", 0},
		{"SELECT pg_catalog.not_a_builtin()", user},
		{`SELECT "Lower"('A')`, user}, // quoted: a different function
		{"SELECT * FROM my_srf(1)", user},
		{"SELECT * FROM t WHERE id IN (SELECT f(x) FROM u)", user},
		{"SELECT a.b.c()", user},
		{"SELECT public.now()", user}, // not pg_catalog's
		{"SELECT to_tsvector('english', body) FROM docs", user},
		{"SELECT billing.charge(1)", user}, // a configured write function
		{"CALL p()", user},
		{"SELECT my_func(now())", user | vol},

		// Configured volatile functions: volatile, and not built-ins.
		{"SELECT app.tick()", vol | user},
		{"SELECT APP.TICK()", vol | user},
		{"SELECT tick()", user}, // app.tick is schema-qualified
		{"SELECT other.tick()", user},
		{"SELECT jitter()", vol | user},
		{"SELECT s.jitter()", vol | user},
		{"SELECT * FROM t WHERE x < (SELECT jitter())", vol | user},
	}
	c := newTestClassifier(t, volatileConfig)
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			d, err := c.Classify(tc.sql)
			if err != nil || d.Has(FlagUnparsable) {
				t.Fatalf("%v %v", d.Flags, err)
			}
			if got := d.Flags & cacheFacts; got != tc.want {
				t.Errorf("got %v, want %v (all flags %v)", got, tc.want, d.Flags)
			}
			if !d.Has(FlagVolatile) && strings.Contains(strings.ToLower(tc.sql), "'now'") {
				t.Error("'now' literal without FlagVolatile")
			}
		})
	}
}

// A date/time literal is not part of the digest, so a 'today' statement
// shares its cached Decision with a '2024-01-01' statement; FlagVolatile
// must follow the text, not the cache entry, in both orders.
func TestVolatileLiteralFollowsText(t *testing.T) {
	fixed := "SELECT * FROM t WHERE day = '2024-01-01'::date"
	today := "SELECT * FROM t WHERE day = 'today'::date"
	if Digest(fixed) != Digest(today) {
		t.Fatal("test needs two statements of one shape")
	}
	for _, order := range [][]string{{fixed, today, fixed, today}, {today, fixed, today, fixed}} {
		c := newTestClassifier(t, Config{})
		for _, sql := range order {
			d, err := c.Classify(sql)
			if err != nil {
				t.Fatal(err)
			}
			if want := sql == today; d.Has(FlagVolatile) != want {
				t.Errorf("%q after %q: volatile %v, want %v", sql, order[0], d.Has(FlagVolatile), want)
			}
		}
		if s := c.Stats(); s.Parses != 1 {
			t.Errorf("%d parses, want 1 (one shape)", s.Parses)
		}
	}
}

func TestIsTimeLiteral(t *testing.T) {
	tests := []struct {
		tok  string
		want bool
	}{
		{"'now'", true},
		{"'NoW'", true},
		{"' today\t'", true},
		{"'tomorrow'", true},
		{"'yesterday 10:00'", true},
		{"'10:00 today'", true},
		{"E'now'", true},
		{"e'\\x6eo\\167'", true},
		{"E'\\u006Eow'", true},
		{"E'\\tnow\\n'", true},
		{"E'no\\w'", true}, // \w is w
		{"N'now'", true},
		{"U&'now'", true},
		{"$$now$$", true},
		{"$tag$ today $tag$", true},
		{"''", false},
		{"'no'", false},
		{"'nowhere'", false},
		{"'snow'", false},
		{"'no''w'", false},
		{"E'\\u00'", false}, // bad escape
		{"B'0101'", false},
		{"X'now'", false},
		{"U&'n\\006Fw'", false}, // U& escapes are not decoded
		{"$$nothing$$", false},
	}
	for _, tc := range tests {
		if got := isTimeLiteral(tc.tok); got != tc.want {
			t.Errorf("isTimeLiteral(%q) = %v, want %v", tc.tok, got, tc.want)
		}
	}
}

func TestVolatileCachedDoesNotAllocate(t *testing.T) {
	c := newTestClassifier(t, volatileConfig)
	for _, sql := range []string{
		"SELECT * FROM t WHERE at > now() AND day = 'today'::date",
		"SELECT * FROM t WHERE s = E'a\\tb' AND d = E'\\x6eow'",
		"SELECT app.tick(), my_func(1)",
	} {
		c.Classify(sql)
		allocs := testing.AllocsPerRun(100, func() {
			if d, _ := c.Classify(sql); !d.Has(FlagVolatile) && !d.Has(FlagUserFunction) {
				t.Fatalf("%q: %v", sql, d.Flags)
			}
		})
		if allocs != 0 {
			t.Errorf("%q: cached Classify allocates %.1f times", sql, allocs)
		}
	}
}
