package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/pgproxy"
	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/shardmap"
)

// The fan-out scenario's table: fanoutRows rows of items(id, v), split
// over the shards by the shard map.
const (
	fanoutRows    = 20000
	fanoutClients = 8
	fanoutJobs    = 2
)

var (
	mFanSingle = metricKey{Name: "tps", Group: "single-key read TPS (SELECT v FROM items WHERE id = :id)", Unit: "TPS", Better: "higher"}
	mFanOut    = metricKey{Name: "tps", Group: "fan-out read TPS (SELECT id, v FROM items ORDER BY v DESC, id LIMIT 10)", Unit: "TPS", Better: "higher"}
	mFanRatio  = metricKey{Name: "fan-out / single-key", Group: "fan-out TPS / single-key TPS, same shard count", Unit: "×", Better: "higher"}
)

func dbFanoutScenario() scenario {
	return scenario{
		name:  "db-fanout",
		title: "dbproxy cross-shard (fan-out) read vs single-key read, 2 / 4 / 8 shards",
		needs: []string{"postgres", "pgbench"},
		run:   runDBFanout,
	}
}

// fanoutSetup is one shard count's clusters and in-process proxy.
type fanoutSetup struct {
	name     string
	shards   int
	clusters []*pgtest.Cluster
	addr     string
	stop     func()
}

func (s *fanoutSetup) close() {
	if s.stop != nil {
		s.stop()
	}
	for _, c := range s.clusters {
		if c != nil {
			c.Close()
		}
	}
}

func fanoutSystem(n int) string { return fmt.Sprintf("%d shards", n) }

func runDBFanout(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	counts := []int{2, 4, 8}
	if h.opts.smoke {
		counts = []int{2}
	}
	var systems []string
	for _, n := range counts {
		systems = append(systems, fanoutSystem(n))
	}
	res.Systems, res.Baseline = systems, fanoutSystem(2)
	d := h.dur(h.opts.pgDur, 3*time.Second, time.Second)
	res.Settings["postgres"] = "per shard count, that many pgtest single-node clusters (no replicas), started concurrently"
	res.Settings["data"] = fmt.Sprintf("items(id bigint primary key, v int): %d rows in total, split by the shard map (hash on id), v = id*7919 mod 100003", fanoutRows)
	res.Settings["dbproxy"] = "one in-process dbproxy per shard count (pgproxy.New + Serve), transaction pooling, pool size 20 per shard, sharding {version: 1, shards: N, tables: [{table: items, column: id, type: bigint, function: hash}]}"
	res.Settings["pgbench"] = fmt.Sprintf("pgbench -n -c %d -j %d -M simple -T %s -f script, through the proxy; single-key: \\set id random(1, %d) + SELECT v FROM items WHERE id = :id; fan-out: SELECT id, v FROM items ORDER BY v DESC, id LIMIT 10", fanoutClients, fanoutJobs, d, fanoutRows)
	res.Settings["rounds"] = "all shard counts are up at once; every round runs each shard count in turn (single-key, then fan-out); ratios to 2 shards are per round"

	single := filepath.Join(h.tmp, "fanout-single.sql")
	fan := filepath.Join(h.tmp, "fanout-all.sql")
	if err := os.WriteFile(single, fmt.Appendf(nil, "\\set id random(1, %d)\nSELECT v FROM items WHERE id = :id;\n", fanoutRows), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(fan, []byte("SELECT id, v FROM items ORDER BY v DESC, id LIMIT 10;\n"), 0o644); err != nil {
		return err
	}

	run := map[string]*fanoutSetup{}
	defer func() {
		for _, s := range run {
			s.close()
		}
	}()
	for _, n := range counts {
		name := fanoutSystem(n)
		h.prog.begin(0, "starting %d PostgreSQL shards, loading %d rows, dbproxy", n, fanoutRows)
		s, err := startFanout(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.prog.end("FAILED: %v", err)
			for r := range h.roundsOf() {
				rec.fail(name, r, err)
			}
			continue
		}
		run[name] = s
		h.prog.end("dbproxy on %s", s.addr)
	}

	for r := range h.roundsOf() {
		for _, name := range systems {
			s := run[name]
			if s == nil {
				continue
			}
			tps := map[string]float64{}
			for _, w := range []struct {
				k      metricKey
				label  string
				script string
			}{{mFanSingle, "single-key", single}, {mFanOut, "fan-out", fan}} {
				h.prog.begin(d, "round %d/%d %s %s", r+1, h.roundsOf(), name, w.label)
				pr, err := h.pgbench(ctx, pgbenchSpec{Addr: s.addr, User: benchPG, Database: benchDB, Script: w.script, Protocol: "simple", Clients: fanoutClients, Jobs: fanoutJobs, Duration: d})
				if err == nil && pr.Failed > 0 {
					err = fmt.Errorf("%d failed transactions", pr.Failed)
				}
				if err != nil {
					if h.failed(ctx, rec, name+" "+w.label, r, err) {
						return ctx.Err()
					}
					continue
				}
				rec.add(w.k, name, r, pr.TPS)
				tps[w.label] = pr.TPS
				h.prog.end("%.0f TPS (avg %.2fms)", pr.TPS, pr.LatencyMs)
			}
			if a, b := tps["fan-out"], tps["single-key"]; a > 0 && b > 0 {
				rec.add(mFanRatio, name, r, a/b)
			}
		}
	}
	rec.finish()
	g := rec.ratioGoal("fan-out read throughput at 8 shards ≥ 0.25× at 2 shards (informational)", mFanOut.Group, mFanOut.Name, fanoutSystem(8), fanoutSystem(2), ">=", 0.25)
	var note string
	for _, name := range systems {
		f, sk, ra := rec.find(mFanOut.Group, mFanOut.Name, name), rec.find(mFanSingle.Group, mFanSingle.Name, name), rec.find(mFanRatio.Group, mFanRatio.Name, name)
		if f == nil || sk == nil || ra == nil || !f.Median.ok() || !sk.Median.ok() || !ra.Median.ok() {
			continue
		}
		if note != "" {
			note += "; "
		}
		note += fmt.Sprintf("%s: fan-out %s TPS, single-key %s TPS, ratio %s", name, fmtNum(f.Median), fmtNum(sk.Median), fmtNum(ra.Median))
	}
	if note != "" {
		if g.Note != "" {
			note = g.Note + "; " + note
		}
		g.Note = note
		res.Goals[len(res.Goals)-1] = g
	}
	return nil
}

// startFanout starts n single-node clusters concurrently, loads the
// items table split by the shard map and starts an in-process dbproxy in
// front of them.
func startFanout(ctx context.Context, n int) (*fanoutSetup, error) {
	s := &fanoutSetup{name: fanoutSystem(n), shards: n, clusters: make([]*pgtest.Cluster, n)}
	smap := shardmap.Config{Version: 1, Shards: shardmap.Shards{Count: n}, Tables: []shardmap.TableConfig{{
		Table: "items", Column: "id", FunctionConfig: shardmap.FunctionConfig{Type: "bigint", Function: "hash"},
	}}}
	m, err := shardmap.New(smap)
	if err != nil {
		return nil, err
	}
	rows := make([][][]any, n)
	for id := int64(1); id <= fanoutRows; id++ {
		i, err := m.ShardFor("items", shardmap.Int64Key(id))
		if err != nil {
			return nil, err
		}
		rows[i] = append(rows[i], []any{id, int32(id * 7919 % 100003)})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		wg.Go(func() {
			c, err := startFanoutShard(ctx, fmt.Sprintf("fan%d_%d", n, i), rows[i])
			mu.Lock()
			defer mu.Unlock()
			s.clusters[i] = c
			if err != nil {
				errs = append(errs, fmt.Errorf("shard %d: %w", i, err))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.close()
		return nil, err
	}

	db := pgproxy.DatabaseConfig{Sharding: &smap}
	for _, c := range s.clusters {
		db.Shards = append(db.Shards, pgproxy.ShardConfig{Primary: c.Primary().Addr()})
	}
	cfg := &pgproxy.Config{
		Listen:    "127.0.0.1:0",
		Users:     []pgproxy.UserConfig{{Name: benchPG, Auth: "trust"}},
		Databases: map[string]pgproxy.DatabaseConfig{benchDB: db},
	}
	cfg.Pool.Mode = "transaction"
	cfg.Pool.Size = 20
	cfg.Pool.QueryWaitTimeout = 5 * time.Second
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		s.close()
		return nil, err
	}
	srv, err := pgproxy.New(cfg, pgproxy.Options{Log: zap.NewNop()})
	if err != nil {
		s.close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	s.addr = ln.Addr().String()
	s.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	}
	check := pgCheck(s.addr)
	if err := pollUntil(ctx, 30*time.Second, func() bool { return check() == nil }); err != nil {
		s.close()
		return nil, fmt.Errorf("dbproxy on %s did not answer: %w", s.addr, err)
	}
	return s, nil
}

// startFanoutShard starts one single-node cluster with the bench role and
// database and loads its rows of items.
func startFanoutShard(ctx context.Context, name string, rows [][]any) (*pgtest.Cluster, error) {
	c, err := pgtest.StartCluster(ctx, pgtest.Spec{Name: name, Replicas: 0})
	if err != nil {
		return nil, err
	}
	p := c.Primary()
	for _, sql := range []string{
		"CREATE ROLE " + benchPG + " LOGIN",
		"CREATE DATABASE " + benchDB + " OWNER " + benchPG,
	} {
		if err := p.Exec(ctx, sql); err != nil {
			return c, fmt.Errorf("%s: %w", sql, err)
		}
	}
	conn, err := pgx.Connect(ctx, p.DSNFor(benchDB, benchPG, ""))
	if err != nil {
		return c, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL)"); err != nil {
		return c, err
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "v"}, pgx.CopyFromRows(rows)); err != nil {
		return c, err
	}
	if _, err := conn.Exec(ctx, "ANALYZE items"); err != nil {
		return c, err
	}
	return c, nil
}
