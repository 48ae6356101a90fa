package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// healthQuery reads a node's role and WAL position in one round trip:
// recovery state, replay LSN on a replica or current LSN on a primary, and
// the age of the last replayed transaction.
const healthQuery = `SELECT pg_is_in_recovery(),
	(CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END)::text,
	coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8`

// probeResult is one successful check.
type probeResult struct {
	inRecovery bool
	lsn        uint64
	replayAge  float64 // seconds since the last replayed commit (replicas)
}

// checkLoop checks node n every health.interval on a dedicated connection
// until ctx ends. It applies rise/fall and recomputes replica lag.
func (srv *Server) checkLoop(ctx context.Context, n *node) {
	log := srv.log.Named("health").With(zap.String("node", n.addr), zap.String("role", n.role))
	var conn *pgconn.PgConn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	for {
		rt := srv.rt.Load()
		hc := rt.cfg.Health
		func() {
			defer srv.recoverLog("health check " + n.addr)
			res, err := srv.probe(ctx, rt, n, &conn)
			if ctx.Err() != nil {
				return
			}
			srv.record(log, rt, n, res, err)
		}()
		t := time.NewTimer(hc.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// probe runs healthQuery, (re)connecting when needed.
func (srv *Server) probe(ctx context.Context, rt *runtime, n *node, conn **pgconn.PgConn) (probeResult, error) {
	hc := rt.cfg.Health
	cctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	if *conn == nil || (*conn).IsClosed() {
		c, err := srv.healthConnect(cctx, rt, n)
		if err != nil {
			return probeResult{}, err
		}
		*conn = c
	}
	results, err := (*conn).Exec(cctx, healthQuery).ReadAll()
	if err == nil && (len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 3) {
		err = errors.New("health query returned an unexpected result")
	}
	if err != nil {
		_ = (*conn).Close(context.Background())
		*conn = nil
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

func (srv *Server) healthConnect(ctx context.Context, rt *runtime, n *node) (*pgconn.PgConn, error) {
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
	p, _ := strconv.ParseUint(port, 10, 16)
	cfg.Host, cfg.Port, cfg.User, cfg.Password = host, uint16(p), user, password
	cfg.Database = rt.clusters[n.db].serverDB
	cfg.Fallbacks, cfg.TLSConfig, cfg.ValidateConnect = nil, nil, nil
	cfg.RuntimeParams = map[string]string{"application_name": "tiergate-health"}
	return pgconn.ConnectConfig(ctx, cfg)
}

// record applies one check result to the node's state.
func (srv *Server) record(log *zap.Logger, rt *runtime, n *node, res probeResult, err error) {
	hc := rt.cfg.Health
	n.checked.Store(true)
	n.lastCheck.Store(time.Now().UnixNano())
	if err != nil {
		msg := err.Error()
		n.lastErr.Store(&msg)
		n.passes.Store(0)
		if n.fails.Add(1) >= int32(hc.Fall) && n.healthy.Swap(false) {
			log.Warn("node down", zap.Error(err))
			for _, p := range *n.pools.Load() {
				p.purgeIdle()
			}
		}
		n.publish()
		srv.metrics.nodeState(n)
		return
	}
	n.fails.Store(0)
	n.inRecovery.Store(res.inRecovery)
	n.lsn.Store(res.lsn)
	wrongRole := res.inRecovery != (n.role == roleReplica)
	if wrongRole {
		msg := fmt.Sprintf("configured as %s but pg_is_in_recovery() = %v", n.role, res.inRecovery)
		n.lastErr.Store(&msg)
	} else {
		empty := ""
		n.lastErr.Store(&empty)
	}
	if n.role == roleReplica {
		var lag int64
		if cl := rt.clusters[n.db]; cl != nil {
			if p := cl.primary.lsn.Load(); p > res.lsn {
				lag = int64(p - res.lsn)
			}
		}
		n.lagBytes.Store(lag)
		secs := 0.0
		if lag > 0 {
			secs = math.Max(res.replayAge, 0)
		}
		n.lagSeconds.Store(math.Float64bits(secs))
	}
	if !n.healthy.Load() && n.passes.Add(1) >= int32(hc.Rise) {
		n.healthy.Store(true)
		log.Info("node up")
	}
	n.publish()
	srv.metrics.nodeState(n)
}
