package sqlroute

import (
	"errors"
	"slices"
	"testing"
)

// shardRouteSeeds are statements of the sharded tests.
var shardRouteSeeds = []string{
	"SELECT * FROM users WHERE user_id = 42",
	"SELECT * FROM users WHERE user_id IN (1, 2, 3) AND name = 'x'",
	"SELECT * FROM users WHERE user_id = -7 OR user_id = 8",
	"SELECT u.name FROM sessions s JOIN users u ON u.user_id = s.user_id WHERE s.user_id = 5 AND u.user_id = 5",
	"INSERT INTO posts (user_id, post_id, body) VALUES (1, 2, 'a'), (3, 4, 'b'), (5, 6, 'c')",
	"INSERT INTO users (post_id, body, user_id) VALUES (1, 'a', 99) RETURNING *",
	"UPDATE users SET user_id = 5 WHERE user_id = 6",
	"DELETE FROM sessions WHERE user_id = 3 AND expires_at < now()",
	"SELECT user_id, count(*), avg(post_id) FROM posts GROUP BY 1 ORDER BY 2 DESC LIMIT 3 OFFSET 1",
	"SELECT DISTINCT author FROM posts ORDER BY author LIMIT 10",
	"SELECT * FROM posts WHERE post_id IN (1, 2, 3, 4) AND user_id IN (10, 20)",
	"SELECT * FROM events WHERE region = E'e\\x75'",
	"/* tiergate: shard_key=17 */ SELECT * FROM posts",
	"COPY posts (user_id, body) FROM STDIN",
	"CREATE TABLE t (a int); INSERT INTO usernames VALUES ('a', 1)",
	"SELECT * FROM posts ORDER BY created_at DESC LIMIT 50",
}

// FuzzShardRoute: Classify and Route never panic, and routing a text with
// the cached shape of another text of the same digest (other literal
// values) gives the same route as its own shape: literals are found by
// position, never taken from the analysed text.
func FuzzShardRoute(f *testing.F) {
	for _, s := range shardRouteSeeds {
		f.Add(s)
	}
	r := newTestRouter(f, 3, ShardOptions{})
	f.Fuzz(func(t *testing.T, sql string) {
		var sc scanResult
		if scanSQL(sql, &sc, nil); sc.proxySetting {
			return
		}
		d1 := analyzeFull(r.c, sql)
		v := otherLiterals(sql)
		if Digest(v) != Digest(sql) {
			return
		}
		d2 := analyzeFull(r.c, v)
		if d1.Has(FlagUnparsable) || d2.Has(FlagUnparsable) {
			return
		}
		args := &ShardArgs{Bound: true, Params: [][]byte{[]byte("1"), []byte("2"), []byte("3")}}
		r1, err1 := r.Route(sql, &d1, args)
		r2, err2 := r.Route(sql, &d2, args)
		if (err1 == nil) != (err2 == nil) || (err1 != nil && !errors.Is(err2, errors.Unwrap(err1)) && err1.Error() != err2.Error()) {
			t.Fatalf("%q: own shape: %v; shape of %q: %v", sql, err1, v, err2)
		}
		if r1.Shard != r2.Shard || r1.Any != r2.Any || !slices.Equal(r1.Shards, r2.Shards) || (r1.Merge == nil) != (r2.Merge == nil) {
			t.Fatalf("%q: own shape: %+v; shape of %q: %+v", sql, r1, v, r2)
		}
	})
}

// analyzeFull analyses sql without the cache, keeping its shape.
func analyzeFull(c *Classifier, sql string) Decision {
	var sc scanResult
	scanSQL(sql, &sc, nil)
	d, _ := c.analyze(sql, &sc)
	return *d
}
