package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	peers "github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/failover"
)

// ha joins this proxy to its peers (memberlist + Raft, internal/cluster)
// and runs the failover manager (internal/failover): which node is each
// database's primary is then decided by the peers, and every write passes
// the manager's fence first. Without a failover section the configured
// primary is simply the primary.
type ha struct {
	node *peers.Node
	mgr  *failover.Manager
}

// newHA builds the peer node and failover manager for cfg, or nil when
// failover is not configured.
func (srv *Server) newHA(cfg *Config, reg prometheus.Registerer) (*ha, error) {
	if cfg.Cluster == nil || cfg.Failover == nil {
		return nil, nil
	}
	node, err := peers.New(*cfg.Cluster, peers.Options{Logger: srv.log.Named("cluster"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	mgr, err := failover.New(*cfg.Failover, node, failover.Options{
		Logger:     srv.log.Named("failover"),
		Registerer: reg,
		OnChange:   srv.primaryChanged,
	})
	if err != nil {
		node.Close()
		return nil, err
	}
	return &ha{node: node, mgr: mgr}, nil
}

// run runs the peer node and the manager until ctx ends.
func (h *ha) run(ctx context.Context, log *zap.Logger) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.node.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("cluster node stopped", zap.Error(err))
		}
	}()
	if err := h.mgr.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("failover manager stopped", zap.Error(err))
	}
	<-done
}

// primaryFor returns the node writes of cluster cl go to now. With
// failover it is the decided primary, and only while this proxy's fence is
// open; the error is then a *failover.FencedError (SQLSTATE 25006,
// retryable). Without failover it is the configured primary.
func (srv *Server) primaryFor(cl *cluster) (*node, error) {
	if srv.ha == nil {
		return cl.primary, nil
	}
	t, err := srv.ha.mgr.CheckWrite(cl.name)
	if err != nil {
		return nil, err
	}
	if cl.primary.addr == t.Addr {
		return cl.primary, nil
	}
	for _, n := range cl.replicas {
		if n.addr == t.Addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w: decided primary %s is not a node of database %s", ErrNoNode, t.Addr, cl.name)
}

// expectedRole is the role node n should have now: with failover, the
// peers' decided primary is the primary whatever the config says.
func (srv *Server) expectedRole(n *node) string {
	if srv.ha != nil {
		if t, ok := srv.ha.mgr.Primary(n.db); ok && t.Addr != "" {
			if t.Addr == n.addr {
				return rolePrimary
			}
			return roleReplica
		}
	}
	return n.role
}

// primaryChanged closes every pooled server connection to demoted nodes:
// a write must never reach the old primary again, even on a connection
// opened before the change.
func (srv *Server) primaryChanged(c failover.Change) {
	rt := srv.rt.Load()
	cl := rt.clusters[c.Shard]
	if cl == nil {
		return
	}
	for _, d := range c.Demoted {
		for _, n := range cl.nodes() {
			if n.addr != d.Address {
				continue
			}
			for _, p := range *n.pools.Load() {
				p.purgeIdle()
				for _, sc := range p.snapshotConns() {
					// Lent connections too: a session mid-transaction on
					// the old primary loses it (its client sees the
					// connection fail) rather than committing there.
					_ = sc.conn.Close()
				}
			}
			n.markDown("demoted by failover (term "+fmt.Sprint(c.Term)+")", rt.cfg.Health.Interval)
		}
	}
	srv.log.Warn("primary changed", zap.String("database", c.Shard), zap.Uint64("term", c.Term),
		zap.String("primary", c.Primary.Address), zap.String("previous", c.PrevPrimary.Address), zap.Bool("changing", c.Changing))
}

// haCommand runs FAILOVER TO, SWITCHOVER TO and REJOIN from the console:
// "FAILOVER TO <node> [IN <database>]". It reports whether q was one.
func (srv *Server) haCommand(ctx context.Context, q string) (handled bool, msg string, err error) {
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(q), ";"))
	if len(f) < 2 {
		return false, "", nil
	}
	verb := strings.ToUpper(f[0])
	var nodeArg string
	rest := f[1:]
	switch verb {
	case "FAILOVER", "SWITCHOVER":
		if len(rest) < 2 || strings.ToUpper(rest[0]) != "TO" {
			return false, "", nil
		}
		nodeArg, rest = rest[1], rest[2:]
	case "REJOIN":
		nodeArg, rest = rest[0], rest[1:]
	default:
		return false, "", nil
	}
	if srv.ha == nil {
		return true, "", errors.New("failover is not configured on this proxy")
	}
	rt := srv.rt.Load()
	db := ""
	if len(rest) == 2 && strings.ToUpper(rest[0]) == "IN" {
		db = rest[1]
	} else if len(rt.clusters) == 1 {
		for name := range rt.clusters {
			db = name
		}
	} else {
		return true, "", errors.New("name the database: " + verb + " ... IN <database>")
	}
	switch verb {
	case "FAILOVER":
		err = srv.ha.mgr.FailoverTo(ctx, db, nodeArg)
	case "SWITCHOVER":
		err = srv.ha.mgr.SwitchoverTo(ctx, db, nodeArg)
	case "REJOIN":
		err = srv.ha.mgr.Rejoin(ctx, db, nodeArg)
	}
	return true, verb, err
}

// showFailover is SHOW FAILOVER: the peers' decided state per database.
func (srv *Server) showFailover() *table {
	t := &table{cols: []string{"database", "term", "primary", "writes_open", "fence_reason", "blocked", "stale", "leader", "this_proxy", "lease"}}
	if srv.ha == nil {
		return t
	}
	st := srv.ha.mgr.Status()
	for _, s := range st.Shards {
		t.add(s.Shard, s.Term, s.Primary, s.WritesOpen, s.FenceReason, s.Blocked, strings.Join(s.Stale, ","), st.Leader, st.Proxy, st.Lease)
	}
	return t
}
