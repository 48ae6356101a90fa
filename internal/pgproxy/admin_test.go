package pgproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

func consoleQuery(t *testing.T, ctx context.Context, pc *pgconn.PgConn, sql string) []map[string]string {
	t.Helper()
	res, err := pc.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out []map[string]string
	for _, r := range res {
		for _, row := range r.Rows {
			m := map[string]string{}
			for i, f := range r.FieldDescriptions {
				m[f.Name] = string(row[i])
			}
			out = append(out, m)
		}
	}
	return out
}

func TestConsole(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	p.waitReplicasReadable(t, ctx)
	app := p.connect(t, ctx)
	if _, err := app.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	pc, err := pgconn.Connect(ctx, strings.Replace(p.dsn("admin", "admin-secret"), "/app?", "/tiergate?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())

	var nodes []map[string]string
	waitFor(t, ctx, "SHOW NODES to list three healthy nodes in their roles", func() bool {
		nodes = consoleQuery(t, ctx, pc, "SHOW NODES")
		if len(nodes) != 3 {
			t.Fatalf("SHOW NODES: %v", nodes)
		}
		for _, n := range nodes {
			if n["healthy"] != "true" || (n["role"] == "replica") != (n["in_recovery"] == "true") {
				return false
			}
		}
		return true
	})
	pools := consoleQuery(t, ctx, pc, "show pools;")
	if len(pools) != 9 { // 3 users x 3 nodes
		t.Fatalf("SHOW POOLS: %d rows", len(pools))
	}
	clients := consoleQuery(t, ctx, pc, "SHOW CLIENTS")
	if len(clients) != 2 {
		t.Fatalf("SHOW CLIENTS: %v", clients)
	}
	if rows := consoleQuery(t, ctx, pc, "SHOW SERVERS"); len(rows) == 0 {
		t.Fatal("SHOW SERVERS: none")
	}
	stats := consoleQuery(t, ctx, pc, "SHOW STATS")
	if len(stats) != 1 || stats[0]["replica_queries"] == "0" {
		t.Fatalf("SHOW STATS: %v", stats)
	}
	conf := consoleQuery(t, ctx, pc, "SHOW CONFIG")
	found := false
	for _, r := range conf {
		found = found || (r["key"] == "pool.mode" && r["value"] == "transaction")
	}
	if !found {
		t.Fatalf("SHOW CONFIG: %v", conf)
	}
	if _, err := pc.Exec(ctx, "SHOW NONSENSE").ReadAll(); !isPgCode(err, "42601") {
		t.Fatalf("unknown command: %v", err)
	}

	// PAUSE waits for running transactions and holds new ones until RESUME.
	if _, err := pc.Exec(ctx, "PAUSE").ReadAll(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := app.Exec(ctx, "SELECT 1")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("query ran while paused: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := pc.Exec(ctx, "RESUME").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// RELOAD without a config file source is refused.
	if _, err := pc.Exec(ctx, "RELOAD").ReadAll(); !isPgCode(err, "0A000") {
		t.Fatalf("RELOAD: %v", err)
	}
	// Extended protocol is refused, the console stays usable.
	if _, err := pc.ExecParams(ctx, "SHOW POOLS", nil, nil, nil, nil).Close(); err == nil {
		t.Fatal("extended protocol on the console succeeded")
	}
	if rows := consoleQuery(t, ctx, pc, "SHOW STATS"); len(rows) != 1 {
		t.Fatal("console broken after an extended-protocol attempt")
	}

	// Not an admin.
	if _, err := pgconn.Connect(ctx, strings.Replace(p.dsn("app", appPassword), "/app?", "/tiergate?", 1)); !isPgCode(err, "42501") {
		t.Fatalf("non-admin on the console: %v", err)
	}

	// psql works against the console.
	if _, err := exec.LookPath("psql"); err == nil {
		host, port, _ := net.SplitHostPort(p.addr)
		cmd := exec.CommandContext(ctx, "psql", "-h", host, "-p", port, "-U", "admin", "-d", "tiergate", "-c", "SHOW NODES")
		cmd.Env = append(os.Environ(), "PGPASSWORD=admin-secret", "PGSSLMODE=prefer")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "in_recovery") {
			t.Fatalf("psql: %v\n%s", err, out)
		}
	}
}

func TestSessionMode(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Mode = PoolModeSession
	cfg.Pool.Size = 2
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	conn := p.connect(t, ctx)
	var pid1, pid2 int
	var rec bool
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid(), pg_is_in_recovery()").Scan(&pid1, &rec); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET statement_timeout = '12s'"); err != nil {
		t.Fatal(err)
	}
	var st string
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('statement_timeout')").Scan(&pid2, &st); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 || rec || st != "12s" {
		t.Fatalf("session mode: pids %d/%d, in recovery %v, statement_timeout %q", pid1, pid2, rec, st)
	}
	conn.Close(ctx)
	// The next client gets a reset connection.
	conn2 := p.connect(t, ctx)
	if err := conn2.QueryRow(ctx, "SELECT current_setting('statement_timeout')").Scan(&st); err != nil || st != "0" {
		t.Fatalf("next client sees statement_timeout %q (%v)", st, err)
	}
}

func TestReloadKeepsClients(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	conn := p.connect(t, ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	next := testConfig(c)
	next.Pool.Size = 3 // new pools
	next.Users = append(next.Users, UserConfig{Name: "late", Password: "late-pw", ServerUser: "app", ServerPassword: appPassword})
	next.SetDefaults()
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	// The open transaction finishes on its old connection.
	if _, err := tx.Exec(ctx, "SELECT 2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT 3"); err != nil {
		t.Fatal(err)
	}
	late, err := pgx.Connect(ctx, p.dsn("late", "late-pw"))
	if err != nil {
		t.Fatalf("user added by reload: %v", err)
	}
	late.Close(ctx)
	for _, pl := range p.srv.rt.Load().allPools() {
		if pl.cfg.Size != 3 {
			t.Fatalf("pool %s has size %d after reload", pl, pl.cfg.Size)
		}
	}
}

func TestShutdownWaitsForTransactions(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.ShutdownTimeout = 20 * time.Second
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	idle := p.connect(t, ctx)
	busy := p.connect(t, ctx)
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS shut (i int)"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.stop() }()
	waitFor(t, ctx, "draining", func() bool { return p.srv.draining.Load() })
	// The idle client is closed with admin_shutdown.
	_, err = idle.Exec(ctx, "SELECT 1")
	if err == nil {
		t.Fatal("idle client still served during shutdown")
	}
	// New clients are refused.
	if _, err := pgx.Connect(ctx, p.dsn("app", appPassword)); err == nil {
		t.Fatal("new client accepted during shutdown")
	}
	// The transaction can finish.
	if _, err := tx.Exec(ctx, "INSERT INTO shut VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	var pe *pgconn.PgError
	if _, err := busy.Exec(ctx, "SELECT 1"); err == nil || (errors.As(err, &pe) && pe.Code != "57P01") {
		t.Fatalf("after its transaction the client should be closed: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.SetDefaults()
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Options{Log: zap.NewNop(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() { cancel(); <-done }()
	ctx := ctxT(t, time.Minute)
	p := &testProxy{srv: srv, addr: ln.Addr().String()}
	p.waitReplicasReadable(t, ctx)
	conn := p.connect(t, ctx)
	for i := 0; i < 5; i++ {
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = conn.Exec(ctx, "SELECT 1/0")
	if n := testutil.ToFloat64(srv.metrics.queries.WithLabelValues("app", "replica")); n < 5 {
		t.Errorf("replica queries = %v", n)
	}
	if n := testutil.ToFloat64(srv.metrics.errors.WithLabelValues("22012")); n != 1 {
		t.Errorf("errors{22012} = %v", n)
	}
	names := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"tiergate_dbproxy_queries_total", "tiergate_dbproxy_query_duration_seconds", "tiergate_dbproxy_errors_total",
		"tiergate_dbproxy_node_healthy", "tiergate_dbproxy_replica_lag_bytes", "tiergate_dbproxy_client_connections", "tiergate_dbproxy_server_connections"} {
		if !names[want] {
			t.Errorf("metric %s missing", want)
		}
	}
}
