package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/health"
)

// healthQuery reads a node's role and WAL position in one round trip:
// recovery state, replay LSN on a replica or current LSN on a primary, and
// the age of the last replayed transaction.
const healthQuery = `SELECT pg_is_in_recovery(),
	(CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END)::text,
	coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8`

// pgProbe is the Postgres health.Probe: it runs healthQuery on a dedicated
// connection to one node and records the node's role, WAL position and lag
// (the health.Manager applies rise/fall to pass/fail and tells the Server
// through its Listener).
type pgProbe struct {
	srv  *Server
	n    *node
	conn *pgconn.PgConn
}

var (
	_ health.Probe = (*pgProbe)(nil)
	_ io.Closer    = (*pgProbe)(nil)
)

// nodeID is a node's identity for the health manager: the same node object
// (kept across reloads) keeps the same ID.
func nodeID(n *node) string { return n.db + "|" + n.role + "|" + n.addr }

// probeFactory makes the probe of a node of the current runtime.
func (srv *Server) probeFactory(t health.Target) (health.Probe, error) {
	n := srv.rt.Load().nodes[t.ID]
	if n == nil {
		return nil, fmt.Errorf("unknown node %q", t.ID)
	}
	return &pgProbe{srv: srv, n: n}, nil
}

// Check implements health.Probe. A pass is any answer; a node in the wrong
// role passes (it is up) but readable() keeps reads off it.
func (p *pgProbe) Check(ctx context.Context) (health.Result, error) {
	rt := p.srv.rt.Load()
	n := p.n
	res, err := p.query(ctx, rt)
	n.checked.Store(true)
	n.lastCheck.Store(time.Now().UnixNano())
	if err != nil {
		msg := err.Error()
		n.lastErr.Store(&msg)
		if ctx.Err() != nil || isTimeout(err) {
			return health.Result{}, fmt.Errorf("%w: %v", health.ErrTimeout, err)
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			return health.Result{}, fmt.Errorf("%w: %v", health.ErrConnect, err)
		}
		return health.Result{}, err
	}
	n.inRecovery.Store(res.inRecovery)
	n.lsn.Store(res.lsn)
	if role := p.srv.expectedRole(n); res.inRecovery != (role == roleReplica) {
		msg := fmt.Sprintf("should be %s but pg_is_in_recovery() = %v", role, res.inRecovery)
		n.lastErr.Store(&msg)
	} else {
		empty := ""
		n.lastErr.Store(&empty)
	}
	if n.role == roleReplica {
		var lag int64
		if cl := rt.clusters[n.db]; cl != nil {
			if prim := cl.primary.lsn.Load(); prim > res.lsn {
				lag = int64(prim - res.lsn)
			}
		}
		n.lagBytes.Store(lag)
		secs := 0.0
		if lag > 0 {
			secs = math.Max(res.replayAge, 0)
		}
		n.lagSeconds.Store(math.Float64bits(secs))
	}
	n.publish()
	p.srv.metrics.nodeState(n)
	return health.Result{Detail: fmt.Sprintf("in_recovery=%v lsn=%s", res.inRecovery, formatLSN(res.lsn))}, nil
}

// Close implements io.Closer: the manager calls it when the node's checker
// stops.
func (p *pgProbe) Close() error {
	if p.conn != nil {
		_ = p.conn.Close(context.Background())
		p.conn = nil
	}
	return nil
}

// probeResult is one successful check.
type probeResult struct {
	inRecovery bool
	lsn        uint64
	replayAge  float64 // seconds since the last replayed commit (replicas)
}

// query runs healthQuery, (re)connecting when needed.
func (p *pgProbe) query(ctx context.Context, rt *runtime) (probeResult, error) {
	if p.conn == nil || p.conn.IsClosed() {
		c, err := healthConnect(ctx, rt, p.n)
		if err != nil {
			return probeResult{}, err
		}
		p.conn = c
	}
	results, err := p.conn.Exec(ctx, healthQuery).ReadAll()
	if err == nil && (len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 3) {
		err = errors.New("health query returned an unexpected result")
	}
	if err != nil {
		_ = p.Close()
		return probeResult{}, err
	}
	row := results[0].Rows[0]
	lsn, err := parseLSN(string(row[1]))
	if err != nil {
		return probeResult{}, err
	}
	age, _ := strconv.ParseFloat(string(row[2]), 64)
	return probeResult{inRecovery: string(row[0]) == "t", lsn: lsn, replayAge: age}, nil
}

func healthConnect(ctx context.Context, rt *runtime, n *node) (*pgconn.PgConn, error) {
	user, password := rt.cfg.Health.User, rt.cfg.Health.Password
	if user == "" && len(rt.cfg.Users) > 0 {
		user, password = rt.cfg.Users[0].ServerUser, rt.cfg.Users[0].ServerPassword
	}
	host, port, err := net.SplitHostPort(n.addr)
	if err != nil {
		return nil, err
	}
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	pn, _ := strconv.ParseUint(port, 10, 16)
	cfg.Host, cfg.Port, cfg.User, cfg.Password = host, uint16(pn), user, password
	if cl := rt.clusters[n.db]; cl != nil {
		cfg.Database = cl.serverDB
	}
	cfg.Fallbacks, cfg.TLSConfig, cfg.ValidateConnect = nil, nil, nil
	cfg.RuntimeParams = map[string]string{"application_name": "tiergate-health"}
	return pgconn.ConnectConfig(ctx, cfg)
}

// healthListener receives the health manager's verdicts for the Server.
type healthListener struct{ srv *Server }

// HealthChanged implements health.Listener: Up and Down from the active
// checks flip the node. It runs on the node's checker goroutine and only
// sets atomics (and empties the node's idle pools on Down).
func (l healthListener) HealthChanged(c health.Change) {
	srv := l.srv
	n := srv.rt.Load().nodes[c.ID]
	if n == nil {
		return
	}
	switch c.Kind {
	case health.Up:
		n.healthy.Store(true)
		srv.log.Info("node up", zap.String("node", n.addr), zap.String("role", n.role), zap.String("database", n.db))
	case health.Down:
		n.healthy.Store(false)
		srv.log.Warn("node down", zap.String("node", n.addr), zap.String("role", n.role), zap.String("database", n.db), zap.String("reason", c.Reason))
		for _, p := range *n.pools.Load() {
			p.purgeIdle()
		}
	default:
		return
	}
	n.publish()
	srv.metrics.nodeState(n)
}

var _ health.Listener = healthListener{}

// healthTargets lists the nodes of a runtime for the health manager.
func (rt *runtime) healthTargets() []health.Target {
	nodes := rt.allNodes()
	out := make([]health.Target, len(nodes))
	for i, n := range nodes {
		out[i] = health.Target{ID: nodeID(n), Address: n.addr}
	}
	return out
}
