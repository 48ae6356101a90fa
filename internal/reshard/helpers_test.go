package reshard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/shardmap"
)

// shared holds the three clusters (primary + replica each) every
// integration test uses; each test works in its own database.
var shared struct {
	once     sync.Once
	clusters []*pgtest.Cluster
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range shared.clusters {
		if c != nil {
			c.Close()
		}
	}
	os.Exit(code)
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// clusters starts (once) and returns the shared clusters, or skips the
// test without PostgreSQL.
func clusters(t testing.TB) []*pgtest.Cluster {
	t.Helper()
	if _, err := pgtest.FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pgtest.StartTimeout)
		defer cancel()
		shared.clusters = make([]*pgtest.Cluster, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				shared.clusters[i], errs[i] = pgtest.StartCluster(ctx, pgtest.Spec{Name: fmt.Sprintf("reshard%d", i), Replicas: 1})
			}()
		}
		wg.Wait()
		shared.err = errors.Join(errs...)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.clusters
}

// env is one test's database on each of the three clusters.
type env struct {
	t      testing.TB
	db     string
	names  []string // shard names, cluster i is names[i]
	nodes  map[string]Node
	direct []*pgx.Conn // superuser sessions on the primaries (no skip setting)
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// newEnv creates a fresh database named after the test on every cluster
// and waits for the replicas to have it.
func newEnv(t testing.TB) *env {
	t.Helper()
	cs := clusters(t)
	ctx := ctxT(t, time.Minute)
	db := "t_" + strings.Trim(nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(db) > 60 {
		db = db[:60]
	}
	e := &env{t: t, db: db, nodes: map[string]Node{}}
	for i, c := range cs {
		p := c.Primary()
		if err := p.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReplayed(ctx); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("s%d", i)
		e.names = append(e.names, name)
		e.nodes[name] = Node{Primary: p.DSNFor(db, "postgres", ""), Replica: c.Replicas()[0].DSNFor(db, "postgres", "")}
		conn, err := pgx.Connect(ctx, e.nodes[name].Primary)
		if err != nil {
			t.Fatal(err)
		}
		e.direct = append(e.direct, conn)
	}
	t.Cleanup(func() {
		for _, c := range e.direct {
			closeConn(c)
		}
	})
	return e
}

// exec runs statements on the primaries of every shard.
func (e *env) exec(ctx context.Context, stmts ...string) {
	e.t.Helper()
	for i, c := range e.direct {
		for _, q := range stmts {
			if _, err := c.Exec(ctx, q); err != nil {
				e.t.Fatalf("%s: %s: %v", e.names[i], q, err)
			}
		}
	}
}

// shard returns the direct session on shard name.
func (e *env) shard(name string) *pgx.Conn {
	for i, n := range e.names {
		if n == name {
			return e.direct[i]
		}
	}
	e.t.Fatalf("no shard %q", name)
	return nil
}

// mustMap compiles a YAML shard map.
func mustMap(t testing.TB, src string) *shardmap.Map {
	t.Helper()
	var c shardmap.Config
	if err := config.Parse("map.yaml", []byte(src), &c, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("map: %v", err)
	}
	m, err := shardmap.New(c)
	if err != nil {
		t.Fatalf("map: %v", err)
	}
	return m
}

// rowsOf returns, per shard, key text → row text of table (every row; a
// key that appears twice on a shard fails the test unless dupOK).
func (e *env) rowsOf(ctx context.Context, table, key, order string) map[string]map[string][]string {
	e.t.Helper()
	return e.valuesOf(ctx, table, key, "t::text", order)
}

// valuesOf is rowsOf with the value expression expr instead of the row.
func (e *env) valuesOf(ctx context.Context, table, key, expr, order string) map[string]map[string][]string {
	e.t.Helper()
	out := map[string]map[string][]string{}
	for i, c := range e.direct {
		rows, err := c.Query(ctx, fmt.Sprintf("SELECT %s::text, %s FROM %s t ORDER BY %s", key, expr, table, order))
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") {
				continue
			}
			e.t.Fatal(err)
		}
		m := map[string][]string{}
		for rows.Next() {
			var k, r string
			if err := rows.Scan(&k, &r); err != nil {
				e.t.Fatal(err)
			}
			m[k] = append(m[k], r)
		}
		if err := rows.Err(); err != nil {
			e.t.Fatal(err)
		}
		out[e.names[i]] = m
	}
	return out
}

// checkPlacement fails unless the union of before's rows equals after's,
// every key lives on exactly one shard in after and that shard is the one
// m gives it.
func checkPlacement(t testing.TB, m *shardmap.Map, table string, want map[string][]string, after map[string]map[string][]string) {
	t.Helper()
	tbl, ok := m.Table(table)
	if !ok {
		t.Fatalf("%s is not sharded", table)
	}
	seen := map[string]string{}
	bad := 0
	for shard, rows := range after {
		for k, rs := range rows {
			if prev, dup := seen[k]; dup {
				t.Errorf("%s key %s on both %s and %s", table, k, prev, shard)
				bad++
			}
			seen[k] = shard
			key, err := shardmap.ParseKey(tbl.Type(), k)
			if err != nil {
				t.Fatal(err)
			}
			s, err := tbl.ShardFor(key)
			if err != nil {
				t.Fatal(err)
			}
			if m.ShardName(s) != shard {
				t.Errorf("%s key %s is on %s, the map says %s", table, k, shard, m.ShardName(s))
				bad++
			}
			if w := want[k]; strings.Join(w, "\n") != strings.Join(rs, "\n") {
				t.Errorf("%s key %s: rows %q, want %q", table, k, rs, w)
				bad++
			}
			if bad > 10 {
				t.Fatal("too many errors")
			}
		}
	}
	for k := range want {
		if _, ok := seen[k]; !ok {
			t.Errorf("%s key %s was lost", table, k)
			if bad++; bad > 10 {
				t.Fatal("too many errors")
			}
		}
	}
}

// union merges per-shard rows (fails on a key on two shards).
func union(t testing.TB, per map[string]map[string][]string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for shard, rows := range per {
		for k, rs := range rows {
			if _, dup := out[k]; dup {
				t.Fatalf("key %s on two shards (one is %s)", k, shard)
			}
			out[k] = rs
		}
	}
	return out
}
