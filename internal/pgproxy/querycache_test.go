package pgproxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/internal/querycache"
)

// statementCalls sums pg_stat_statements calls of statements whose text
// matches the LIKE pattern over every node of c: how often PostgreSQL
// really ran them. (Statements differing only in constants or aliases
// share one entry: tests tell theirs apart by table or select list.)
func statementCalls(t *testing.T, ctx context.Context, c *pgtest.Cluster, pattern string) int64 {
	t.Helper()
	var total int64
	for _, n := range append([]*pgtest.Node{c.Primary()}, c.Replicas()...) {
		var calls int64
		err := n.QueryRow(ctx, "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE $1 AND query NOT LIKE '%pg_stat_statements%'", pattern).Scan(&calls)
		if err != nil {
			t.Fatalf("pg_stat_statements on %s: %v", n.Name, err)
		}
		total += calls
	}
	return total
}

// cacheFixture makes table <name> (id, name, price) with 100 rows on the
// shared cluster and returns a proxy caching it.
func cacheFixture(t *testing.T, ctx context.Context, name string, mutate func(*Config)) (*pgtest.Cluster, *testProxy) {
	t.Helper()
	c := sharedCluster(t)
	p := c.Primary()
	create := fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s (id int PRIMARY KEY, name text, price int);
		INSERT INTO %[1]s SELECT g, 'item' || g, g * 10 FROM generate_series(1, 100) g; GRANT ALL ON %[1]s TO app`, name)
	if err := execAs(ctx, p, create); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(c)
	d := cfg.Databases["app"]
	d.Cache = &querycache.Rules{Tables: []string{name}, TTL: 30 * time.Second}
	cfg.Databases["app"] = d
	if mutate != nil {
		mutate(cfg)
	}
	px := startProxy(t, cfg)
	px.waitReplicasReadable(t, ctx)
	return c, px
}

// execAs runs sql on database app as superuser.
func execAs(ctx context.Context, n *pgtest.Node, sql string) error {
	conn, err := pgx.Connect(ctx, n.DSNFor("app", "postgres", ""))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}

func TestQueryCacheReadThrough(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	c, px := cacheFixture(t, ctx, "qc_products", nil)
	conn := px.connect(t, ctx)

	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol},
		{"extended-cached-statement", pgx.QueryExecModeCacheStatement},
		{"extended-describe-exec", pgx.QueryExecModeDescribeExec},
		{"extended-exec", pgx.QueryExecModeExec},
	}
	// One select list per mode: each has its own pg_stat_statements entry.
	lists := []string{"name, price", "name, price, id", "name, price, id, id", "name, price, id, id, id"}
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			id := 7 + i
			sql := fmt.Sprintf("SELECT %s FROM qc_products WHERE id = $1", lists[i])
			marker := sql[:len(sql)-2] + "%"
			before := statementCalls(t, ctx, c, marker)
			for range 200 {
				var name string
				var price int
				rows, err := conn.Query(ctx, sql, m.mode, id)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					vals, err := rows.Values()
					if err != nil {
						t.Fatal(err)
					}
					name, price = vals[0].(string), int(vals[1].(int32))
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				if name != fmt.Sprintf("item%d", id) || price != id*10 {
					t.Fatalf("got %q %d", name, price)
				}
			}
			got := statementCalls(t, ctx, c, marker) - before
			if got != 1 {
				t.Fatalf("PostgreSQL ran the query %d times for 200 reads, want 1", got)
			}
		})
	}
	st := px.srv.qcache.Load().DB("app").Stats()
	if st.Hits < 4*199 || st.Stores < 4 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestQueryCacheBypass(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	// One table per case: each case has its own pg_stat_statements entry.
	const ncases = 11
	var tables []string
	for i := range ncases {
		tables = append(tables, fmt.Sprintf("qc_b%d", i))
	}
	c, px := cacheFixture(t, ctx, "qc_bypass", func(cfg *Config) {
		d := cfg.Databases["app"]
		d.Cache.Tables = append(append([]string(nil), tables[:9]...), tables[10:]...) // qc_b9: by hint only
		cfg.Databases["app"] = d
	})
	for _, tb := range tables {
		if err := execAs(ctx, c.Primary(), fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s AS SELECT * FROM qc_bypass; GRANT ALL ON %[1]s TO app", tb)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	conn := px.connect(t, ctx)
	simple := pgx.QueryExecModeSimpleProtocol
	cases := []struct {
		name, sql string
		inTx      bool
		want      int64 // server executions for 3 runs
	}{
		{"cached", "SELECT price FROM qc_b0 WHERE id = 1", false, 1},
		{"now()", "SELECT price, now() FROM qc_b1 WHERE id = 1", false, 3},
		{"random()", "SELECT price, random() FROM qc_b2 WHERE id = 1", false, 3},
		{"current_timestamp", "SELECT price, current_timestamp FROM qc_b3 WHERE id = 1", false, 3},
		{"nextval", "SELECT price, nextval('qc_seq') FROM qc_b4 WHERE id = 1", false, 3},
		{"transaction", "SELECT price FROM qc_b5 WHERE id = 2", true, 3},
		{"other table", "SELECT count(*) FROM qc_b6 JOIN pg_class ON true WHERE qc_b6.id = 1", false, 3},
		{"nocache hint", "/* tiergate: nocache */ SELECT price FROM qc_b7 WHERE id = 3", false, 3},
		{"for update", "SELECT price FROM qc_b8 WHERE id = 4 FOR UPDATE", false, 3},
		{"cache hint on any table", "/* tiergate: cache ttl=30s */ SELECT count(*) FROM qc_b9 WHERE id < 50", false, 1},
		{"two statements", "SELECT price FROM qc_b10 WHERE id = 5; SELECT 1", false, 3},
	}
	if err := execAs(ctx, c.Primary(), "CREATE SEQUENCE IF NOT EXISTS qc_seq; GRANT ALL ON qc_seq TO app"); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("%%FROM qc_b%d %%", i)
			before := statementCalls(t, ctx, c, marker)
			for range 3 {
				if tc.inTx {
					tx, err := conn.Begin(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := tx.Exec(ctx, tc.sql, simple); err != nil {
						t.Fatal(err)
					}
					if err := tx.Commit(ctx); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if _, err := conn.Exec(ctx, tc.sql, simple); err != nil {
					t.Fatal(err)
				}
			}
			// pg_stat_statements counts a multi-statement text per statement.
			if got := statementCalls(t, ctx, c, marker) - before; got != tc.want {
				t.Fatalf("%s: PostgreSQL ran it %d times, want %d", tc.sql, got, tc.want)
			}
		})
	}
	t.Run("errors are not cached", func(t *testing.T) {
		for range 2 {
			_, err := conn.Exec(ctx, "/* tiergate: cache */ SELECT * FROM qc_no_such_table", simple)
			if !isPgCode(err, "42P01") {
				t.Fatalf("want 42P01, got %v", err)
			}
		}
	})
}

func TestQueryCacheInvalidation(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	_, px := cacheFixture(t, ctx, "qc_inval", nil)
	conn := px.connect(t, ctx)
	other := px.connect(t, ctx)
	read := func(c *pgx.Conn, id int) int {
		t.Helper()
		var price int
		if err := c.QueryRow(ctx, "SELECT price FROM qc_inval WHERE id = $1", id).Scan(&price); err != nil {
			t.Fatal(err)
		}
		return price
	}
	for step, w := range []struct {
		name  string
		write string
		id    int
		want  int
		inTx  bool
	}{
		{"update", "UPDATE qc_inval SET price = 1001 WHERE id = 11", 11, 1001, false},
		{"insert", "DELETE FROM qc_inval WHERE id = 12; INSERT INTO qc_inval VALUES (12, 'x', 1002)", 12, 1002, false},
		{"update in transaction", "UPDATE qc_inval SET price = 1003 WHERE id = 13", 13, 1003, true},
		{"truncate", "TRUNCATE qc_inval; INSERT INTO qc_inval VALUES (14, 'y', 1004)", 14, 1004, false},
	} {
		t.Run(w.name, func(t *testing.T) {
			before := read(other, w.id)
			if read(other, w.id) != before { // now cached
				t.Fatal("unstable read")
			}
			if w.inTx {
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, w.write); err != nil {
					t.Fatal(err)
				}
				// Not committed yet: others still see the old value.
				if got := read(other, w.id); got != before {
					t.Fatalf("before commit: %d, want %d", got, before)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			} else if _, err := conn.Exec(ctx, w.write, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			// The writer reads its own write at once (the cache entry is
			// gone before the commit reached it).
			if got := read(conn, w.id); got != w.want {
				t.Fatalf("step %d: writer read %d after the write, want %d", step, got, w.want)
			}
			// Another client sees it once a replica has replayed it (the
			// cache does not keep the old value meanwhile).
			waitFor(t, ctx, "other client sees the write", func() bool { return read(other, w.id) == w.want })
		})
	}
	st := px.srv.qcache.Load().DB("app").Stats()
	if st.Invalidations < 4 {
		t.Fatalf("invalidations: %+v", st)
	}
}

// TestQueryCacheAcrossProxies: a write through proxy A drops proxy B's
// cached result (gossip), long before its TTL.
func TestQueryCacheAcrossProxies(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	c := sharedCluster(t)
	if err := execAs(ctx, c.Primary(), `DROP TABLE IF EXISTS qc_peers; CREATE TABLE qc_peers (id int PRIMARY KEY, price int);
		INSERT INTO qc_peers SELECT g, g FROM generate_series(1, 10) g; GRANT ALL ON qc_peers TO app`); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 3 // Raft wants an odd number of peers
	px := peerProxies(t, c, n, func(cfg *Config) {
		d := cfg.Databases["app"]
		d.Cache = &querycache.Rules{Tables: []string{"qc_peers"}, TTL: time.Minute}
		cfg.Databases["app"] = d
	})
	for _, p := range px {
		p.waitReplicasReadable(t, ctx)
	}
	waitFor(t, ctx, "peers see each other", func() bool {
		for _, p := range px {
			if len(p.srv.peers.Members()) != n {
				return false
			}
		}
		return true
	})
	a, b := px[0].connect(t, ctx), px[1].connect(t, ctx)
	read := func(id int) int {
		var v int
		if err := b.QueryRow(ctx, "SELECT price FROM qc_peers WHERE id = $1", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var worst time.Duration
	for round := 1; round <= 5; round++ {
		id := round
		old := read(id)
		read(id) // cached on B now
		if h := px[1].srv.qcache.Load().DB("app").Stats().Hits; h == 0 {
			t.Fatal("B did not cache the read")
		}
		want := 1000 + round
		start := time.Now()
		if _, err := a.Exec(ctx, "UPDATE qc_peers SET price = $1 WHERE id = $2", want, id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "B sees the write through A", func() bool { return read(id) == want })
		took := time.Since(start)
		worst = max(worst, took)
		if old == want {
			t.Fatal("no change")
		}
	}
	t.Logf("B saw A's writes after at most %v (cache TTL 1m)", worst)
	if worst > 30*time.Second {
		t.Fatalf("B served the old value for %v: invalidation did not arrive, TTL did", worst)
	}
	if r := px[1].srv.qcache.Load().DB("app").Stats().RemoteInvalidations; r == 0 {
		t.Fatal("B applied no remote invalidation")
	}
}

// TestQueryCacheMemoryBound: 100k distinct cached results stay within
// max_size.
func TestQueryCacheMemoryBound(t *testing.T) {
	ctx := ctxT(t, 5*time.Minute)
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.QueryCache.MaxSize = 1 << 20
	cfg.QueryCache.MaxEntrySize = 64 << 10
	px := startProxy(t, cfg)
	keys := 100_000
	if testing.Short() {
		keys = 10_000
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, px.dsn("app", appPassword))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(context.Background())
			for k := w; k < keys; k += workers {
				q := fmt.Sprintf("/* tiergate: cache */ SELECT %d AS k, repeat('x', 100) AS pad", k)
				if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	qc := px.srv.qcache.Load()
	st := qc.DB("app").Stats()
	used, limit := qc.Size()
	t.Logf("%d keys: stores=%d entries=%d bytes=%d (store %d, limit %d) evictions=%d", keys, st.Stores, st.Entries, st.Bytes, used, limit, st.Evictions)
	if st.Stores < uint64(keys)*9/10 {
		t.Fatalf("only %d of %d results stored", st.Stores, keys)
	}
	if st.Bytes > int64(limit)+int64(cfg.QueryCache.MaxEntrySize) || used > limit+uint64(cfg.QueryCache.MaxEntrySize) {
		t.Fatalf("cache holds %d bytes (store %d), limit %d", st.Bytes, used, limit)
	}
	if st.Evictions == 0 {
		t.Fatal("nothing evicted")
	}
	// The console reports it.
	admin, err := pgx.Connect(ctx, strings.Replace(px.dsn("admin", "admin-secret"), "/app?", "/tiergate?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	rows, err := admin.Query(ctx, "SHOW CACHE", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for rows.Next() {
		vals, _ := rows.Values()
		if vals[0] == "app" {
			found = true
		}
	}
	if rows.Err() != nil || !found {
		t.Fatalf("SHOW CACHE: %v found=%v", rows.Err(), found)
	}
	if _, err := admin.Exec(ctx, "CACHE PURGE app", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if e := qc.DB("app").Stats().Entries; e != 0 {
		t.Fatalf("%d entries after CACHE PURGE", e)
	}
}

// TestQueryCacheSharded: on a sharded database single-shard reads and
// fan-outs are cached too, and a write through the proxy drops them.
func TestQueryCacheSharded(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	cs := shardClusters(t)
	cfg := shardedTestConfig(t, cs, "qc_sharded", 2, webappSharding(2), webappSchema)
	d := cfg.Databases["app"]
	d.Cache = &querycache.Rules{Tables: []string{"posts"}, TTL: time.Minute}
	cfg.Databases["app"] = d
	// The test waits for the replicas itself; the default grace (1s after
	// the inserts, nothing is stored) would only slow it down.
	cfg.QueryCache.InvalidationGrace = time.Millisecond
	px := startProxy(t, cfg)
	px.waitShardReplicas(t, ctx)
	conn := px.connect(t, ctx)
	for u := int64(1); u <= 20; u++ {
		if _, err := conn.Exec(ctx, "INSERT INTO posts (user_id, post_id, author, body) VALUES ($1, 1, 'a', 'first')", u); err != nil {
			t.Fatal(err)
		}
	}
	total := func() int64 {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	bodies := func(u int64) int64 {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM posts WHERE user_id = $1", u).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, ctx, "replicas have the rows", func() bool { return total() == 20 })
	for _, read := range []struct {
		name string
		run  func() int64
		want int64
	}{{"fan-out", total, 20}, {"single shard", func() int64 { return bodies(7) }, 1}} {
		t.Run(read.name, func(t *testing.T) {
			for got := read.run(); got != read.want; got = read.run() {
				t.Fatalf("got %d, want %d", got, read.want)
			}
			sent := px.shardQueries()
			for range 50 {
				if got := read.run(); got != read.want {
					t.Fatalf("got %d, want %d", got, read.want)
				}
			}
			after := px.shardQueries()
			for i := range sent {
				if after[i] != sent[i] {
					t.Fatalf("shard %d ran %d statements for 50 cached reads; cache %+v", i, after[i]-sent[i], px.srv.qcache.Load().DB("app").Stats())
				}
			}
		})
	}
	if _, err := conn.Exec(ctx, "INSERT INTO posts (user_id, post_id, author, body) VALUES (7, 2, 'a', 'second')"); err != nil {
		t.Fatal(err)
	}
	// Read-your-writes: the writer sees both changes at once.
	if got := total(); got != 21 {
		t.Fatalf("fan-out after the insert: %d, want 21", got)
	}
	if got := bodies(7); got != 2 {
		t.Fatalf("single-shard read after the insert: %d, want 2", got)
	}
}

// TestQueryCacheTTL: a result is served from the cache until its TTL ends,
// then the query runs again; /metrics reports the cache's counters.
func TestQueryCacheTTL(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	c, px := cacheFixture(t, ctx, "qc_ttl", func(cfg *Config) {
		d := cfg.Databases["app"]
		d.Cache = nil // the hint alone caches it
		cfg.Databases["app"] = d
	})
	conn := px.connect(t, ctx)
	const sql = "/* tiergate: cache ttl=300ms */ SELECT price FROM qc_ttl WHERE id = 3"
	run := func() {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	run()
	base := statementCalls(t, ctx, c, "%FROM qc_ttl %")
	// Poll: the query keeps being answered from the cache until the TTL
	// ends, then PostgreSQL runs it once more.
	reads := 0
	waitFor(t, ctx, "the entry to expire", func() bool {
		run()
		reads++
		return statementCalls(t, ctx, c, "%FROM qc_ttl %") > base
	})
	st := px.srv.qcache.Load().DB("app").Stats()
	if st.Hits == 0 {
		t.Fatalf("no hit before the TTL ended (%d reads): %+v", reads, st)
	}
	t.Logf("%d reads until the 300ms TTL ended; %d hits", reads, st.Hits)

	reg := prometheus.NewRegistry()
	reg.MustRegister(newCacheCollector(px.srv))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			found[f.GetName()] = v
		}
	}
	if found["tiergate_dbproxy_query_cache_hits_total"] < float64(st.Hits) || found["tiergate_dbproxy_query_cache_stores_total"] < 2 {
		t.Fatalf("metrics: %v", found)
	}
}

// TestQueryCacheCoalesce: many clients missing the same slow query at
// once make PostgreSQL run it once; the others wait for its result.
func TestQueryCacheCoalesce(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	c := sharedCluster(t)
	px := startProxy(t, testConfig(c))
	const clients = 16
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		conns[i] = px.connect(t, ctx)
	}
	const sql = "/* tiergate: cache ttl=1m */ SELECT count(*) AS qc_coalesce FROM generate_series(1, 3000000) g"
	before := statementCalls(t, ctx, c, "%qc_coalesce%")
	start := make(chan struct{})
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var n int64
			if err := conn.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 3000000 {
				errs <- fmt.Errorf("count %d: %v", n, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := statementCalls(t, ctx, c, "%qc_coalesce%") - before; got != 1 {
		t.Fatalf("PostgreSQL ran the query %d times for %d concurrent clients, want 1", got, clients)
	}
	st := px.srv.qcache.Load().DB("app").Stats()
	t.Logf("%d clients: %d hits (%d after waiting for the first), %d stores", clients, st.Hits, st.Coalesced, st.Stores)
}
