package sqlroute

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tiergate/tiergate/shardmap"
)

// webappMap is the example web app's sharding: users, posts and sessions
// by user_id in one key space over three shards, usernames a reference
// table.
func webappMap(t testing.TB, shards int) *shardmap.Map {
	t.Helper()
	cfg := shardmap.Config{
		Version:   1,
		Shards:    shardmap.Shards{Count: shards},
		KeySpaces: []shardmap.KeySpaceConfig{{Name: "users", FunctionConfig: shardmap.FunctionConfig{Type: "bigint", Function: "hash"}}},
		Tables: []shardmap.TableConfig{
			{Table: "users", Column: "user_id", KeySpace: "users"},
			{Table: "posts", Column: "user_id", KeySpace: "users"},
			{Table: "sessions", Column: "user_id", KeySpace: "users"},
			{Table: "events", Column: "region", FunctionConfig: shardmap.FunctionConfig{Type: "text", Function: "list",
				List: []shardmap.ListConfig{{Values: []string{"eu"}, Shard: "0"}, {Values: []string{"us"}, Shard: "1"}}, Default: shardmap.ShardRef(formatInt(int64(shards - 1)))}},
		},
		ReferenceTables: []string{"usernames"},
	}
	cfg.SetDefaults()
	m, err := shardmap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testRouter is a ShardRouter with the Classifier its decisions come from.
type testRouter struct {
	*ShardRouter
	c *Classifier
}

func newTestRouter(t testing.TB, shards int, opts ShardOptions) testRouter {
	t.Helper()
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewShardRouter(webappMap(t, shards), opts)
	if err != nil {
		t.Fatal(err)
	}
	return testRouter{r, c}
}

func shardOf(t testing.TB, r testRouter, key int64) int {
	t.Helper()
	s, err := r.m.ShardFor("users", shardmap.Int64Key(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keysOn returns n distinct keys on shard s, and one key on another shard.
func keysOn(t testing.TB, r testRouter, s, n int) (on []int64, other int64) {
	t.Helper()
	for k := int64(1); len(on) < n || other == 0; k++ {
		if shardOf(t, r, k) == s {
			if len(on) < n {
				on = append(on, k)
			}
		} else if other == 0 {
			other = k
		}
	}
	return on, other
}

func int8Param(v int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(v))
	return b
}

func route(t testing.TB, r testRouter, sql string, args *ShardArgs) (ShardRoute, error) {
	t.Helper()
	d, err := r.c.Classify(sql)
	if err != nil {
		t.Fatalf("Classify(%q): %v", sql, err)
	}
	return r.Route(sql, &d, args)
}

func TestShardRouteSingle(t *testing.T) {
	r := newTestRouter(t, 3, ShardOptions{})
	on, other := keysOn(t, r, 1, 3)
	k, k2, k3 := on[0], on[1], on[2]
	s := shardOf(t, r, k)
	itoa := func(v int64) string { return strings.TrimSpace(strings.Repeat(" ", 0) + formatInt(v)) }
	bound := func(vals ...int64) *ShardArgs {
		a := &ShardArgs{Bound: true, Formats: []int16{1}}
		for _, v := range vals {
			a.Params = append(a.Params, int8Param(v))
		}
		return a
	}
	tests := []struct {
		sql  string
		args *ShardArgs
	}{
		{"SELECT * FROM users WHERE user_id = " + itoa(k), nil},
		{"SELECT * FROM users WHERE user_id = '" + itoa(k) + "'", nil},
		{"SELECT * FROM users WHERE user_id = " + itoa(k) + "::bigint AND name = 'x'", nil},
		{"SELECT * FROM users u WHERE u.user_id = $1", bound(k)},
		{"SELECT * FROM users u WHERE name = $2 AND (u.user_id = $1 AND true)", &ShardArgs{Bound: true, Params: [][]byte{[]byte(itoa(k)), []byte("x")}}},
		{"SELECT * FROM users WHERE user_id IN (" + itoa(k) + ", " + itoa(k2) + ", " + itoa(k3) + ")", nil},
		{"SELECT * FROM users WHERE user_id IN ($1, $2)", bound(k, k2)},
		{"SELECT * FROM users WHERE user_id = ANY($1)", &ShardArgs{Bound: true, Params: [][]byte{[]byte("{" + itoa(k) + "," + itoa(k2) + "}")}}},
		{"SELECT u.name, u.created_at FROM sessions s JOIN users u ON u.user_id = s.user_id WHERE s.user_id = $1 AND u.user_id = $1 AND s.token_hash = $2 AND s.expires_at > now()", &ShardArgs{Bound: true, Params: [][]byte{[]byte(itoa(k)), []byte("\\x00")}}},
		{"SELECT * FROM sessions s JOIN users u ON u.user_id = s.user_id WHERE s.user_id = $1", bound(k)},
		{"SELECT * FROM posts JOIN users USING (user_id) WHERE posts.user_id = $1", bound(k)},
		{"SELECT * FROM posts p JOIN usernames n ON n.user_id = p.user_id WHERE p.user_id = " + itoa(k), nil},
		{"SELECT user_id, post_id, author, body, created_at FROM posts WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50", bound(k)},
		{"SELECT count(*) FROM posts WHERE user_id = $1 AND post_id IN (SELECT post_id FROM posts WHERE user_id = $1)", bound(k)},
		{"INSERT INTO users (user_id, name, password_hash) VALUES ($1, $2, $3)", &ShardArgs{Bound: true, Params: [][]byte{[]byte(itoa(k)), []byte("n"), []byte("h")}}},
		{"INSERT INTO posts (author, user_id) VALUES ('a', " + itoa(k) + "), ('b', " + itoa(k2) + ")", nil},
		{"INSERT INTO posts (user_id, author) VALUES (" + itoa(k) + ", 'a') RETURNING post_id", nil},
		{"UPDATE users SET name = 'x' WHERE user_id = " + itoa(k), nil},
		{"UPDATE users SET user_id = " + itoa(k2) + " WHERE user_id = " + itoa(k), nil},
		{"DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now()", bound(k)},
		{"DELETE FROM sessions WHERE user_id = $1 AND token_hash = $2", &ShardArgs{Bound: true, Formats: []int16{1, 1}, Params: [][]byte{int8Param(k), {1, 2}}}},
		{"/* tiergate: shard=" + formatInt(int64(s)) + " */ SELECT * FROM posts", nil},
		{"SELECT * FROM posts /* tiergate: shard_key=" + itoa(k) + " */", nil},
		{"SELECT pg_backend_pid()", &ShardArgs{Shard: formatInt(int64(s))}},
		{"SELECT * FROM posts", &ShardArgs{Key: itoa(k)}},
	}
	for _, tc := range tests {
		got, err := route(t, r, tc.sql, tc.args)
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		if got.Shard != s || got.Any || len(got.Shards) > 0 {
			t.Errorf("%s: got shard %d any=%v shards=%v (%s), want shard %d", tc.sql, got.Shard, got.Any, got.Shards, got.Reason, s)
		}
	}
	// The same shape with another literal: another shard.
	got, err := route(t, r, "SELECT * FROM users WHERE user_id = "+itoa(other), nil)
	if err != nil || got.Shard != shardOf(t, r, other) {
		t.Errorf("other key: %+v %v", got, err)
	}
	// A negative key.
	got, err = route(t, r, "SELECT * FROM users WHERE user_id = -7", nil)
	if err != nil || got.Shard != shardOf(t, r, -7) {
		t.Errorf("negative key: %+v %v, want %d", got, err, shardOf(t, r, -7))
	}
	got, err = route(t, r, "SELECT * FROM users WHERE user_id =  -7 ", nil)
	if err != nil || got.Shard != shardOf(t, r, -7) {
		t.Errorf("negative key (pgx spacing): %+v %v", got, err)
	}
	// A list key of another table.
	got, err = route(t, r, "SELECT * FROM events WHERE region = 'us'", nil)
	if err != nil || got.Shard != 1 {
		t.Errorf("list key: %+v %v", got, err)
	}
	got, err = route(t, r, "SELECT * FROM events WHERE region = E'e\\x75'", nil)
	if err != nil || got.Shard != 0 {
		t.Errorf("escaped list key: %+v %v", got, err)
	}
}

func formatInt(v int64) string {
	return strings.TrimSpace(strings.Replace(string(appendInt(nil, v)), "+", "", 1))
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

func TestShardRouteMulti(t *testing.T) {
	r := newTestRouter(t, 3, ShardOptions{})
	on, other := keysOn(t, r, 0, 2)
	all := []int{0, 1, 2}
	tests := []struct {
		sql    string
		args   *ShardArgs
		any    bool
		shards []int
		merge  bool
		err    error
	}{
		{sql: "SELECT * FROM usernames WHERE name = 'x'", any: true},
		{sql: "SELECT 1", any: true},
		{sql: "SELECT now(), pg_backend_pid()", any: true},
		{sql: "SET search_path = public", any: true},
		{sql: "BEGIN", any: true},
		{sql: "SELECT user_id, post_id, author, body, created_at FROM posts ORDER BY created_at DESC LIMIT 50", shards: all, merge: true},
		{sql: "SELECT * FROM posts", shards: all, merge: true},
		{sql: "SELECT count(*) FROM users", shards: all, merge: true},
		{sql: "SELECT user_id, count(*) FROM posts GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 3", shards: all, merge: true},
		{sql: "SELECT * FROM posts WHERE user_id IN (" + formatInt(on[0]) + ", " + formatInt(other) + ")", shards: []int{0, shardOf(t, r, other)}, merge: true},
		{sql: "SELECT * FROM posts WHERE user_id IN (" + formatInt(on[0]) + ", " + formatInt(on[1]) + ")", shards: []int{0}},
		{sql: "SELECT * FROM posts p JOIN users u ON u.user_id = p.user_id", shards: all, merge: true},
		{sql: "SELECT * FROM users WHERE user_id = NULL", any: true},
		{sql: "EXPLAIN SELECT * FROM posts", shards: all},
		{sql: "INSERT INTO usernames (name, user_id) VALUES ($1, $2)", args: &ShardArgs{Bound: true, Params: [][]byte{[]byte("a"), []byte("1")}}, shards: all},
		{sql: "DELETE FROM usernames WHERE name = $1", shards: all},
		{sql: "DELETE FROM sessions WHERE expires_at < now()", shards: all},
		{sql: "CREATE TABLE IF NOT EXISTS t (a int)", shards: all},
		{sql: "CREATE INDEX ON posts (created_at)", shards: all},
		{sql: "TRUNCATE posts", shards: all},
		{sql: "COPY posts (user_id, body) FROM STDIN", shards: all},
		{sql: "COPY usernames FROM STDIN", shards: all},
		{sql: "COPY posts TO STDOUT", shards: all},
		{sql: "COPY (SELECT user_id, body FROM posts WHERE post_id > 3) TO STDOUT (FORMAT csv, HEADER)", shards: all},
		{sql: "COPY (SELECT * FROM posts ORDER BY user_id) TO STDOUT", err: ErrCrossShard},
		{sql: "COPY posts TO '/tmp/x'", err: ErrCrossShard},

		{sql: "SELECT row_number() OVER () FROM posts", err: ErrCrossShard},
		{sql: "SELECT * FROM posts p JOIN users u ON u.name = p.author", err: ErrCrossShard},
		{sql: "SELECT * FROM posts WHERE user_id IN (SELECT user_id FROM users WHERE name = 'x')", err: ErrCrossShard},
		{sql: "SELECT author FROM posts ORDER BY created_at", err: ErrCrossShard},
		{sql: "SELECT user_id, count(*) FROM posts GROUP BY user_id HAVING count(*) > 1", err: ErrCrossShard},
		{sql: "SELECT count(DISTINCT author) FROM posts", err: ErrCrossShard},
		{sql: "SELECT string_agg(body, ',') FROM posts", err: ErrCrossShard},
		{sql: "SELECT * FROM posts UNION ALL SELECT * FROM posts", err: ErrCrossShard},
		{sql: "UPDATE users SET user_id = " + formatInt(other) + " WHERE user_id = " + formatInt(on[0]), err: ErrShardKeyUpdate},
		{sql: "UPDATE users SET user_id = 5", err: ErrShardKeyUpdate},
		{sql: "INSERT INTO users (name) VALUES ('x')", err: ErrShardKey},
		{sql: "INSERT INTO users VALUES (1, 'x')", err: ErrShardKey},
		{sql: "INSERT INTO users (user_id) VALUES (NULL)", err: ErrShardKey},
		{sql: "INSERT INTO users (user_id) SELECT 1", err: ErrCrossShard},
		{sql: "INSERT INTO users (user_id) VALUES (random())", err: ErrShardKey},
		{sql: "INSERT INTO usernames (name, user_id) SELECT name, user_id FROM users", err: ErrCrossShard},
		{sql: "SELECT * FROM users WHERE user_id = 'abc'", err: ErrShardKey},
		{sql: "/* tiergate: shard=9 */ SELECT 1", err: ErrShardKey},
		{sql: "COPY posts FROM STDIN", err: ErrShardKey},
		{sql: "SELECT 1 FROM users WHERE user_id = 1; SELECT * FROM posts", err: ErrCrossShard},
		{sql: "CREATE TABLE IF NOT EXISTS a (x int); CREATE INDEX IF NOT EXISTS ai ON a (x); SET x = 1; INSERT INTO usernames VALUES ('a', 1)", shards: all},
		{sql: "CREATE TABLE a (x int); SELECT * FROM users WHERE user_id = 1", err: ErrCrossShard},
	}
	for _, tc := range tests {
		got, err := route(t, r, tc.sql, tc.args)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.sql, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		switch {
		case tc.any:
			if !got.Any {
				t.Errorf("%s: %+v, want any shard", tc.sql, got)
			}
		case len(tc.shards) == 1:
			if got.Shard != tc.shards[0] {
				t.Errorf("%s: %+v, want shard %d", tc.sql, got, tc.shards[0])
			}
		default:
			want := slices.Clone(tc.shards)
			slices.Sort(want)
			if !slices.Equal(got.Shards, want) || (got.Merge != nil) != tc.merge {
				t.Errorf("%s: shards %v merge %v, want %v merge %v", tc.sql, got.Shards, got.Merge != nil, want, tc.merge)
			}
		}
	}
}

func TestShardRouteUnsafeAllowed(t *testing.T) {
	r := newTestRouter(t, 2, ShardOptions{AllowUnsafe: true})
	got, err := route(t, r, "SELECT row_number() OVER () FROM posts", nil)
	if err != nil || !got.Unsafe || got.Merge != nil || len(got.Shards) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestShardRouteMergePlans(t *testing.T) {
	r := newTestRouter(t, 2, ShardOptions{})
	tests := []struct {
		sql  string
		args *ShardArgs
		want Merge
	}{
		{"SELECT a, created_at FROM posts ORDER BY created_at DESC LIMIT 50", nil,
			Merge{Sort: []SortKey{{Col: 1, Name: "", Desc: true, NullsFirst: true}}, Limit: 50, Visible: -1}},
		{"SELECT a, b FROM posts ORDER BY 2, a DESC NULLS LAST LIMIT 5 OFFSET 10", nil,
			Merge{SQL: "SELECT a, b FROM posts ORDER BY 2, a DESC NULLS LAST LIMIT 5::bigint + 10::bigint", Sort: []SortKey{{Col: 1}, {Col: 0, Desc: true}}, Limit: 5, Offset: 10, Visible: -1}},
		{"SELECT * FROM posts ORDER BY created_at LIMIT $1 OFFSET $2", &ShardArgs{Bound: true, Params: [][]byte{[]byte("3"), []byte("4")}},
			Merge{SQL: "SELECT * FROM posts ORDER BY created_at LIMIT $1::bigint + $2::bigint", Sort: []SortKey{{Col: -1, Name: "created_at"}}, Limit: 3, Offset: 4, Visible: -1}},
		{"SELECT user_id, count(*), avg(post_id) AS a, sum(x) FROM posts GROUP BY user_id ORDER BY 2 DESC LIMIT 3", nil,
			Merge{SQL: "SELECT user_id, count(*), sum(post_id) AS a, sum(x), count(post_id) AS tg_count_2 FROM posts GROUP BY user_id ORDER BY 2 DESC",
				Sort: []SortKey{{Col: 1, Desc: true, NullsFirst: true}}, Group: true, GroupCols: []int{0},
				Aggs: []Agg{AggNone, AggCount, AggAvg, AggSum}, AvgCount: map[int]int{2: 4}, Limit: 3, Visible: 4}},
		{"SELECT DISTINCT author FROM posts ORDER BY author", nil,
			Merge{Sort: []SortKey{{Col: 0}}, Distinct: true, Limit: -1, Visible: -1}},
		{"SELECT max(created_at), min(post_id) FROM posts", nil,
			Merge{Group: true, Aggs: []Agg{AggMax, AggMin}, Limit: -1, Visible: -1}},
	}
	for _, tc := range tests {
		got, err := route(t, r, tc.sql, tc.args)
		if err != nil || got.Merge == nil {
			t.Errorf("%s: %+v %v", tc.sql, got, err)
			continue
		}
		if !mergeEqual(*got.Merge, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.sql, *got.Merge, tc.want)
		}
	}
}

func mergeEqual(a, b Merge) bool {
	if len(a.AvgCount) != len(b.AvgCount) {
		return false
	}
	for k, v := range a.AvgCount {
		if b.AvgCount[k] != v {
			return false
		}
	}
	return a.SQL == b.SQL && slices.Equal(a.Sort, b.Sort) && a.Group == b.Group && slices.Equal(a.GroupCols, b.GroupCols) &&
		slices.Equal(a.Aggs, b.Aggs) && a.Distinct == b.Distinct && a.Limit == b.Limit && a.Offset == b.Offset && a.Visible == b.Visible
}

func TestShardRouteInsertSplit(t *testing.T) {
	r := newTestRouter(t, 3, ShardOptions{})
	a, b := int64(0), int64(0)
	for k := int64(1); a == 0 || b == 0; k++ {
		switch shardOf(t, r, k) {
		case 0:
			if a == 0 {
				a = k
			}
		case 2:
			if b == 0 {
				b = k
			}
		}
	}
	sql := "INSERT INTO posts (user_id, post_id, body) VALUES ($1, 1, $2), ($3, 2, $4), ($5, 3, 'x') RETURNING post_id"
	args := &ShardArgs{Bound: true, Params: [][]byte{[]byte(formatInt(a)), []byte("p"), []byte(formatInt(b)), []byte("q"), []byte(formatInt(a))}}
	got, err := route(t, r, sql, args)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Shards, []int{0, 2}) || len(got.Inserts) != 2 {
		t.Fatalf("%+v", got)
	}
	want := []ShardInsert{
		{Shard: 0, SQL: "INSERT INTO posts (user_id, post_id, body) VALUES ($1, 1, $2), ($3, 3, 'x') RETURNING post_id", Params: []int{1, 2, 5}},
		{Shard: 2, SQL: "INSERT INTO posts (user_id, post_id, body) VALUES ($1, 2, $2) RETURNING post_id", Params: []int{3, 4}},
	}
	for i, w := range want {
		g := got.Inserts[i]
		if g.Shard != w.Shard || g.SQL != w.SQL || !slices.Equal(g.Params, w.Params) {
			t.Errorf("part %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestShardRouteReshape(t *testing.T) {
	// The cached shape was built for a three-element row; the same digest
	// with a longer literal run before the key must still find the key.
	r := newTestRouter(t, 3, ShardOptions{})
	on, _ := keysOn(t, r, 2, 1)
	if _, err := route(t, r, "INSERT INTO posts (post_id, body, user_id) VALUES (1, 'a', 5)", nil); err != nil {
		t.Fatal(err)
	}
	got, err := route(t, r, "INSERT INTO posts (post_id, body, user_id) VALUES (1, 'a', "+formatInt(on[0])+")", nil)
	if err != nil || got.Shard != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	got, err = route(t, r, "SELECT * FROM posts WHERE post_id IN (1, 2, 3) AND user_id = "+formatInt(on[0]), nil)
	if err != nil || got.Shard != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	got, err = route(t, r, "SELECT * FROM posts WHERE post_id IN (1, 2, 3, 4, 5) AND user_id = "+formatInt(on[0]), nil)
	if err != nil || got.Shard != 2 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestShardRouteExplainDetail(t *testing.T) {
	r := newTestRouter(t, 2, ShardOptions{})
	got, err := route(t, r, "SELECT * FROM users WHERE user_id = 42", &ShardArgs{Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Detail, "users.user_id") || !strings.Contains(got.Detail, "shard") {
		t.Errorf("detail %q", got.Detail)
	}
}

func BenchmarkShardRoute(b *testing.B) {
	r := newTestRouter(b, 3, ShardOptions{})
	for _, bc := range []struct {
		name, sql string
		args      *ShardArgs
	}{
		{"param", "SELECT abalance FROM users WHERE user_id = $1", &ShardArgs{Bound: true, Formats: []int16{1}, Params: [][]byte{int8Param(12345)}}},
		{"literal", "SELECT abalance FROM users WHERE user_id = 12345", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, _ := r.c.Classify(bc.sql)
			b.ReportAllocs()
			for b.Loop() {
				d, _ = r.c.Classify(bc.sql)
				if _, err := r.Route(bc.sql, &d, bc.args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestShardSettings(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sql  string
		want ProxySetting
	}{
		{"SET tiergate.shard_key = 'Abc'", ProxySetting{Name: SettingShardKey, Value: "Abc"}},
		{"SET tiergate.shard_key TO 42", ProxySetting{Name: SettingShardKey, Value: "42"}},
		{"SET LOCAL tiergate.shard TO s2", ProxySetting{Name: SettingShard, Value: "s2", Local: true}},
		{"SET tiergate.shard = DEFAULT", ProxySetting{Name: SettingShard}},
		{"RESET tiergate.shard", ProxySetting{Name: SettingShard}},
		{"SHOW tiergate.shard_key", ProxySetting{Name: SettingShardKey, Show: true}},
	}
	for _, tc := range tests {
		d, err := c.Classify(tc.sql)
		if err != nil || !d.Has(FlagProxySetting) || d.Setting != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.sql, d.Setting, err, tc.want)
		}
	}
	if _, err := c.Classify("SET tiergate.shard = 1, 2"); !errors.Is(err, ErrProxySetting) {
		t.Errorf("bad value: %v", err)
	}
}
