package pgproxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/shardmap"
)

// diffSchema extends the web app's tables with one that has a column of
// every type the merger combines.
const diffSchema = webappSchema + `
CREATE TABLE items (user_id bigint NOT NULL, id bigint NOT NULL, grp text NOT NULL, n int, big bigint,
  price numeric(10,2), f float8, t timestamptz, d date, flag bool, note text, PRIMARY KEY (user_id, id));
CREATE TABLE colors (grp text PRIMARY KEY, color text NOT NULL);
`

func diffSharding(n int) *shardmap.Config {
	c := webappSharding(n)
	c.Tables = append(c.Tables, shardmap.TableConfig{Table: "items", Column: "user_id", KeySpace: "users"})
	c.ReferenceTables = append(c.ReferenceTables, "colors")
	return c
}

// diffData generates the rows every database of the test gets.
type diffData struct {
	users  [][]any
	posts  [][]any
	items  [][]any
	colors [][]any
}

func makeDiffData() *diffData {
	r := rand.New(rand.NewPCG(1, 2))
	d := &diffData{}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for u := int64(1); u <= 120; u++ {
		d.users = append(d.users, []any{u, fmt.Sprintf("user%03d", u), "hash", base.Add(time.Duration(u) * time.Minute)})
		for p := int64(1); p <= int64(r.IntN(6)); p++ {
			d.posts = append(d.posts, []any{u, p, fmt.Sprintf("user%03d", u), fmt.Sprintf("post %d of %d", p, u), base.Add(time.Duration(r.IntN(100000)) * time.Second)})
		}
	}
	grps := []string{"a", "b", "c", "d", "e"}
	for _, g := range grps[:4] {
		d.colors = append(d.colors, []any{g, "color-" + g})
	}
	for id := int64(1); id <= 1500; id++ {
		u := int64(1 + r.IntN(120))
		var n, big, price, f, ts, dt, flag, note any
		if r.IntN(10) > 0 {
			n = int32(r.IntN(200) - 50)
		}
		if r.IntN(10) > 0 {
			big = int64(r.IntN(1_000_000_000)) * 1000
		}
		if r.IntN(10) > 0 {
			price = fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))
		}
		if r.IntN(10) > 0 {
			f = float64(r.IntN(4000)-1000) / 4 // exact in binary: sums do not depend on order
		}
		if r.IntN(10) > 0 {
			ts = base.Add(time.Duration(r.IntN(1_000_000)) * time.Second)
		}
		if r.IntN(10) > 0 {
			dt = time.Date(2026, 1, 1+r.IntN(60), 0, 0, 0, 0, time.UTC)
		}
		if r.IntN(10) > 0 {
			flag = r.IntN(2) == 0
		}
		if r.IntN(3) > 0 {
			note = fmt.Sprintf("note %c%d", 'A'+r.IntN(26), r.IntN(50))
		}
		d.items = append(d.items, []any{u, id, grps[r.IntN(len(grps))], n, big, price, f, ts, dt, flag, note})
	}
	return d
}

var diffColumns = map[string][]string{
	"users":  {"user_id", "name", "password_hash", "created_at"},
	"posts":  {"user_id", "post_id", "author", "body", "created_at"},
	"items":  {"user_id", "id", "grp", "n", "big", "price", "f", "t", "d", "flag", "note"},
	"colors": {"grp", "color"},
}

// load copies the rows into conn; with m set only the rows of shard s
// (reference tables whole).
func (d *diffData) load(t testing.TB, ctx context.Context, conn *pgx.Conn, m *shardmap.Map, s int) {
	t.Helper()
	for table, rows := range map[string][][]any{"users": d.users, "posts": d.posts, "items": d.items, "colors": d.colors} {
		var mine [][]any
		for _, row := range rows {
			if m != nil && table != "colors" {
				k, err := m.ShardFor(table, shardmap.Int64Key(row[0].(int64)))
				if err != nil {
					t.Fatal(err)
				}
				if k != s {
					continue
				}
			}
			mine = append(mine, row)
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, diffColumns[table], pgx.CopyFromRows(mine)); err != nil {
			t.Fatalf("copy %s: %v", table, err)
		}
	}
}

// diffQuery is one query of the differential test; ordered means the
// result order is fully determined (else rows compare as a multiset).
type diffQuery struct {
	sql     string
	args    []any
	ordered bool
}

var diffQueries = []diffQuery{
	// Concatenation and ORDER BY (k-way merge), LIMIT/OFFSET.
	{"SELECT user_id, id, n FROM items", nil, false},
	{"SELECT * FROM items ORDER BY id", nil, true},
	{"SELECT * FROM items ORDER BY id LIMIT 10", nil, true},
	{"SELECT id, grp FROM items ORDER BY id DESC LIMIT 10 OFFSET 5", nil, true},
	{"SELECT id, n FROM items ORDER BY n, id", nil, true},
	{"SELECT id, n FROM items ORDER BY n DESC NULLS LAST, id LIMIT 40", nil, true},
	{"SELECT id, n FROM items ORDER BY n NULLS FIRST, id DESC LIMIT 40", nil, true},
	{"SELECT id, price FROM items ORDER BY price, id", nil, true},
	{"SELECT id, f FROM items ORDER BY f DESC, id LIMIT 25", nil, true},
	{"SELECT id, t FROM items ORDER BY t, id LIMIT 20", nil, true},
	{"SELECT id, d FROM items ORDER BY d DESC NULLS LAST, id LIMIT 20 OFFSET 3", nil, true},
	{"SELECT id, note FROM items ORDER BY note NULLS FIRST, id", nil, true},
	{"SELECT grp, n, id FROM items ORDER BY grp, n DESC, id LIMIT 15", nil, true},
	{"SELECT id, flag FROM items ORDER BY flag, id", nil, true},
	{"SELECT user_id, id, big FROM items ORDER BY 3, 2 LIMIT 30", nil, true},
	{"SELECT id AS item, n AS qty FROM items ORDER BY qty DESC NULLS LAST, item LIMIT 12", nil, true},
	{"SELECT id, n FROM items WHERE n > $1 ORDER BY id LIMIT $2", []any{100, 20}, true},
	{"SELECT id, n FROM items WHERE n > $1 ORDER BY id LIMIT $2 OFFSET $3", []any{0, 20, 7}, true},
	{"SELECT id FROM items ORDER BY id OFFSET 1490", nil, true},
	{"SELECT id FROM items ORDER BY id LIMIT 0", nil, true},
	{"SELECT * FROM items WHERE user_id IN (1, 2, 3, 50, 77) ORDER BY id", nil, true},
	{"SELECT * FROM items WHERE user_id = ANY($1) ORDER BY id", []any{[]int64{4, 8, 15, 16, 23, 42}}, true},
	{"SELECT id, note FROM items WHERE note IS NULL ORDER BY id", nil, true},
	{"SELECT user_id, post_id, author, body, created_at FROM posts ORDER BY created_at DESC LIMIT 50", nil, true},
	{"SELECT i.id, u.name FROM items i JOIN users u ON u.user_id = i.user_id ORDER BY i.id LIMIT 30", nil, true},
	{"SELECT i.id, c.color FROM items i JOIN colors c ON c.grp = i.grp ORDER BY i.id DESC LIMIT 30", nil, true},
	{"SELECT p.post_id, u.name FROM posts p JOIN users u USING (user_id) WHERE p.post_id = 1 ORDER BY u.name", nil, true},
	// Aggregates.
	{"SELECT count(*) FROM items", nil, true},
	{"SELECT count(note), count(n), count(*) FROM items", nil, true},
	{"SELECT sum(n), sum(big), sum(price), sum(f) FROM items", nil, true},
	{"SELECT min(n), max(n), min(big), max(big), min(price), max(price) FROM items", nil, true},
	{"SELECT min(f), max(f), min(t), max(t), min(d), max(d), min(note), max(note) FROM items", nil, true},
	{"SELECT avg(n), avg(big), avg(price), avg(f) FROM items", nil, true},
	{"SELECT avg(n) AS mean, count(*) FROM items WHERE grp = $1", []any{"c"}, true},
	{"SELECT sum(n), avg(price), max(t) FROM items WHERE n < -1000", nil, true},
	{"SELECT count(*) FROM items WHERE grp = 'a' AND flag", nil, true},
	{"SELECT count(*), sum(n) FROM posts p JOIN items i ON i.user_id = p.user_id AND i.id = p.post_id", nil, true},
	// GROUP BY.
	{"SELECT grp, count(*), sum(n), avg(n), min(price), max(price) FROM items GROUP BY grp ORDER BY grp", nil, true},
	{"SELECT grp, flag, count(*) FROM items GROUP BY grp, flag ORDER BY 1, 2", nil, true},
	{"SELECT grp, flag, count(*) FROM items GROUP BY 1, 2", nil, false},
	{"SELECT user_id, count(*) FROM items GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 10", nil, true},
	{"SELECT user_id, count(*) FROM items GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 10 OFFSET 4", nil, true},
	{"SELECT d, count(*), avg(f) FROM items GROUP BY d ORDER BY d NULLS FIRST", nil, true},
	{"SELECT grp, sum(big), avg(big) FROM items GROUP BY grp ORDER BY sum(big) DESC", nil, true},
	{"SELECT user_id, max(price) AS top FROM items GROUP BY user_id ORDER BY top DESC NULLS LAST, user_id LIMIT 5", nil, true},
	{"SELECT flag, min(t), max(note) FROM items GROUP BY flag ORDER BY flag NULLS FIRST", nil, true},
	{"SELECT n, count(*) FROM items WHERE n BETWEEN $1 AND $2 GROUP BY n ORDER BY n", []any{-10, 10}, true},
	{"SELECT grp, 'const' AS k, count(*) FROM items GROUP BY grp ORDER BY grp", nil, true},
	{"SELECT u.name, count(*) FROM users u JOIN posts p ON p.user_id = u.user_id GROUP BY u.name ORDER BY 2 DESC, 1 LIMIT 8", nil, true},
	// DISTINCT.
	{"SELECT DISTINCT grp FROM items ORDER BY grp", nil, true},
	{"SELECT DISTINCT grp, flag FROM items ORDER BY grp, flag", nil, true},
	{"SELECT DISTINCT n FROM items", nil, false},
	{"SELECT DISTINCT n FROM items ORDER BY n DESC LIMIT 7", nil, true},
	{"SELECT DISTINCT author FROM posts ORDER BY author LIMIT 20 OFFSET 10", nil, true},
	// Reference table and single-shard reads.
	{"SELECT * FROM colors ORDER BY grp", nil, true},
	{"SELECT * FROM items WHERE user_id = $1 ORDER BY id", []any{int64(17)}, true},
	{"SELECT count(*), sum(price) FROM items WHERE user_id = 17", nil, true},
}

func TestShardedDifferential(t *testing.T) {
	cs := shardClusters(t)
	ctx := ctxT(t, 3*time.Minute)
	data := makeDiffData()
	// The reference: every row in one plain database.
	refDB := "diffref"
	_ = shardedTestConfig(t, cs[:1], refDB, 1, nil, diffSchema)
	refConn := shardConn(t, ctx, cs[0], refDB)
	data.load(t, ctx, refConn, nil, 0)
	if len(diffQueries) < 50 {
		t.Fatalf("only %d queries", len(diffQueries))
	}
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d_shards", n), func(t *testing.T) {
			testDifferential(t, ctx, cs, n, data, refConn)
		})
	}
}

func testDifferential(t *testing.T, ctx context.Context, cs []*pgtest.Cluster, n int, data *diffData, ref *pgx.Conn) {
	db := fmt.Sprintf("diff%d", n)
	sharding := diffSharding(n)
	cfg := shardedTestConfig(t, cs, db, n, sharding, diffSchema)
	m := testShardMap(t, sharding)
	for i := 0; i < n; i++ {
		data.load(t, ctx, shardConn(t, ctx, cs[i], db), m, i)
	}
	for _, c := range cs[:n] {
		if err := c.WaitReplayed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p := startProxy(t, cfg)
	p.waitShardReplicas(t, ctx)
	conn := p.connect(t, ctx)
	for _, mode := range execModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, q := range diffQueries {
				args := append([]any{mode.mode}, q.args...)
				want, wcols, err := diffResult(ctx, ref, q, args)
				if err != nil {
					t.Fatalf("reference: %s: %v", q.sql, err)
				}
				got, gcols, err := diffResult(ctx, conn, q, args)
				if err != nil {
					t.Errorf("proxy: %s: %v", q.sql, err)
					continue
				}
				if wcols != gcols {
					t.Errorf("%s: columns\n got %s\nwant %s", q.sql, gcols, wcols)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: %d rows, want %d\n got %s\nwant %s", q.sql, len(got), len(want), headRows(got), headRows(want))
				}
			}
		})
	}
	st := p.srv.rt.Load().sharded["app"].stats
	refusedBefore := st.refused.Load()
	fanouts := st.fanouts.Load()
	t.Run("errors", func(t *testing.T) {
		for _, mode := range execModes {
			// What the merger cannot answer is refused, not answered wrong.
			for _, sql := range []string{
				"SELECT id, row_number() OVER (ORDER BY id) FROM items",
				"SELECT grp, count(*) FROM items GROUP BY grp HAVING count(*) > 10",
				"SELECT count(DISTINCT grp) FROM items",
				"SELECT id FROM items ORDER BY n + 1",
				"SELECT i.id FROM items i JOIN posts p ON p.post_id = i.id",
				"SELECT id FROM items WHERE user_id IN (SELECT user_id FROM users WHERE name = 'user001')",
			} {
				_, err := conn.Exec(ctx, sql, mode.mode)
				if !isPgCode(err, "0A000") {
					t.Errorf("%s: %s: %v, want 0A000", mode.name, sql, err)
				}
			}
			// A shard's error aborts the statement and names the shard.
			var key int64
			for k := int64(1); ; k++ {
				if s, _ := m.ShardFor("items", shardmap.Int64Key(k)); s == n-1 {
					key = k
					break
				}
			}
			_, err := conn.Exec(ctx, "SELECT id / (user_id - $1) FROM items", mode.mode, key)
			want := fmt.Sprintf("shard s%d: division by zero", n-1)
			if !isPgCode(err, "22012") || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: shard error: %v, want 22012 %q", mode.name, err, want)
			}
			var one int
			if err := conn.QueryRow(ctx, "SELECT 1", mode.mode).Scan(&one); err != nil {
				t.Fatalf("%s: after the errors: %v", mode.name, err)
			}
		}
	})
	if st.refused.Load() != refusedBefore+6*int64(len(execModes)) {
		t.Errorf("refused %d, want %d", st.refused.Load()-refusedBefore, 6*len(execModes))
	}
	if fanouts < int64(len(execModes)*45) || refusedBefore != 0 {
		t.Errorf("fan-outs %d, refused %d", fanouts, refusedBefore)
	}
	t.Logf("%d queries × %d protocols: %d fan-outs", len(diffQueries), len(execModes), fanouts)
}

func headRows(rows []string) string {
	if len(rows) > 6 {
		rows = append(rows[:6:6], "...")
	}
	return strings.Join(rows, " | ")
}

// diffResult runs a query and renders its rows (sorted unless ordered)
// and its column names and types.
func diffResult(ctx context.Context, conn *pgx.Conn, q diffQuery, args []any) ([]string, string, error) {
	rows, err := conn.Query(ctx, q.sql, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, "", err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = renderValue(v)
		}
		out = append(out, strings.Join(parts, ","))
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID))
	}
	if !q.ordered {
		slices.Sort(out)
	}
	return out, strings.Join(cols, " "), nil
}

func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case pgtype.Numeric:
		b, _ := x.MarshalJSON()
		return "numeric:" + string(b)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return fmt.Sprintf("%x", x)
	}
	return fmt.Sprint(v)
}

// TestShardedTextOrderCollation: ordering text across shards is refused
// when the database does not sort by bytes (an ICU collation), instead of
// being merged in the wrong order.
func TestShardedTextOrderCollation(t *testing.T) {
	cs := shardClusters(t)
	ctx := ctxT(t, time.Minute)
	for _, c := range cs[:2] {
		p := c.Primary()
		if err := p.Exec(ctx, "DROP DATABASE IF EXISTS icu2 WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx, "CREATE DATABASE icu2 OWNER app LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0"); err != nil {
			t.Skipf("no ICU collations here: %v", err)
		}
		conn, err := pgx.Connect(ctx, p.DSNFor("icu2", "app", appPassword))
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, webappSchema)
		_ = conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := shardedTestConfig(t, cs, "c2", 2, webappSharding(2), "")
	d := cfg.Databases["app"]
	d.ServerDatabase = "icu2"
	cfg.Databases["app"] = d
	p := startProxy(t, cfg)
	conn := p.connect(t, ctx)
	if _, err := conn.Exec(ctx, "SELECT name FROM users ORDER BY name"); !isPgCode(err, "0A000") || !strings.Contains(err.Error(), "C collation") {
		t.Fatalf("text order under ICU: %v", err)
	}
	if _, err := conn.Exec(ctx, "SELECT max(name) FROM users"); !isPgCode(err, "0A000") {
		t.Fatalf("max(text) under ICU: %v", err)
	}
	// Other orders and counts still merge.
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT user_id FROM users ORDER BY user_id"); err != nil {
		t.Fatal(err)
	}
}
