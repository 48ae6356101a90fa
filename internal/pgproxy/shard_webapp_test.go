package pgproxy

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/shardmap"
)

// TestShardedWebApp runs examples/webapp's statements, as its store sends
// them, through a proxy sharding its schema over three shards (the demo's
// setup): the schema script, signup (reference table then user), login,
// sessions (the single-shard join), posts and the cross-shard feed.
func TestShardedWebApp(t *testing.T) {
	schema, err := os.ReadFile("../../examples/webapp/schema.sql")
	if err != nil {
		t.Skip(err)
	}
	cs := shardClusters(t)
	const n = 3
	sharding := webappSharding(n)
	cfg := shardedTestConfig(t, cs, "webapp3", n, sharding, "")
	p := startProxy(t, cfg)
	ctx := ctxT(t, 2*time.Minute)
	m := testShardMap(t, sharding)
	conn := p.connect(t, ctx)
	const hint = "/* tiergate: primary */ "
	// The schema script (simple protocol: pgx Exec without arguments),
	// twice: it is idempotent.
	for i := 0; i < 2; i++ {
		if _, err := conn.Exec(ctx, string(schema)); err != nil {
			t.Fatalf("schema: %v", err)
		}
	}
	for k := 0; k < n; k++ {
		var tables int
		if err := shardConn(t, ctx, cs[k], "webapp3").QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 4 {
			t.Fatalf("shard %d has %d tables (%v)", k, tables, err)
		}
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for u := int64(1); u <= 30; u++ {
		id := u * 7919 * 1000003 // spread like the app's random ids
		name := fmt.Sprint("user", u)
		if _, err := conn.Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ($1, $2)", name, id); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, $2, $3)", id, name, "hash"); err != nil {
			t.Fatal(err)
		}
		var got int64
		if err := conn.QueryRow(ctx, hint+"SELECT user_id FROM usernames WHERE name = $1", name).Scan(&got); err != nil || got != id {
			t.Fatalf("login lookup: %d %v", got, err)
		}
		var h string
		if err := conn.QueryRow(ctx, hint+"SELECT password_hash FROM users WHERE user_id = $1", id).Scan(&h); err != nil || h != "hash" {
			t.Fatalf("password: %q %v", h, err)
		}
		token := []byte(fmt.Sprint("token", u))
		if _, err := conn.Exec(ctx, "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now()", id); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, $3)", id, token, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var uname string
		var ucreated time.Time
		if err := conn.QueryRow(ctx, hint+`SELECT u.name, u.created_at
FROM sessions s JOIN users u ON u.user_id = s.user_id
WHERE s.user_id = $1 AND u.user_id = $1 AND s.token_hash = $2 AND s.expires_at > now()`, id, token).Scan(&uname, &ucreated); err != nil || uname != name {
			t.Fatalf("session: %q %v", uname, err)
		}
		for post := int64(1); post <= 3; post++ {
			if _, err := conn.Exec(ctx, "INSERT INTO posts (user_id, post_id, author, body) VALUES ($1, $2, $3, $4)", id, post, name, "hello"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "UPDATE posts SET created_at = $3 WHERE user_id = $1 AND post_id = $2", id, post, created.Add(time.Duration(u*10+post)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		rows, _ := conn.Query(ctx, hint+"SELECT user_id, post_id, author, body, created_at FROM posts WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50", id)
		own, err := pgx.CollectRows(rows, pgx.RowToMap)
		if err != nil || len(own) != 3 {
			t.Fatalf("own posts: %d %v", len(own), err)
		}
		if u%10 == 0 {
			if _, err := conn.Exec(ctx, "DELETE FROM sessions WHERE user_id = $1 AND token_hash = $2", id, token); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Signup of a taken name fails on the reference table.
	if _, err := conn.Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ($1, $2)", "user1", int64(5)); !isPgCode(err, "23505") {
		t.Fatalf("taken name: %v", err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM usernames WHERE name = $1 AND user_id = $2", "nobody", int64(5)); err != nil {
		t.Fatal(err)
	}
	// The feed: newest 50 of 90 posts across shards, newest first.
	rows, _ := conn.Query(ctx, "SELECT user_id, post_id, author, body, created_at FROM posts ORDER BY created_at DESC LIMIT 50")
	type post struct {
		UserID, PostID int64
		Author, Body   string
		CreatedAt      time.Time
	}
	feed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[post])
	if err != nil || len(feed) != 50 {
		t.Fatalf("feed: %d %v", len(feed), err)
	}
	if !slices.IsSortedFunc(feed, func(a, b post) int { return b.CreatedAt.Compare(a.CreatedAt) }) {
		t.Fatal("feed not newest first")
	}
	if feed[0].Author != "user30" || feed[0].PostID != 3 {
		t.Fatalf("newest post %+v", feed[0])
	}
	shards := map[int]bool{}
	for _, f := range feed {
		s, _ := m.ShardFor("posts", shardmap.Int64Key(f.UserID))
		shards[s] = true
	}
	if len(shards) < 2 {
		t.Fatalf("the feed came from shards %v", shards)
	}
}
