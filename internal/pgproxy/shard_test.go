package pgproxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/shardmap"
)

func testShardMap(t testing.TB, cfg *shardmap.Config) *shardmap.Map {
	t.Helper()
	c := *cfg
	c.SetDefaults()
	m, err := shardmap.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// onShard reports on which shards (direct connections) a query returns a
// row.
func onShards(t testing.TB, ctx context.Context, conns []*pgx.Conn, sql string, args ...any) []int {
	t.Helper()
	var out []int
	for i, c := range conns {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM ("+sql+") q", args...).Scan(&n); err != nil {
			t.Fatalf("shard %d: %s: %v", i, sql, err)
		}
		if n > 0 {
			out = append(out, i)
		}
	}
	return out
}

// settle waits until the shards' statement counters have moved by want
// since before (they are updated just after the client got its answer)
// and returns the movement per shard.
func (p *testProxy) settle(t testing.TB, before []int64, want int64) []int64 {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		d := delta(before, p.shardQueries())
		var sum int64
		for _, v := range d {
			sum += v
		}
		if sum >= want || time.Now().After(deadline) {
			return d
		}
		time.Sleep(time.Millisecond) // counters are bumped right after the answer
	}
}

// delta returns after-before per shard.
func delta(before, after []int64) []int64 {
	out := make([]int64, len(after))
	for i := range after {
		out[i] = after[i] - before[i]
	}
	return out
}

func onlyShard(d []int64, s int) bool {
	for i, v := range d {
		if (i == s) != (v == 1) || v < 0 || v > 1 {
			return false
		}
	}
	return true
}

func TestShardedSingleShardRouting(t *testing.T) {
	cs := shardClusters(t)
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d_shards", n), func(t *testing.T) {
			testSingleShardRouting(t, cs, n)
		})
	}
}

func testSingleShardRouting(t *testing.T, cs []*pgtest.Cluster, n int) {
	db := fmt.Sprintf("route%d", n)
	sharding := webappSharding(n)
	cfg := shardedTestConfig(t, cs, db, n, sharding, webappSchema)
	p := startProxy(t, cfg)
	ctx := ctxT(t, 2*time.Minute)
	p.waitShardReplicas(t, ctx)
	m := testShardMap(t, sharding)
	conn := p.connect(t, ctx)
	direct := make([]*pgx.Conn, n)
	for i := range direct {
		direct[i] = shardConn(t, ctx, cs[i], db)
	}
	shardOf := func(k int64) int {
		s, err := m.ShardFor("users", shardmap.Int64Key(k))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	for mi, mode := range execModes {
		t.Run(mode.name, func(t *testing.T) {
			base := int64(1000 * (mi + 1))
			// Inserts land on the shard of their key.
			for k := base; k < base+20; k++ {
				if _, err := conn.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, $2, $3)", mode.mode, k, fmt.Sprint("u", k), "h"); err != nil {
					t.Fatalf("insert %d: %v", k, err)
				}
			}
			for k := base; k < base+20; k++ {
				got := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE user_id = $1", k)
				if !slices.Equal(got, []int{shardOf(k)}) {
					t.Fatalf("user %d is on shards %v, want [%d]", k, got, shardOf(k))
				}
			}
			// One-key statements touch exactly one shard. Warm up each
			// statement first (a prepare goes to any shard).
			k := base + 7
			stmts := []struct {
				sql  string
				args []any
			}{
				{"SELECT name FROM users WHERE user_id = $1", []any{k}},
				{"UPDATE users SET name = $2 WHERE user_id = $1", []any{k, "renamed"}},
				{"SELECT u.name FROM users u WHERE u.user_id = $1 AND u.name = $2", []any{k, "renamed"}},
				{"DELETE FROM users WHERE user_id = $1", []any{base + 19}},
			}
			for _, st := range stmts {
				args := append([]any{mode.mode}, st.args...)
				if _, err := conn.Exec(ctx, st.sql, args...); err != nil {
					t.Fatalf("%s: %v", st.sql, err)
				}
				before := p.shardQueries()
				rows, err := conn.Query(ctx, st.sql, args...)
				if err != nil {
					t.Fatalf("%s: %v", st.sql, err)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					t.Fatalf("%s: %v", st.sql, err)
				}
				want := shardOf(st.args[0].(int64))
				if d := p.settle(t, before, 1); !onlyShard(d, want) {
					t.Errorf("%s: per-shard statements %v, want one on shard %d", st.sql, d, want)
				}
			}
			var name string
			if err := conn.QueryRow(ctx, "SELECT name FROM users WHERE user_id = $1", mode.mode, k).Scan(&name); err != nil || name != "renamed" {
				t.Fatalf("read back: %q %v", name, err)
			}
			if got := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE user_id = $1", base+19); len(got) != 0 {
				t.Fatalf("deleted user still on %v", got)
			}

			// A reference table: writes go to every shard, reads to one.
			uname := fmt.Sprint("name-", mode.name)
			if _, err := conn.Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ($1, $2)", mode.mode, uname, k); err != nil {
				t.Fatal(err)
			}
			if got := onShards(t, ctx, direct, "SELECT 1 FROM usernames WHERE name = $1", uname); len(got) != n {
				t.Fatalf("reference row on shards %v, want all %d", got, n)
			}
			var id int64
			if err := conn.QueryRow(ctx, "SELECT user_id FROM usernames WHERE name = $1", mode.mode, uname).Scan(&id); err != nil || id != k {
				t.Fatal(id, err)
			}
			before := p.shardQueries()
			if err := conn.QueryRow(ctx, "SELECT user_id FROM usernames WHERE name = $1", mode.mode, uname).Scan(&id); err != nil || id != k {
				t.Fatal(id, err)
			}
			var sum int64
			for _, v := range p.settle(t, before, 1) {
				sum += v
			}
			if sum != 1 {
				t.Errorf("reference read touched %d shards", sum)
			}
			// A duplicate fails on every shard with the same error.
			_, err := conn.Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ($1, $2)", mode.mode, uname, k)
			if !isPgCode(err, "23505") {
				t.Fatalf("duplicate reference row: %v", err)
			}
		})
	}

	t.Run("hints", func(t *testing.T) {
		last := n - 1
		var db string
		before := p.shardQueries()
		simple := pgx.QueryExecModeSimpleProtocol
		if err := conn.QueryRow(ctx, fmt.Sprintf("/* tiergate: shard=s%d */ SELECT current_database()", last), simple).Scan(&db); err != nil {
			t.Fatal(err)
		}
		if d := p.settle(t, before, 1); !onlyShard(d, last) {
			t.Errorf("shard hint: %v", d)
		}
		var key int64 = 4242
		before = p.shardQueries()
		var cnt int
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM posts /* tiergate: shard_key=%d */", key), simple).Scan(&cnt); err != nil {
			t.Fatal(err)
		}
		if d := p.settle(t, before, 1); !onlyShard(d, shardOf(key)) {
			t.Errorf("shard_key hint: %v, want shard %d", d, shardOf(key))
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("SET tiergate.shard_key = '%d'", key)); err != nil {
			t.Fatal(err)
		}
		var shown string
		if err := conn.QueryRow(ctx, "SHOW tiergate.shard_key", simple).Scan(&shown); err != nil || shown != fmt.Sprint(key) {
			t.Fatalf("SHOW: %q %v", shown, err)
		}
		for _, mode := range execModes {
			before = p.shardQueries()
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts", mode.mode).Scan(&cnt); err != nil {
				t.Fatal(err)
			}
			if mode.name == "extended" {
				continue // the first run also prepared it on some shard
			}
			if d := p.settle(t, before, 1); !onlyShard(d, shardOf(key)) {
				t.Errorf("%s: SET tiergate.shard_key: %v, want shard %d", mode.name, d, shardOf(key))
			}
		}
		if _, err := conn.Exec(ctx, "RESET tiergate.shard_key"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SET tiergate.shard = 'nope'"); !isPgCode(err, "22023") {
			t.Fatalf("bad shard: %v", err)
		}
	})

	t.Run("console", func(t *testing.T) {
		pc := p.console(t, ctx)
		stats := consoleQuery(t, ctx, pc, "SHOW STATS")
		if len(stats) != n || stats[0]["database"] != "app/s0" {
			t.Fatalf("SHOW STATS: %v", stats)
		}
		for _, q := range []string{"SHOW POOLS", "SHOW NODES", "SHOW SERVERS", "SHOW CONFIG", "SHOW CLIENTS"} {
			if rows := consoleQuery(t, ctx, pc, q); len(rows) == 0 {
				t.Errorf("%s: no rows", q)
			}
		}
		sh := consoleQuery(t, ctx, pc, "SHOW SHARDS")
		if len(sh) != 1 || sh[0]["shards"] != fmt.Sprint(n) {
			t.Fatalf("SHOW SHARDS: %v", sh)
		}
		// EXPLAIN ROUTE.
		rows := consoleQuery(t, ctx, pc, "EXPLAIN ROUTE SELECT name FROM users WHERE user_id = 42")
		if len(rows) != 1 || rows[0]["shard"] != fmt.Sprintf("s%d", shardOf(42)) || rows[0]["route"] != "single shard" || rows[0]["role"] != "replica" {
			t.Errorf("single key: %v", rows)
		}
		rows = consoleQuery(t, ctx, pc, "explain route for app SELECT user_id, post_id, author, body, created_at FROM posts ORDER BY created_at DESC LIMIT 50")
		if len(rows) != n || rows[0]["route"] != "fan-out" || !strings.Contains(rows[0]["reason"], "k-way merge ORDER BY col 5 DESC") || !strings.Contains(rows[0]["reason"], "LIMIT 50") {
			t.Errorf("feed: %v", rows)
		}
		rows = consoleQuery(t, ctx, pc, "SHOW ROUTE INSERT INTO usernames (name, user_id) VALUES ('a', 1)")
		if len(rows) != n || rows[0]["role"] != "primary" || !strings.Contains(rows[0]["reason"], "reference table") {
			t.Errorf("reference write: %v", rows)
		}
		rows = consoleQuery(t, ctx, pc, "EXPLAIN ROUTE SELECT row_number() OVER () FROM posts")
		if len(rows) != 1 || rows[0]["route"] != "refused" || !strings.Contains(rows[0]["reason"], "window function") {
			t.Errorf("unsafe: %v", rows)
		}
		rows = consoleQuery(t, ctx, pc, "EXPLAIN ROUTE /* tiergate: shard=s1 */ SELECT 1")
		if len(rows) != 1 || rows[0]["shard"] != "s1" {
			t.Errorf("hint: %v", rows)
		}
	})

	t.Run("cancel fan-out", func(t *testing.T) {
		var keys []int64
		for k := int64(7000); len(keys) < 2; k++ {
			if shardOf(k) == len(keys) {
				keys = append(keys, k)
				if _, err := conn.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'sleepy', 'h')", k); err != nil {
					t.Fatal(err)
				}
			}
		}
		sleeper := p.connect(t, ctx)
		done := make(chan error, 1)
		go func() {
			_, err := sleeper.Exec(ctx, "/* tiergate: primary */ SELECT user_id, pg_sleep(30) FROM users WHERE user_id IN ($1, $2)", keys[0], keys[1])
			done <- err
		}()
		waitFor(t, ctx, "both shards sleeping", func() bool {
			n := 0
			for _, d := range direct[:2] {
				var c int
				_ = d.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()").Scan(&c)
				n += c
			}
			return n == 2
		})
		// A CancelRequest for the client reaches every shard.
		if err := sleeper.PgConn().CancelRequest(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !isPgCode(err, "57014") {
			t.Fatalf("cancelled fan-out: %v", err)
		}
		var one int
		if err := sleeper.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("after the cancel: %v", err)
		}
	})

	t.Run("pause writes", func(t *testing.T) {
		pc := p.console(t, ctx)
		writer := p.connect(t, ctx)
		consoleQuery(t, ctx, pc, "PAUSE WRITES")
		done := make(chan error, 1)
		go func() {
			_, err := writer.Exec(ctx, "UPDATE users SET name = name WHERE user_id = $1", int64(1001))
			done <- err
		}()
		// Reads go on while writes wait.
		var cnt int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM users WHERE user_id = $1", int64(1001)).Scan(&cnt); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the write waiting", func() bool { return p.srv.writes.waiting.Load() == 1 })
		select {
		case err := <-done:
			t.Fatalf("a write ran while paused: %v", err)
		default:
		}
		consoleQuery(t, ctx, pc, "RESUME")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("transactions", func(t *testing.T) {
		// Two keys on different shards.
		var a, b int64
		for k := int64(50000); a == 0 || b == 0; k++ {
			switch {
			case shardOf(k) == 0 && a == 0:
				a = k
			case shardOf(k) == 1 && b == 0:
				b = k
			}
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'a', 'h')", a); err != nil {
			t.Fatal(err)
		}
		var name string
		if err := tx.QueryRow(ctx, "SELECT name FROM users WHERE user_id = $1", a).Scan(&name); err != nil || name != "a" {
			t.Fatal(name, err)
		}
		// A read on another shard joins the transaction.
		var cnt int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM users WHERE user_id = $1", b).Scan(&cnt); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE user_id = $1", a); !slices.Equal(got, []int{0}) {
			t.Fatalf("committed row on %v", got)
		}
		// Rolled back.
		tx, err = conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET name = 'b' WHERE user_id = $1", a); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "/* tiergate: primary */ SELECT name FROM users WHERE user_id = $1", a).Scan(&name); err != nil || name != "a" {
			t.Fatal(name, err)
		}
		// Writes to two shards in one transaction are refused without 2PC.
		tx, err = conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'x', 'h')", a+1000000); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'y', 'h')", b)
		if !isPgCode(err, "0A000") && shardOf(a+1000000) != shardOf(b) {
			t.Fatalf("second shard write: %v", err)
		}
		_, err = tx.Exec(ctx, "SELECT 1")
		if shardOf(a+1000000) != shardOf(b) && !isPgCode(err, "25P02") {
			t.Fatalf("after the refusal: %v", err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if got := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE user_id IN ($1, $2)", a+1000000, b); len(got) != 0 {
			t.Fatalf("refused transaction left rows on %v", got)
		}
		// The session goes on.
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&cnt); err != nil {
			t.Fatal(err)
		}
	})
}
