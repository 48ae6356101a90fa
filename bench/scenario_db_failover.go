package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	peers "github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/pgproxy"
	"github.com/tiergate/tiergate/internal/pgtest"
)

// The failover scenario's system: three in-process dbproxy peers with
// failover on, in front of a primary and two synchronous replicas.
const (
	sysDBProxyHA   = "dbproxy (3 peers, failover)"
	failoverPeers  = 3
	failoverUser   = "app"
	failoverPass   = "app"
	failoverDB     = "app"
	failoverBudget = 60 * time.Second // a run whose writes do not come back by then failed
)

var (
	mFailover      = metricKey{Name: "failover time", Group: "primary kill → a write succeeded through every proxy", Unit: "s", Better: "lower"}
	mFailoverFirst = metricKey{Name: "first proxy", Group: "primary kill → a write succeeded through the first proxy", Unit: "s", Better: "lower"}
)

func dbFailoverScenario() scenario {
	return scenario{
		name:  "db-failover",
		title: "dbproxy failover time: primary killed under writes through 3 peers, until a write succeeds through every proxy",
		needs: []string{"postgres"},
		run:   runDBFailover,
	}
}

// failoverRun is one run's outcome, listed in the JSON settings.
type failoverRun struct {
	Run      int     `json:"run"`
	Seconds  float64 `json:"failover_s,omitempty"`
	First    float64 `json:"first_proxy_s,omitempty"`
	Kill     float64 `json:"kill_s,omitempty"` // how long Kill() took (not counted)
	Acked    int     `json:"acked_rows,omitempty"`
	Promoted string  `json:"promoted,omitempty"`
	Error    string  `json:"error,omitempty"`
}

func runDBFailover(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	runs := h.opts.failoverRuns
	if runs <= 0 {
		runs = 10
		if h.opts.smoke {
			runs = 1
		}
	}
	// Every run is one round: -rounds does not apply (-failover-runs does).
	res.Rounds, rec.rounds = runs, runs
	res.Systems = []string{sysDBProxyHA}
	res.Settings["runs"] = fmt.Sprintf("%d runs, each on a fresh cluster (-failover-runs; -rounds does not apply)", runs)
	res.Settings["postgres"] = "pgtest cluster: primary + 2 replicas, synchronous (ANY 1), wal_retrieve_retry_interval 200ms"
	res.Settings["dbproxy"] = "3 peers in the bench process (pgproxy.New + Serve): cluster profile local, lease 2s, heartbeat 200ms, raft_timeout 1s; failover_after 1s, check_interval 250ms; health every 150ms, timeout 140ms"
	res.Settings["load"] = "one writer per proxy: INSERT of a numbered row, retried on SQLSTATE 25006 and (with a new connection) on connection errors; connect timeout 2s, statement timeout 3s"
	res.Settings["measure"] = "from the return of Kill() of the primary (postmaster and every backend SIGKILLed and gone; kill_s is how long that took) until an INSERT issued after the kill was acknowledged through every proxy; a run counts only if every acknowledged row is on the promoted node and exactly one replica was promoted"

	var list []failoverRun
	for r := range runs {
		h.prog.begin(0, "run %d/%d: cluster, 3 proxies, kill the primary", r+1, runs)
		fr, err := h.failoverOnce(ctx, r)
		fr.Run = r + 1
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.prog.end("FAILED: %v", err)
			fr.Error = err.Error()
			rec.fail(sysDBProxyHA, r, err)
			list = append(list, fr)
			continue
		}
		list = append(list, fr)
		rec.add(mFailover, sysDBProxyHA, r, fr.Seconds)
		rec.add(mFailoverFirst, sysDBProxyHA, r, fr.First)
		h.prog.end("%.2fs (first proxy %.2fs), %d acknowledged rows all on %s", fr.Seconds, fr.First, fr.Acked, fr.Promoted)
	}
	res.Settings["per_run"] = list
	rec.finish()
	g := rec.absGoal("failover time ≤ 10 s (median)", mFailover.Group, mFailover.Name, sysDBProxyHA, "<=", 10)
	if m := rec.find(mFailover.Group, mFailover.Name, sysDBProxyHA); m != nil && m.Median.ok() {
		ok := 0
		for _, v := range m.Values {
			if v.ok() {
				ok++
			}
		}
		g.Note = fmt.Sprintf("min %s s, median %s s, max %s s over %d of %d runs", fmtNum(m.Min), fmtNum(m.Median), fmtNum(m.Max), ok, runs)
		res.Goals[len(res.Goals)-1] = g
	}
	return nil
}

// failoverOnce is one run: a fresh cluster and proxies, a write load, the
// primary killed, the time until every proxy writes again, and the check
// that no acknowledged row was lost.
func (h *harness) failoverOnce(ctx context.Context, run int) (failoverRun, error) {
	var fr failoverRun
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := pgtest.StartCluster(ctx, pgtest.Spec{Name: fmt.Sprintf("failover%d", run+1), Replicas: 2, Sync: true,
		Conf: map[string]string{"wal_retrieve_retry_interval": "'200ms'"}})
	if err != nil {
		return fr, err
	}
	defer c.Close()
	p := c.Primary()
	for _, sql := range []string{
		"CREATE ROLE " + failoverUser + " LOGIN PASSWORD '" + failoverPass + "'",
		"CREATE DATABASE " + failoverDB + " OWNER " + failoverUser,
	} {
		if err := p.Exec(ctx, sql); err != nil {
			return fr, fmt.Errorf("%s: %w", sql, err)
		}
	}
	setup, err := pgx.Connect(ctx, p.DSNFor(failoverDB, failoverUser, failoverPass))
	if err != nil {
		return fr, err
	}
	_, err = setup.Exec(ctx, "CREATE TABLE acked (id bigint PRIMARY KEY, proxy int NOT NULL)")
	_ = setup.Close(context.Background())
	if err != nil {
		return fr, err
	}
	if err := c.WaitReplayed(ctx); err != nil {
		return fr, err
	}
	addrs, stop, err := startFailoverProxies(ctx, c)
	if err != nil {
		return fr, err
	}
	defer stop()

	w := newFailoverWriters(len(addrs))
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { w.write(wctx, i, a) })
	}
	defer func() {
		stopWriters()
		wg.Wait()
	}()
	if err := pollUntil(ctx, failoverBudget, w.allWrote); err != nil {
		return fr, fmt.Errorf("writes through every proxy before the kill: %w", err)
	}
	// The clock starts when Kill has returned, i.e. every server process
	// is gone: a write sent before that may still be acknowledged by the
	// old primary and must not count as recovered.
	old := c.Primary()
	killStart := time.Now()
	if err := old.Kill(); err != nil {
		return fr, err
	}
	killed := time.Now()
	w.killed.Store(killed.UnixNano())
	fr.Kill = killed.Sub(killStart).Seconds()
	if err := pollUntil(ctx, failoverBudget, w.allRecovered); err != nil {
		return fr, fmt.Errorf("writes through every proxy after the kill (%d of %d proxies recovered): %w", w.recovered(), len(addrs), err)
	}
	stopWriters()
	wg.Wait()
	first, last := w.span()
	fr.First, fr.Seconds = time.Duration(first-killed.UnixNano()).Seconds(), time.Duration(last-killed.UnixNano()).Seconds()

	promoted, err := promotedNode(ctx, c, old)
	if err != nil {
		return fr, err
	}
	fr.Promoted = promoted.Name
	acked := w.ackedIDs()
	fr.Acked = len(acked)
	missing, err := missingRows(ctx, promoted, acked)
	if err != nil {
		return fr, err
	}
	if len(missing) > 0 {
		return fr, fmt.Errorf("failover took %.2fs but %d of %d acknowledged rows are missing on the promoted node %s, e.g. %v",
			fr.Seconds, len(missing), len(acked), promoted.Name, missing[:min(5, len(missing))])
	}
	return fr, nil
}

// startFailoverProxies starts the dbproxy peers in-process and returns
// their client addresses and a function that stops them.
func startFailoverProxies(ctx context.Context, c *pgtest.Cluster) ([]string, func(), error) {
	gossip, raft := make([]string, failoverPeers), make([]string, failoverPeers)
	var peerList []peers.PeerConfig
	for i := range failoverPeers {
		var err error
		if gossip[i], err = freeAddr(); err != nil {
			return nil, nil, err
		}
		if raft[i], err = freeAddr(); err != nil {
			return nil, nil, err
		}
		peerList = append(peerList, peers.PeerConfig{Name: fmt.Sprintf("proxy%d", i+1), Raft: raft[i]})
	}
	var (
		addrs []string
		dones []chan error
	)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := func() {
		cancel()
		for _, d := range dones {
			select {
			case <-d:
			case <-time.After(30 * time.Second):
			}
		}
	}
	for i := range failoverPeers {
		cfg := failoverProxyConfig(c)
		cfg.Cluster = &peers.Config{
			NodeName: fmt.Sprintf("proxy%d", i+1), Bind: gossip[i], RaftBind: raft[i], Peers: peerList, Seeds: gossip,
			Profile: peers.ProfileLocal, Label: "tiergate-bench-failover",
			Lease: 2 * time.Second, Heartbeat: 200 * time.Millisecond, RaftTimeout: time.Second, RejoinInterval: 500 * time.Millisecond,
		}
		cfg.Failover = &failover.Config{FailoverAfter: time.Second, CheckInterval: 250 * time.Millisecond, CheckTimeout: time.Second, SSLMode: "disable"}
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			stop()
			return nil, nil, err
		}
		srv, err := pgproxy.New(cfg, pgproxy.Options{Log: zap.NewNop()})
		if err != nil {
			stop()
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, err
		}
		done := make(chan error, 1)
		dones = append(dones, done)
		go func() { done <- srv.Serve(sctx, ln) }()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, stop, nil
}

// failoverProxyConfig is one peer's users, database and checks (without
// the cluster and failover sections).
func failoverProxyConfig(c *pgtest.Cluster) *pgproxy.Config {
	db := pgproxy.DatabaseConfig{Primary: c.Primary().Addr()}
	for _, r := range c.Replicas() {
		db.Replicas = append(db.Replicas, r.Addr())
	}
	cfg := &pgproxy.Config{
		Listen:    "127.0.0.1:0",
		Users:     []pgproxy.UserConfig{{Name: failoverUser, Password: failoverPass}},
		Databases: map[string]pgproxy.DatabaseConfig{failoverDB: db},
	}
	cfg.Pool.Size = 8
	cfg.Health.Interval = 150 * time.Millisecond
	cfg.Health.Timeout = 140 * time.Millisecond
	cfg.Health.Rise = 1
	return cfg
}

// failoverWriters is the write load: one writer per proxy, numbered rows,
// the ids of acknowledged rows, and per proxy the time of the first
// acknowledgement of an INSERT sent after the kill.
type failoverWriters struct {
	next   atomic.Int64
	killed atomic.Int64 // unix ns, 0 before the kill
	wrote  []atomic.Bool
	first  []atomic.Int64 // unix ns of the first acknowledgement sent after the kill
	mu     sync.Mutex
	acked  []int64
}

func newFailoverWriters(n int) *failoverWriters {
	return &failoverWriters{wrote: make([]atomic.Bool, n), first: make([]atomic.Int64, n)}
}

// write inserts rows through the proxy at addr until ctx ends.
func (w *failoverWriters) write(ctx context.Context, i int, addr string) {
	dsn := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", failoverUser, failoverPass, addr, failoverDB)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := pgx.Connect(cctx, dsn)
			cancel()
			if err != nil {
				pause(ctx, 10*time.Millisecond)
				continue
			}
			conn = c
		}
		id := w.next.Add(1)
		sent := time.Now().UnixNano()
		ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := conn.Exec(ictx, "INSERT INTO acked VALUES ($1, $2)", id, i)
		cancel()
		if err == nil {
			now := time.Now().UnixNano()
			w.mu.Lock()
			w.acked = append(w.acked, id)
			w.mu.Unlock()
			w.wrote[i].Store(true)
			if k := w.killed.Load(); k != 0 && sent > k {
				w.first[i].CompareAndSwap(0, now)
			}
			continue
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "25006" { // read-only: fenced, the proxy has no primary yet
			pause(ctx, 5*time.Millisecond)
			continue
		}
		_ = conn.Close(context.Background())
		conn = nil
		pause(ctx, 10*time.Millisecond)
	}
}

func (w *failoverWriters) allWrote() bool {
	for i := range w.wrote {
		if !w.wrote[i].Load() {
			return false
		}
	}
	return true
}

func (w *failoverWriters) recovered() int {
	n := 0
	for i := range w.first {
		if w.first[i].Load() != 0 {
			n++
		}
	}
	return n
}

func (w *failoverWriters) allRecovered() bool { return w.recovered() == len(w.first) }

// span is the earliest and the latest first acknowledgement after the kill.
func (w *failoverWriters) span() (first, last int64) {
	for i := range w.first {
		t := w.first[i].Load()
		if first == 0 || t < first {
			first = t
		}
		last = max(last, t)
	}
	return first, last
}

func (w *failoverWriters) ackedIDs() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// promotedNode is the one node other than old that is out of recovery.
func promotedNode(ctx context.Context, c *pgtest.Cluster, old *pgtest.Node) (*pgtest.Node, error) {
	var promoted []*pgtest.Node
	for _, n := range c.Nodes {
		if n == old {
			continue
		}
		var inRecovery bool
		if err := n.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			return nil, err
		}
		if !inRecovery {
			promoted = append(promoted, n)
		}
	}
	if len(promoted) != 1 {
		return nil, fmt.Errorf("%d nodes out of recovery after the failover, want exactly 1", len(promoted))
	}
	return promoted[0], nil
}

// missingRows lists the acknowledged ids that are not on n.
func missingRows(ctx context.Context, n *pgtest.Node, acked []int64) ([]int64, error) {
	conn, err := pgx.Connect(ctx, n.DSNFor(failoverDB, "postgres", ""))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT id FROM acked")
	if err != nil {
		return nil, err
	}
	present := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		present[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing []int64
	for _, id := range acked {
		if !present[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	return missing, nil
}

// pollUntil checks cond every 10ms until it holds, ctx ends or budget
// passes.
func pollUntil(ctx context.Context, budget time.Duration, cond func() bool) error {
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not within %s", budget)
		case <-tick.C:
		}
	}
	return nil
}

// pause waits d or until ctx ends (a retry back-off, not a state wait).
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
