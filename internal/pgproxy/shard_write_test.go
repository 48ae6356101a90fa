package pgproxy

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/shardmap"
)

const writeSchema = webappSchema + `
CREATE TABLE dc (k bigint NOT NULL, id int NOT NULL, UNIQUE (id) DEFERRABLE INITIALLY DEFERRED);
`

func TestShardedWrites(t *testing.T) {
	cs := shardClusters(t)
	const n = 3
	db := "writes3"
	sharding := webappSharding(n)
	sharding.Tables = append(sharding.Tables, shardmap.TableConfig{Table: "dc", Column: "k", KeySpace: "users"})
	cfg := shardedTestConfig(t, cs, db, n, sharding, writeSchema)
	d := cfg.Databases["app"]
	d.TwoPhaseCommit = true
	cfg.Databases["app"] = d
	p := startProxy(t, cfg)
	ctx := ctxT(t, 3*time.Minute)
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
	// keyOn returns the first key >= from on shard s.
	keyOn := func(s int, from int64) int64 {
		for k := from; ; k++ {
			if shardOf(k) == s {
				return k
			}
		}
	}
	prepared := func() int {
		total := 0
		for _, c := range direct {
			var cnt int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()").Scan(&cnt); err != nil {
				t.Fatal(err)
			}
			total += cnt
		}
		return total
	}

	t.Run("multi-row insert split", func(t *testing.T) {
		for mi, mode := range execModes {
			base := int64(10000 * (mi + 1))
			keys := []int64{keyOn(0, base), keyOn(1, base), keyOn(2, base), keyOn(1, base+500), keyOn(0, base+500)}
			var sql strings.Builder
			sql.WriteString("INSERT INTO posts (user_id, post_id, author, body) VALUES ")
			args := []any{mode.mode}
			for i, k := range keys {
				if i > 0 {
					sql.WriteString(", ")
				}
				fmt.Fprintf(&sql, "($%d, %d, 'a', $%d)", 2*i+1, i, 2*i+2)
				args = append(args, k, fmt.Sprint("body", i))
			}
			sql.WriteString(" RETURNING user_id, post_id")
			rows, err := conn.Query(ctx, sql.String(), args...)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for rows.Next() {
				var u, pid int64
				if err := rows.Scan(&u, &pid); err != nil {
					t.Fatal(err)
				}
				got = append(got, u)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", mode.name, err)
			}
			if tag := rows.CommandTag(); tag.String() != "INSERT 0 5" {
				t.Errorf("%s: tag %q", mode.name, tag)
			}
			slices.Sort(got)
			want := slices.Clone(keys)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: RETURNING %v, want %v", mode.name, got, want)
			}
			for i, k := range keys {
				if on := onShards(t, ctx, direct, "SELECT 1 FROM posts WHERE user_id = $1 AND post_id = $2", k, i); !slices.Equal(on, []int{shardOf(k)}) {
					t.Errorf("%s: row %d (key %d) on %v, want [%d]", mode.name, i, k, on, shardOf(k))
				}
			}
			// Literal keys too.
			a, b := keyOn(0, base+900), keyOn(2, base+900)
			tag, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO users (user_id, name, password_hash) VALUES (%d, 'x', 'h'), (%d, 'y', 'h')", a, b), mode.mode)
			if err != nil || tag.String() != "INSERT 0 2" {
				t.Fatalf("%s: literal split: %v %v", mode.name, tag, err)
			}
		}
		if prepared() != 0 {
			t.Fatal("prepared transactions left behind")
		}
	})

	t.Run("shard key update", func(t *testing.T) {
		a := keyOn(0, 70000)
		if _, err := conn.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'k', 'h')", a); err != nil {
			t.Fatal(err)
		}
		same := keyOn(0, a+1)
		other := keyOn(1, a+1)
		if _, err := conn.Exec(ctx, "UPDATE users SET user_id = $2 WHERE user_id = $1", a, other); !isPgCode(err, "0A000") {
			t.Fatalf("moving update: %v", err)
		}
		if _, err := conn.Exec(ctx, "UPDATE users SET user_id = $2 WHERE user_id = $1", a, same); err != nil {
			t.Fatalf("same-shard key update: %v", err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE user_id = $1", same); !slices.Equal(on, []int{0}) {
			t.Fatalf("updated row on %v", on)
		}
	})

	t.Run("updates and deletes without the key", func(t *testing.T) {
		for i := 0; i < n; i++ {
			k := keyOn(i, 80000)
			if _, err := conn.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'sweep', 'h')", k); err != nil {
				t.Fatal(err)
			}
		}
		tag, err := conn.Exec(ctx, "UPDATE users SET password_hash = 'new' WHERE name = $1", "sweep")
		if err != nil || tag.String() != fmt.Sprintf("UPDATE %d", n) {
			t.Fatalf("update everywhere: %v %v", tag, err)
		}
		tag, err = conn.Exec(ctx, "DELETE FROM users WHERE name = 'sweep' AND password_hash = 'new'")
		if err != nil || tag.String() != fmt.Sprintf("DELETE %d", n) {
			t.Fatalf("delete everywhere: %v %v", tag, err)
		}
	})

	t.Run("two-phase commit", func(t *testing.T) {
		a, b := keyOn(0, 90000), keyOn(1, 90000)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []int64{a, b} {
			if _, err := tx.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, '2pc', 'h')", k); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE name = '2pc'"); !slices.Equal(on, []int{0, 1}) {
			t.Fatalf("committed rows on %v", on)
		}
		if prepared() != 0 {
			t.Fatal("prepared transactions left behind")
		}
		// Rolled back on every shard.
		tx, err = conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []int64{a + 100000, b + 100000, keyOn(2, 190000)} {
			if _, err := tx.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, '2pc-rb', 'h')", k); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE name = '2pc-rb'"); len(on) != 0 {
			t.Fatalf("rolled back rows on %v", on)
		}
		// A part that fails to prepare (a deferred unique violation) rolls
		// every part back.
		c, d := keyOn(1, 95000), keyOn(2, 95000)
		tx, err = conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range [][2]int64{{c, 1}, {c, 1}, {d, 2}} {
			if _, err := tx.Exec(ctx, "INSERT INTO dc (k, id) VALUES ($1, $2)", row[0], row[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); !isPgCode(err, "23505") {
			t.Fatalf("commit with a deferred violation: %v", err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM dc"); len(on) != 0 {
			t.Fatalf("a failed two-phase commit left rows on %v", on)
		}
		if prepared() != 0 {
			t.Fatal("prepared transactions left behind")
		}
		// A write to every shard outside a transaction commits atomically.
		tag, err := conn.Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ('atomic', 1)")
		if err != nil || tag.String() != "INSERT 0 1" {
			t.Fatalf("reference insert: %v %v", tag, err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM usernames WHERE name = 'atomic'"); len(on) != n {
			t.Fatalf("reference row on %v", on)
		}
		// ... and a failure on one shard undoes it on the others.
		if _, err := direct[2].Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ('only-on-2', 1)"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ('only-on-2', 2)"); !isPgCode(err, "23505") || !strings.Contains(err.Error(), "shard s2") {
			t.Fatalf("conflicting reference insert: %v", err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM usernames WHERE name = 'only-on-2' AND user_id = 2"); len(on) != 0 {
			t.Fatalf("partial reference write on %v", on)
		}
		if prepared() != 0 {
			t.Fatal("prepared transactions left behind")
		}
		if st := p.srv.rt.Load().sharded["app"].stats; st.twoPhase.Load() < 2 {
			t.Errorf("two-phase commits: %d", st.twoPhase.Load())
		}
	})

	t.Run("savepoints", func(t *testing.T) {
		a, a2, b, c := keyOn(0, 120000), keyOn(0, 121000), keyOn(1, 120000), keyOn(2, 120000)
		ins := "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'sp', 'h')"
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			sql  string
			args []any
		}{
			{ins, []any{a}},
			{"SAVEPOINT sp1", nil},
			{ins, []any{b}}, // shard s1 joins after the savepoint
			{ins, []any{a2}},
			{"ROLLBACK TO SAVEPOINT sp1", nil},
			{ins, []any{c}},
			{"SAVEPOINT sp2", nil},
			{ins, []any{a}}, // duplicate: fails on s0
		}
		for i, st := range steps {
			_, err := tx.Exec(ctx, st.sql, st.args...)
			if i == len(steps)-1 {
				if !isPgCode(err, "23505") {
					t.Fatalf("duplicate: %v", err)
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", st.sql, err)
			}
		}
		if _, err := tx.Exec(ctx, "ROLLBACK TO sp2"); err != nil {
			t.Fatalf("rollback to after an error: %v", err)
		}
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT sp2"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[int64]bool{a: true, a2: false, b: false, c: true} {
			if on := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE user_id = $1 AND name = 'sp'", k); (len(on) == 1) != want {
				t.Errorf("key %d (shard %d): on %v, want present=%v", k, shardOf(k), on, want)
			}
		}
		if prepared() != 0 {
			t.Fatal("prepared transactions left behind")
		}
	})

	t.Run("fan-out size limit", func(t *testing.T) {
		small := *cfg
		small.Databases = map[string]DatabaseConfig{"app": cfg.Databases["app"]}
		d := small.Databases["app"]
		d.MaxFanoutBytes = 2000
		small.Databases["app"] = d
		p2 := startProxy(t, &small)
		c2 := p2.connect(t, ctx)
		for _, mode := range execModes {
			if _, err := c2.Exec(ctx, "SELECT * FROM posts", mode.mode); !isPgCode(err, "54000") {
				t.Fatalf("%s: big fan-out: %v", mode.name, err)
			}
			var n int
			if err := c2.QueryRow(ctx, "SELECT count(*) FROM posts", mode.mode).Scan(&n); err != nil || n == 0 {
				t.Fatalf("%s: small fan-out after: %d %v", mode.name, n, err)
			}
		}
		p2.stop()
	})

	t.Run("recovery", func(t *testing.T) {
		// In-doubt transactions of a proxy that died: one decided commit,
		// one never decided.
		k1, k2 := keyOn(1, 99000), keyOn(2, 99000)
		for _, tx := range []struct {
			id     string
			commit bool
		}{{"tg2pc_dead0001_1", true}, {"tg2pc_dead0001_2", false}} {
			for _, k := range []int64{k1, k2} {
				s := shardOf(k)
				if _, err := direct[s].Exec(ctx, fmt.Sprintf("BEGIN; INSERT INTO users (user_id, name, password_hash) VALUES (%d, '%s', 'h'); PREPARE TRANSACTION '%s_%d'", k+boolKey(tx.commit), tx.id, tx.id, s)); err != nil {
					t.Fatal(err)
				}
			}
			if tx.commit {
				if _, err := direct[0].Exec(ctx, "INSERT INTO tiergate.twophase_decisions (gid, outcome) VALUES ($1, 'commit')", tx.id); err != nil {
					t.Fatal(err)
				}
			}
		}
		if prepared() != 4 {
			t.Fatalf("prepared %d", prepared())
		}
		// A proxy starting up settles them.
		p2 := startProxy(t, cfg)
		waitFor(t, ctx, "in-doubt transactions settled", func() bool { return prepared() == 0 })
		if on := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE name = 'tg2pc_dead0001_1'"); !slices.Equal(on, []int{1, 2}) {
			t.Fatalf("decided transaction committed on %v", on)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM users WHERE name = 'tg2pc_dead0001_2'"); len(on) != 0 {
			t.Fatalf("undecided transaction committed on %v", on)
		}
		// Settled decisions are deleted.
		var left int
		if err := direct[0].QueryRow(ctx, "SELECT count(*) FROM tiergate.twophase_decisions WHERE gid LIKE 'tg2pc_dead0001%'").Scan(&left); err != nil || left != 0 {
			t.Fatalf("decisions left: %d %v", left, err)
		}
		p2.stop()
	})

	t.Run("copy", func(t *testing.T) {
		// Binary (pgx.CopyFrom).
		var rows [][]any
		for i := int64(0); i < 300; i++ {
			rows = append(rows, []any{200000 + i, i, "copy", fmt.Sprint("b", i)})
		}
		cnt, err := conn.CopyFrom(ctx, pgx.Identifier{"posts"}, []string{"user_id", "post_id", "author", "body"}, pgx.CopyFromRows(rows))
		if err != nil || cnt != 300 {
			t.Fatalf("binary copy: %d %v", cnt, err)
		}
		// Text and CSV (pgconn.CopyFrom with a reader).
		var text, csv strings.Builder
		for i := int64(0); i < 200; i++ {
			fmt.Fprintf(&text, "%d\t%d\tcopy\tt\\t%d\n", 300000+i, i, i)
			fmt.Fprintf(&csv, "\"%d\",%d,copy,\"c,\"\"%d\"\"\nline2\"\n", 400000+i, i, i)
		}
		tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(text.String()), "COPY posts (user_id, post_id, author, body) FROM STDIN")
		if err != nil || tag.RowsAffected() != 200 {
			t.Fatalf("text copy: %v %v", tag, err)
		}
		tag, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("user_id,post_id,author,body\n"+csv.String()), "COPY posts (user_id, post_id, author, body) FROM STDIN (FORMAT csv, HEADER)")
		if err != nil || tag.RowsAffected() != 200 {
			t.Fatalf("csv copy: %v %v", tag, err)
		}
		for _, base := range []int64{200000, 300000, 400000} {
			for _, k := range []int64{base, base + 7, base + 199} {
				if on := onShards(t, ctx, direct, "SELECT 1 FROM posts WHERE user_id = $1", k); !slices.Equal(on, []int{shardOf(k)}) {
					t.Fatalf("copied key %d on %v, want [%d]", k, on, shardOf(k))
				}
			}
		}
		var body string
		if err := conn.QueryRow(ctx, "SELECT body FROM posts WHERE user_id = $1", int64(400005)).Scan(&body); err != nil || body != "c,\"5\"\nline2" {
			t.Fatalf("csv body %q %v", body, err)
		}
		if err := conn.QueryRow(ctx, "SELECT body FROM posts WHERE user_id = $1", int64(300005)).Scan(&body); err != nil || body != "t\t5" {
			t.Fatalf("text body %q %v", body, err)
		}
		var total int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts WHERE author = 'copy'").Scan(&total); err != nil || total != 700 {
			t.Fatalf("copied rows: %d %v", total, err)
		}
		// A reference table gets every row on every shard.
		tag, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("copy-a\t1\ncopy-b\t2\n"), "COPY usernames (name, user_id) FROM STDIN")
		if err != nil || tag.RowsAffected() != 2 {
			t.Fatalf("reference copy: %v %v", tag, err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM usernames WHERE name = 'copy-b'"); len(on) != n {
			t.Fatalf("reference copy on %v", on)
		}
		// COPY ... TO STDOUT from every shard: one stream.
		var outText, outCSV bytes.Buffer
		tag, err = conn.PgConn().CopyTo(ctx, &outText, "COPY (SELECT user_id, body FROM posts WHERE author = 'copy') TO STDOUT")
		if err != nil || tag.RowsAffected() != 700 || strings.Count(outText.String(), "\n") != 700 {
			t.Fatalf("copy to: %v %v (%d lines)", tag, err, strings.Count(outText.String(), "\n"))
		}
		tag, err = conn.PgConn().CopyTo(ctx, &outCSV, "COPY posts (user_id, post_id) TO STDOUT (FORMAT csv, HEADER)")
		if err != nil || strings.Count(outCSV.String(), "user_id,post_id\n") != 1 || strings.Count(outCSV.String(), "\n") != int(tag.RowsAffected())+1 {
			t.Fatalf("csv copy to: %v %v\n%.200s", tag, err, outCSV.String())
		}
		// ... and in the binary format, read back by COPY FROM into a
		// reference table's shape: pgx reads the stream as one.
		if _, err := conn.Exec(ctx, "CREATE TABLE copyback (user_id bigint, post_id bigint)"); err != nil {
			t.Fatal(err)
		}
		var bin bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &bin, "COPY posts (user_id, post_id) TO STDOUT (FORMAT binary)"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.PgConn().CopyFrom(ctx, &bin, "COPY copyback FROM STDIN (FORMAT binary)"); err != nil {
			t.Fatalf("binary stream read back: %v", err)
		}
		var back, all int
		if err := direct[0].QueryRow(ctx, "SELECT count(*) FROM copyback").Scan(&back); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts").Scan(&all); err != nil || back != all {
			t.Fatalf("binary copy to: %d rows read back, %d posts (%v)", back, all, err)
		}
		// A bad key fails the whole COPY (two-phase: nothing lands).
		_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("500000\t1\tbad\tx\nnot-a-number\t2\tbad\ty\n"), "COPY posts (user_id, post_id, author, body) FROM STDIN")
		if !isPgCode(err, "22023") {
			t.Fatalf("bad key: %v", err)
		}
		if on := onShards(t, ctx, direct, "SELECT 1 FROM posts WHERE author = 'bad'"); len(on) != 0 {
			t.Fatalf("failed COPY left rows on %v", on)
		}
		if prepared() != 0 {
			t.Fatal("prepared transactions left behind")
		}
		// The session still works.
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts WHERE user_id = 200001").Scan(&total); err != nil || total != 1 {
			t.Fatal(total, err)
		}
	})
}

// boolKey keeps the keys of two in-doubt transactions apart (a prepared
// insert holds its key's lock).
func boolKey(b bool) int64 {
	if b {
		return 0
	}
	return 1000000
}
