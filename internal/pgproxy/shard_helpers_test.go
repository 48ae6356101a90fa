package pgproxy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/shardmap"
)

// sharedShards are three independent clusters (a primary and one replica
// each) that the sharded tests share: a test with two shards uses the
// first two. Each test works in its own server database.
var sharedShards struct {
	once sync.Once
	cs   []*pgtest.Cluster
	err  error
}

// shardClusters returns the shared shard clusters, starting them on first
// use (they are stopped by TestMain).
func shardClusters(t testing.TB) []*pgtest.Cluster {
	t.Helper()
	if _, err := pgtest.FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	sharedShards.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pgtest.StartTimeout)
		defer cancel()
		cs := make([]*pgtest.Cluster, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cs[i], errs[i] = pgtest.StartCluster(ctx, pgtest.Spec{
					Name: fmt.Sprintf("shard%d", i), Replicas: 1, Auth: "scram-sha-256",
					Conf: map[string]string{"max_connections": "200", "max_prepared_transactions": "40"},
				})
				if errs[i] == nil {
					errs[i] = cs[i].Primary().Exec(ctx, "CREATE ROLE app LOGIN PASSWORD '"+appPassword+"'")
				}
			}()
		}
		wg.Wait()
		sharedShards.cs = cs
		for _, err := range errs {
			if err != nil && sharedShards.err == nil {
				sharedShards.err = err
			}
		}
	})
	if sharedShards.err != nil {
		t.Fatal(sharedShards.err)
	}
	return sharedShards.cs
}

func closeSharedShards() {
	for _, c := range sharedShards.cs {
		if c != nil {
			c.Close()
		}
	}
}

// webappSchema is examples/webapp/schema.sql's tables.
const webappSchema = `
CREATE TABLE IF NOT EXISTS usernames (name text PRIMARY KEY, user_id bigint NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id bigint PRIMARY KEY, name text NOT NULL, password_hash text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS sessions (user_id bigint NOT NULL, token_hash bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL, PRIMARY KEY (user_id, token_hash));
CREATE TABLE IF NOT EXISTS posts (user_id bigint NOT NULL, post_id bigint NOT NULL, author text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (user_id, post_id));
CREATE INDEX IF NOT EXISTS posts_created_at_idx ON posts (created_at DESC);
`

// webappSharding is the shard map of the web app's schema over n shards.
func webappSharding(n int) *shardmap.Config {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	return &shardmap.Config{
		Version:   1,
		Shards:    shardmap.Shards{Names: names},
		KeySpaces: []shardmap.KeySpaceConfig{{Name: "users", FunctionConfig: shardmap.FunctionConfig{Type: "bigint", Function: "hash"}}},
		Tables: []shardmap.TableConfig{
			{Table: "users", Column: "user_id", KeySpace: "users"},
			{Table: "posts", Column: "user_id", KeySpace: "users"},
			{Table: "sessions", Column: "user_id", KeySpace: "users"},
		},
		ReferenceTables: []string{"usernames"},
	}
}

// shardedDB creates server database db on the first n shard clusters
// (owned by app, with schema applied) and returns a proxy config whose
// database "app" is that database sharded by sharding.
func shardedTestConfig(t testing.TB, cs []*pgtest.Cluster, db string, n int, sharding *shardmap.Config, schema string) *Config {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	for _, c := range cs[:n] {
		p := c.Primary()
		if err := p.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx, "CREATE DATABASE "+db+" OWNER app"); err != nil {
			t.Fatal(err)
		}
		if schema != "" {
			conn, err := pgx.Connect(ctx, p.DSNFor(db, "app", appPassword))
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, schema)
			_ = conn.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range cs[:n] {
		if err := c.WaitReplayed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(cs[0])
	d := DatabaseConfig{ServerDatabase: db, Sharding: sharding}
	for _, c := range cs[:n] {
		sc := ShardConfig{Primary: c.Primary().Addr()}
		for _, r := range c.Replicas() {
			sc.Replicas = append(sc.Replicas, r.Addr())
		}
		d.Shards = append(d.Shards, sc)
	}
	cfg.Databases = map[string]DatabaseConfig{"app": d}
	return cfg
}

// shardConn connects straight to shard i's primary, database db.
func shardConn(t testing.TB, ctx context.Context, c *pgtest.Cluster, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, c.Primary().DSNFor(db, "app", appPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// waitShardReplicas waits until the health checks have seen every replica
// of every shard.
func (p *testProxy) waitShardReplicas(t testing.TB, ctx context.Context) {
	t.Helper()
	sdb := p.srv.rt.Load().sharded["app"]
	waitFor(t, ctx, "shard replicas checked", func() bool {
		for _, cl := range sdb.shards {
			for _, r := range cl.replicas {
				if !r.checked.Load() || !r.readable(0) {
					return false
				}
			}
		}
		return true
	})
}

// shardQueries returns the statements routed to each shard so far (the
// console's SHOW STATS shard_statements).
func (p *testProxy) shardQueries() []int64 {
	sdb := p.srv.rt.Load().sharded["app"]
	out := make([]int64, len(sdb.shards))
	for i, cl := range sdb.shards {
		out[i] = cl.stats.shardStatements.Load()
	}
	return out
}

// execModes are the pgx protocols the sharded tests run under.
var execModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"extended", pgx.QueryExecModeCacheStatement},
	{"exec", pgx.QueryExecModeExec},
}

// console connects to the proxy's admin console.
func (p *testProxy) console(t testing.TB, ctx context.Context) *pgconn.PgConn {
	t.Helper()
	pc, err := pgconn.Connect(ctx, strings.Replace(p.dsn("admin", "admin-secret"), "/app?", "/tiergate?", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close(context.Background()) })
	return pc
}
