package pgproxy

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"
)

// console serves the admin console on the virtual database "tiergate" in
// the simple query protocol: SHOW POOLS|CLIENTS|SERVERS|NODES|STATS|CONFIG,
// RELOAD, PAUSE, RESUME.
func (srv *Server) console(s *session) error {
	for {
		msg, err := s.readClient()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			srv.consoleQuery(s, m.String)
			s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if err := s.flush(); err != nil {
				return err
			}
		case *pgproto3.Terminate:
			return nil
		case *pgproto3.Sync:
			s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if err := s.flush(); err != nil {
				return err
			}
		case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close, *pgproto3.Flush:
			if !s.skip {
				s.send(errorResponse(sqlstateFeatureNotSupported, "the tiergate console speaks the simple query protocol only"))
				s.skip = true
				if err := s.flush(); err != nil {
					return err
				}
			}
			continue
		default:
		}
		s.skip = false
	}
}

// table is a result set of text columns.
type table struct {
	cols []string
	rows [][]string
}

func (t *table) add(vals ...any) {
	row := make([]string, len(vals))
	for i, v := range vals {
		row[i] = fmt.Sprint(v)
	}
	t.rows = append(t.rows, row)
}

func (s *session) sendTable(t *table, tag string) {
	fields := make([]pgproto3.FieldDescription, len(t.cols))
	for i, c := range t.cols {
		fields[i] = pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}
	}
	s.send(&pgproto3.RowDescription{Fields: fields})
	for _, r := range t.rows {
		vals := make([][]byte, len(r))
		for i, v := range r {
			vals[i] = []byte(v)
		}
		s.send(&pgproto3.DataRow{Values: vals})
	}
	s.send(&pgproto3.CommandComplete{CommandTag: []byte(tag + " " + strconv.Itoa(len(t.rows)))})
}

func (srv *Server) consoleQuery(s *session, q string) {
	cmd := strings.ToLower(strings.Join(strings.Fields(strings.TrimRight(strings.TrimSpace(q), "; \t\r\n")), " "))
	switch cmd {
	case "":
		s.send(&pgproto3.EmptyQueryResponse{})
	case "show pools":
		s.sendTable(srv.showPools(), "SHOW")
	case "show clients":
		s.sendTable(srv.showClients(), "SHOW")
	case "show servers":
		s.sendTable(srv.showServers(), "SHOW")
	case "show nodes":
		s.sendTable(srv.showNodes(), "SHOW")
	case "show stats":
		s.sendTable(srv.showStats(), "SHOW")
	case "show shards":
		s.sendTable(srv.showShards(), "SHOW")
	case "show config":
		s.sendTable(srv.showConfig(), "SHOW")
	case "show failover":
		s.sendTable(srv.showFailover(), "SHOW")
	case "show help", "help":
		t := &table{cols: []string{"command"}}
		for _, c := range []string{"SHOW POOLS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW NODES", "SHOW STATS", "SHOW SHARDS", "SHOW CONFIG", "SHOW FAILOVER", "SHOW CACHE", "CACHE PURGE [<db> [<table>]]", "EXPLAIN ROUTE [FOR <db>] <statement>", "RELOAD", "PAUSE", "PAUSE WRITES", "RESUME", "FAILOVER TO <node> [IN <db>]", "SWITCHOVER TO <node> [IN <db>]", "REJOIN <node> [IN <db>]"} {
			t.add(c)
		}
		s.sendTable(t, "SHOW")
	case "reload":
		if srv.loadCfg == nil {
			s.send(errorResponse(sqlstateFeatureNotSupported, "RELOAD is not available (no config file)"))
			return
		}
		cfg, err := srv.loadCfg()
		if err == nil {
			err = srv.Reload(cfg)
		}
		if err != nil {
			s.send(errorResponse(sqlstateInternal, "reload failed: %v", err))
			return
		}
		s.send(&pgproto3.CommandComplete{CommandTag: []byte("RELOAD")})
	case "pause":
		ctx, cancel := context.WithTimeout(context.Background(), srv.rt.Load().cfg.Pool.QueryWaitTimeout)
		err := srv.Pause(ctx)
		cancel()
		if err != nil {
			s.send(errorResponse(sqlstateInternal, "%v", err))
			return
		}
		srv.log.Info("paused from the console", zap.String("user", s.user))
		s.send(&pgproto3.CommandComplete{CommandTag: []byte("PAUSE")})
	case "resume":
		srv.Resume()
		s.send(&pgproto3.CommandComplete{CommandTag: []byte("RESUME")})
	default:
		if srv.cacheCommand(s, cmd) {
			return
		}
		if srv.shardCommand(s, q, cmd) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		handled, tag, err := srv.haCommand(ctx, q)
		cancel()
		if handled {
			if err != nil {
				s.send(errorResponse(sqlstateInternal, "%v", err))
				return
			}
			srv.log.Warn("failover command from the console", zap.String("user", s.user), zap.String("command", strings.TrimSpace(q)))
			s.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
			return
		}
		if strings.HasPrefix(cmd, "set ") {
			// psql and drivers send SETs on connect; accept and ignore them.
			s.send(&pgproto3.CommandComplete{CommandTag: []byte("SET")})
			return
		}
		s.send(errorResponse(sqlstateSyntaxError, "unknown console command %q (try SHOW HELP)", strings.TrimSpace(q)))
	}
}

func (srv *Server) showPools() *table {
	t := &table{cols: []string{"database", "user", "node", "role", "cl_waiting", "sv_active", "sv_idle", "sv_total", "maxwait_ms", "pool_mode"}}
	rt := srv.rt.Load()
	for _, cl := range rt.clusterList() {
		name := cl.name
		for _, n := range cl.nodes() {
			pools := *n.pools.Load()
			users := make([]string, 0, len(pools))
			for u := range pools {
				users = append(users, u)
			}
			sort.Strings(users)
			for _, u := range users {
				p := pools[u]
				st := p.stats()
				p.maxWait.Store(0)
				t.add(name, u, n.addr, n.role, st.waiting, st.active, st.idle, st.total, st.maxWait.Milliseconds(), rt.cfg.Pool.Mode)
			}
		}
	}
	return t
}

func (srv *Server) showClients() *table {
	t := &table{cols: []string{"id", "user", "database", "addr", "state", "server", "connect_time", "application_name"}}
	var list []*session
	srv.forEachSession(func(s *session) { list = append(list, s) })
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	for _, s := range list {
		state := [...]string{"idle", "waiting", "active", "parked"}[s.state.Load()]
		server := ""
		if sc := s.active.Load(); sc != nil {
			server = fmt.Sprintf("%s#%d", sc.pool.node.addr, sc.id)
		}
		app := ""
		if p := s.appName.Load(); p != nil {
			app = *p
		}
		t.add(s.id, s.user, s.dbName, s.addr, state, server, s.connectedAt.UTC().Format(time.RFC3339), app)
	}
	return t
}

func (srv *Server) showServers() *table {
	t := &table{cols: []string{"id", "database", "user", "node", "role", "state", "client", "backend_pid", "connect_time", "idle_ms"}}
	rt := srv.rt.Load()
	now := time.Now()
	for _, cl := range rt.clusterList() {
		name := cl.name
		for _, n := range cl.nodes() {
			for _, p := range *n.pools.Load() {
				conns := p.snapshotConns()
				sort.Slice(conns, func(i, j int) bool { return conns[i].id < conns[j].id })
				for _, sc := range conns {
					state, client := "idle", ""
					if c := sc.client.Load(); c != 0 {
						state, client = "active", strconv.FormatUint(c, 10)
					}
					idle := now.Sub(time.Unix(0, sc.lastUsed.Load())).Milliseconds()
					t.add(sc.id, name, p.user, n.addr, n.role, state, client, sc.pid, sc.created.UTC().Format(time.RFC3339), idle)
				}
			}
		}
	}
	return t
}

func (srv *Server) showNodes() *table {
	t := &table{cols: []string{"database", "node", "role", "healthy", "in_recovery", "readable", "lsn", "lag_bytes", "lag_seconds", "last_check", "error"}}
	rt := srv.rt.Load()
	for _, cl := range rt.clusterList() {
		name := cl.name
		for _, n := range cl.nodes() {
			last := ""
			if ns := n.lastCheck.Load(); ns != 0 {
				last = time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
			}
			t.add(name, n.addr, n.role, n.healthy.Load(), n.inRecovery.Load(), n.readable(0), formatLSN(n.lsn.Load()),
				n.lagBytes.Load(), strconv.FormatFloat(n.lagSec(), 'f', 3, 64), last, n.errString())
		}
	}
	return t
}

func (srv *Server) showStats() *table {
	t := &table{cols: []string{"database", "primary_queries", "replica_queries", "errors", "read_retries", "ryw_primary_reads", "fallback_primary_reads", "shard_statements"}}
	rt := srv.rt.Load()
	for _, cl := range rt.clusterList() {
		st := cl.stats
		t.add(cl.name, st.primaryQueries.Load(), st.replicaQueries.Load(), st.errors.Load(), st.retries.Load(), st.rywPrimary.Load(), st.fallbacks.Load(), st.shardStatements.Load())
	}
	return t
}

func (srv *Server) showConfig() *table {
	t := &table{cols: []string{"key", "value"}}
	c := srv.rt.Load().cfg
	t.add("listen", c.Listen)
	t.add("max_client_conn", c.MaxClientConn)
	t.add("max_message_size", c.MaxMessageSize)
	t.add("shutdown_timeout", c.ShutdownTimeout)
	t.add("park_idle_clients_after", c.ParkIdleClientsAfter)
	t.add("admin_users", strings.Join(c.AdminUsers, ","))
	t.add("pool.mode", c.Pool.Mode)
	t.add("pool.size", c.Pool.Size)
	t.add("pool.min_idle", c.Pool.MinIdle)
	t.add("pool.server_lifetime", c.Pool.ServerLifetime)
	t.add("pool.server_idle_timeout", c.Pool.ServerIdleTimeout)
	t.add("pool.query_wait_timeout", c.Pool.QueryWaitTimeout)
	t.add("pool.connect_timeout", c.Pool.ConnectTimeout)
	t.add("routing.read_write_split", c.Routing.split())
	t.add("routing.read_your_writes", c.Routing.ReadYourWrites)
	t.add("routing.ryw_window", c.Routing.RYWWindow)
	t.add("routing.fallback_to_primary", c.Routing.fallback())
	t.add("routing.max_replica_lag_bytes", c.Routing.MaxReplicaLagBytes)
	t.add("routing.max_replica_lag", c.Routing.MaxReplicaLag)
	t.add("routing.read_retries", c.Routing.ReadRetries)
	t.add("health.interval", c.Health.Interval)
	t.add("health.timeout", c.Health.Timeout)
	t.add("health.rise", c.Health.Rise)
	t.add("health.fall", c.Health.Fall)
	for _, name := range c.databaseNames() {
		d := c.Databases[name]
		if d.sharded() {
			shardConfigRows(name, &d, t)
			continue
		}
		t.add("databases."+name, fmt.Sprintf("primary=%s replicas=%s server_database=%s", d.Primary, strings.Join(d.Replicas, ","), d.ServerDatabase))
	}
	return t
}
