package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/internal/pgtest"
)

// The cache scenario's systems: one dbproxy binary, three configs.
const (
	sysDBUncached = "dbproxy-uncached" // no cache rule, no hints
	sysDBCached   = "dbproxy-cached"   // cache rule on products
	sysDBHint     = "dbproxy-hint"     // no rule; the script's statement carries a cache hint
)

// The scenario's table and workload.
const (
	cacheProducts = 1000
	cacheClients  = 32
	cacheJobs     = 2
	cacheTTL      = "30s"
	cacheRead     = "SELECT name, price FROM products WHERE id = :id;"
	cacheHint     = "/* tiergate: cache ttl=" + cacheTTL + " */ "
)

func dbCacheScenario() scenario {
	return scenario{
		name:  "db-cache",
		title: "dbproxy query cache: point-read TPS with a cache rule, with a hint, and without (same binary, primary + replica)",
		needs: []string{"postgres", "pgbench"},
		run:   runDBCache,
	}
}

func cacheTPSGroup(mode string) string {
	return fmt.Sprintf("pgbench -M %s: point read on products (%d rows)", mode, cacheProducts)
}

var (
	mCacheServerPerTxn = metricKey{Group: "PostgreSQL executions of the read per pgbench transaction", Unit: "executions/txn", Better: "lower"}
	mCacheServer       = metricKey{Group: "PostgreSQL executions of the read per run (primary + replica)", Unit: "executions", Better: "lower"}
)

// dbCacheVariant says which cache settings a dbproxy config gets.
type dbCacheVariant int

const (
	cacheNone  dbCacheVariant = iota // no query_cache section, no rule
	cacheTable                       // query_cache + a rule on products
	cacheHints                       // query_cache, no rule (hints only)
)

// dbproxyCacheConfig is dbproxyConfig plus the query cache settings of v.
func dbproxyCacheConfig(listen, admin, primary string, replicas []string, v dbCacheVariant) []byte {
	b := dbproxyConfig(listen, admin, primary, replicas, 1000)
	if v == cacheTable {
		// dbproxyConfig ends inside databases.bench.
		b = fmt.Appendf(b, "    cache:\n      tables: [products]\n      ttl: %s\n", cacheTTL)
	}
	if v != cacheNone {
		b = fmt.Appendf(b, "query_cache:\n  max_size: 64MiB\n  max_entry_size: 1MiB\n  default_ttl: %s\n", cacheTTL)
	}
	return b
}

func runDBCache(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	systems := []string{sysDBUncached, sysDBCached, sysDBHint}
	res.Systems, res.Baseline = systems, sysDBUncached
	d := h.dur(h.opts.pgDur, 5*time.Second, time.Second)
	res.Settings["pgbench"] = fmt.Sprintf("pgbench -n -c %d -j %d -T %s -M simple|extended|prepared -f script; script: \\set id random(1, %d) + %s (dbproxy-hint: the same statement after %q)", cacheClients, cacheJobs, d, cacheProducts, cacheRead, cacheHint)
	res.Settings["data"] = fmt.Sprintf("products(id int primary key, name text, price numeric(10,2)), %d rows, created on the primary and replayed on the replica", cacheProducts)
	res.Settings["postgres"] = "pgtest primary + 1 streaming replica (reads go to the replica: read/write split on)"
	res.Settings["dbproxy"] = "one cmd/dbproxy binary, three processes: transaction pooling, pool size 20 per node, trust auth; " +
		"uncached: no query_cache section and no rule; cached: query_cache {max_size: 64MiB, max_entry_size: 1MiB, default_ttl: " + cacheTTL + "} and databases.bench.cache {tables: [products], ttl: " + cacheTTL + "}; " +
		"hint: the same query_cache section, no rule"
	res.Settings["rounds"] = "every round runs each protocol mode, and in each mode every system in turn; ratios to dbproxy-uncached are per round"

	if _, err := h.build(ctx, sysDBProxy, "./cmd/dbproxy"); err != nil {
		return err
	}
	cl, err := h.startCluster(ctx, 1, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := createProducts(ctx, cl); err != nil {
		return err
	}
	counter, how, err := serverCounter(ctx, cl)
	if err != nil {
		return err
	}
	res.Settings["server_count"] = how

	plain := filepath.Join(h.tmp, "cache-read.sql")
	hinted := filepath.Join(h.tmp, "cache-read-hint.sql")
	script := fmt.Sprintf("\\set id random(1, %d)\n", cacheProducts)
	if err := os.WriteFile(plain, []byte(script+cacheRead+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(hinted, []byte(script+cacheHint+cacheRead+"\n"), 0o644); err != nil {
		return err
	}
	scripts := map[string]string{sysDBUncached: plain, sysDBCached: plain, sysDBHint: hinted}
	variants := map[string]dbCacheVariant{sysDBUncached: cacheNone, sysDBCached: cacheTable, sysDBHint: cacheHints}

	primary, replicas := cl.Primary().Addr(), nodeAddrs(cl.Replicas())
	run := map[string]*pgSystem{}
	for _, name := range systems {
		h.prog.begin(0, "starting %s", name)
		v := variants[name]
		s, err := h.startDBProxyWith(ctx, name, func(listen, admin string) []byte {
			return dbproxyCacheConfig(listen, admin, primary, replicas, v)
		})
		if err == nil {
			err = checkProductRead(ctx, s.addr, name == sysDBHint)
		}
		if err != nil {
			s.stop()
			if h.failed(ctx, rec, name, allRounds, err) {
				return ctx.Err()
			}
			continue
		}
		h.prog.end("listening on %s", s.addr)
		run[name] = s
	}
	defer func() {
		for _, s := range run {
			s.stop()
		}
	}()

	// Panels: TPS per mode first, then the server-side counts.
	for _, mode := range pgbenchModes() {
		for _, name := range systems {
			rec.metric(metricKey{Name: "tps", Group: cacheTPSGroup(mode), Unit: "TPS", Better: "higher"}, name)
		}
	}
	broken := map[string]bool{}
	for r := range h.roundsOf() {
		for _, mode := range pgbenchModes() {
			for _, name := range systems {
				s := run[name]
				if s == nil || broken[mode+name] {
					continue
				}
				before, err := counter()
				if err != nil {
					return err
				}
				h.prog.begin(d, "round %d/%d -M %s %s", r+1, h.roundsOf(), mode, name)
				pr, err := h.pgbench(ctx, pgbenchSpec{Addr: s.addr, User: benchPG, Database: benchDB, Script: scripts[name], Protocol: mode, Clients: cacheClients, Jobs: cacheJobs, Duration: d})
				if err == nil && pr.Failed > 0 {
					err = fmt.Errorf("%d failed transactions", pr.Failed)
				}
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					h.prog.end("failed")
					if tail := strings.TrimSpace(s.proc.logTail(3)); tail != "" {
						err = fmt.Errorf("%w\n%s log: %s", err, name, tail)
					}
					rec.fail(name, r, fmt.Errorf("-M %s: %w", mode, err))
					broken[mode+name] = true
					continue
				}
				after, err := counter()
				if err != nil {
					return err
				}
				n := after - before
				rec.add(metricKey{Name: "tps", Group: cacheTPSGroup(mode), Unit: "TPS", Better: "higher"}, name, r, pr.TPS)
				rec.add(withName(mCacheServer, mode), name, r, float64(n))
				perTxn := ""
				if pr.Txns > 0 {
					rec.add(withName(mCacheServerPerTxn, mode), name, r, float64(n)/float64(pr.Txns))
					perTxn = fmt.Sprintf(" (%.3f per transaction)", float64(n)/float64(pr.Txns))
				}
				h.prog.end("%.0f TPS, %d executions on PostgreSQL%s", pr.TPS, n, perTxn)
			}
		}
	}
	rec.finish()
	for _, mode := range pgbenchModes() {
		g := rec.ratioGoal(fmt.Sprintf("dbproxy-cached ≥ 1.5× dbproxy-uncached TPS (-M %s)", mode), cacheTPSGroup(mode), "tps", sysDBCached, sysDBUncached, ">=", 1.5)
		if note := cacheGoalNote(rec, mode); note != "" {
			if g.Note != "" {
				note = g.Note + "; " + note
			}
			res.Goals[len(res.Goals)-1].Note = note
		}
	}
	if h.wantProfile(res) && run[sysDBCached] != nil {
		h.profileDBCache(ctx, res, primary, replicas, plain, worstCacheMode(res), d)
	}
	return nil
}

// withName is k for one protocol mode.
func withName(k metricKey, name string) metricKey {
	k.Name = name
	return k
}

// cacheGoalNote gives the hint variant's ratio and the server-side
// executions per transaction of every system in one mode.
func cacheGoalNote(rec *recorder, mode string) string {
	var parts []string
	if m := rec.find(cacheTPSGroup(mode), "tps", sysDBHint); m != nil && m.RatioMedian.ok() {
		parts = append(parts, fmt.Sprintf("dbproxy-hint %.2f×", float64(m.RatioMedian)))
	}
	var per []string
	for _, sys := range []string{sysDBUncached, sysDBCached, sysDBHint} {
		if m := rec.find(mCacheServerPerTxn.Group, mode, sys); m != nil && m.Median.ok() {
			per = append(per, fmt.Sprintf("%s %.3g", strings.TrimPrefix(sys, "dbproxy-"), float64(m.Median)))
		}
	}
	if len(per) > 0 {
		parts = append(parts, "PostgreSQL executions per transaction: "+strings.Join(per, ", "))
	}
	return strings.Join(parts, "; ")
}

// worstCacheMode is the protocol mode of the lowest cached/uncached
// ratio among the missed goals (simple when none has a ratio).
func worstCacheMode(res *Result) string {
	mode, worst := "simple", 0.0
	for i, g := range res.Goals {
		if g.Status == goalMet || !g.Ratio.ok() {
			continue
		}
		if worst == 0 || float64(g.Ratio) < worst {
			mode, worst = pgbenchModes()[i%len(pgbenchModes())], float64(g.Ratio)
		}
	}
	return mode
}

// createProducts creates and fills the products table on the primary and
// waits until the replica has replayed it.
func createProducts(ctx context.Context, cl *pgtest.Cluster) error {
	conn, err := pgx.Connect(ctx, cl.Primary().DSNFor(benchDB, benchPG, ""))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		"CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL)",
		fmt.Sprintf("INSERT INTO products SELECT g, 'product ' || g, (g %% 100) + 0.99 FROM generate_series(1, %d) g", cacheProducts),
		"ANALYZE products",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return cl.WaitReplayed(ctx)
}

// checkProductRead reads one product through a proxy twice (the second
// read is a hit where the system caches) and checks the answer.
func checkProductRead(ctx context.Context, addr string, hint bool) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", benchPG, addr, benchDB))
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	sql := strings.TrimSuffix(strings.ReplaceAll(cacheRead, ":id", "7"), ";")
	if hint {
		sql = cacheHint + sql
	}
	for range 2 {
		var name string
		var price float64
		if err := conn.QueryRow(ctx, sql).Scan(&name, &price); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		if name != "product 7" || math.Abs(price-7.99) > 1e-9 {
			return fmt.Errorf("%s: got (%q, %v), want (\"product 7\", 7.99)", sql, name, price)
		}
	}
	return nil
}

// serverCounter returns a function counting the executions of the
// products read on every node, and how it counts. With pg_stat_statements
// (pgtest preloads it when installed) the count is exact and immediate;
// without it, the committed transactions of the bench database are
// counted instead, which PostgreSQL publishes up to ~10 s late from idle
// backends.
func serverCounter(ctx context.Context, cl *pgtest.Cluster) (func() (int64, error), string, error) {
	var have bool
	if err := cl.Primary().QueryRow(ctx, "SELECT count(*) > 0 FROM pg_extension WHERE extname = 'pg_stat_statements'").Scan(&have); err != nil {
		return nil, "", err
	}
	sql, how := "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query ILIKE '%FROM products WHERE id%'",
		"pg_stat_statements: calls of the products read, summed over primary and replica, before and after each run"
	if !have {
		sql = "SELECT coalesce(sum(xact_commit), 0)::bigint FROM pg_stat_database WHERE datname = '" + benchDB + "'"
		how = "pg_stat_database.xact_commit of the bench database, summed over primary and replica, before and after each run (pg_stat_statements is not installed; idle backends publish their counts up to ~10s late, so a run's count may leak into the next)"
	}
	nodes := cl.Nodes
	return func() (int64, error) {
		var total int64
		for _, n := range nodes {
			var c int64
			if err := n.QueryRow(ctx, sql).Scan(&c); err != nil {
				return 0, fmt.Errorf("server statement count: %w", err)
			}
			total += c
		}
		return total, nil
	}, how, nil
}

// profileDBCache runs the in-process dbproxy with the cache rule under
// the scenario's pgbench script in one mode and stores the top of its CPU
// profile.
func (h *harness) profileDBCache(ctx context.Context, res *Result, primary string, replicas []string, script, mode string, d time.Duration) {
	d = max(d, 5*time.Second)
	h.prog.begin(d, "CPU profile of the in-process dbproxy (cache rule) under pgbench -M %s", mode)
	cfg := func(listen, admin, _ string) ([]byte, error) {
		return dbproxyCacheConfig(listen, admin, primary, replicas, cacheTable), nil
	}
	pr, err := h.startProfiled(ctx, res.Scenario, "dbproxy", cfg, pgCheck)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	out, err := h.pgbench(ctx, pgbenchSpec{Addr: pr.addr, User: benchPG, Database: benchDB, Script: script, Protocol: mode, Clients: cacheClients, Jobs: cacheJobs, Duration: d})
	pr.p.stop(10 * time.Second)
	if err != nil {
		h.profileFailed(res, err)
		return
	}
	res.Notes = append(res.Notes, fmt.Sprintf("profiled run (in-process dbproxy with the cache rule under runtime/pprof, pgbench -M %s): %.0f TPS", mode, out.TPS))
	h.storeProfile(ctx, res, pr.cpu)
}
