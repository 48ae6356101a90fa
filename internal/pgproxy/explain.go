package pgproxy

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/router/sqlroute"
)

// shardCommand serves the console commands of sharding: EXPLAIN ROUTE
// (also SHOW ROUTE) and PAUSE WRITES. It reports whether q was one.
func (srv *Server) shardCommand(s *session, q, cmd string) bool {
	switch {
	case cmd == "pause writes":
		ctx, cancel := context.WithTimeout(context.Background(), srv.rt.Load().cfg.Pool.QueryWaitTimeout)
		err := srv.PauseWrites(ctx)
		cancel()
		if err != nil {
			s.send(errorResponse(sqlstateInternal, "%v", err))
			return true
		}
		srv.log.Info("writes paused from the console", zap.String("user", s.user))
		s.send(&pgproto3.CommandComplete{CommandTag: []byte("PAUSE")})
		return true
	case strings.HasPrefix(cmd, "explain route ") || strings.HasPrefix(cmd, "show route "):
		t, err := srv.explainRoute(q)
		if err != nil {
			s.send(errorResponse(sqlstateInvalidParameter, "%v", err))
			return true
		}
		s.sendTable(t, "EXPLAIN")
		return true
	}
	return false
}

// explainRoute answers EXPLAIN ROUTE [FOR <database>] <statement>: which
// shard(s) and node(s) the statement would run on, and why. Parameters
// ($1) count as unknown; the session settings tiergate.shard/shard_key
// and read-your-writes are not applied (a new session's view).
func (srv *Server) explainRoute(q string) (*table, error) {
	rest := strings.TrimSpace(q)
	for i := 0; i < 2; i++ { // EXPLAIN ROUTE / SHOW ROUTE
		_, rest, _ = strings.Cut(rest, " ")
		rest = strings.TrimSpace(rest)
	}
	rt := srv.rt.Load()
	db := ""
	if f, after, ok := strings.Cut(rest, " "); ok && strings.EqualFold(f, "for") {
		db, rest, _ = strings.Cut(strings.TrimSpace(after), " ")
		rest = strings.TrimSpace(rest)
	}
	sql := strings.TrimRight(rest, "; \t\r\n")
	if sql == "" {
		return nil, fmt.Errorf("usage: EXPLAIN ROUTE [FOR <database>] <statement>")
	}
	if db == "" {
		switch {
		case len(rt.sharded) == 1:
			for name := range rt.sharded {
				db = name
			}
		case len(rt.cfg.Databases) == 1:
			for name := range rt.cfg.Databases {
				db = name
			}
		default:
			return nil, fmt.Errorf("several databases: say EXPLAIN ROUTE FOR <database> <statement>")
		}
	}
	d, cerr := rt.classifier.Classify(sql)
	class := classOf(d, cerr)
	t := &table{cols: []string{"database", "shard", "node", "role", "route", "reason"}}
	role := func(cl *cluster, write bool) (string, string) {
		if !write && rt.cfg.Routing.split() && !class.pin && !class.session {
			if r, res := cl.pickReplica(0, nil); r != nil {
				res.Done(nil, 0)
				return r.addr, roleReplica
			}
			n, _ := srv.primaryFor(cl)
			if n != nil {
				return n.addr, rolePrimary + " (no replica readable)"
			}
		}
		n, err := srv.primaryFor(cl)
		if err != nil {
			return err.Error(), rolePrimary
		}
		return n.addr, rolePrimary
	}
	write := !class.replica
	sdb := rt.sharded[db]
	if sdb == nil {
		cl := rt.clusters[db]
		if cl == nil {
			return nil, fmt.Errorf("database %q does not exist", db)
		}
		addr, r := role(cl, write)
		t.add(db, "", addr, r, "single node", d.Reason)
		return t, nil
	}
	route, err := sdb.router.Route(sql, &d, &sqlroute.ShardArgs{Explain: true})
	if err != nil {
		t.add(db, "", "", "", "refused", err.Error())
		return t, nil
	}
	reason := route.Reason
	if route.Detail != "" {
		reason += ": " + route.Detail
	}
	if m := route.Merge; m != nil {
		reason += "; merge: " + describeMerge(m)
	}
	if d.Reason != "" {
		reason += " [" + d.Reason + "]"
	}
	switch {
	case route.Any:
		for k, cl := range sdb.shards {
			addr, r := role(cl, write)
			t.add(db, sdb.shardName(k), addr, r, "any one shard", reason)
		}
	case len(route.Shards) > 0:
		kind := "fan-out"
		switch {
		case route.Inserts != nil:
			kind = "split insert"
		case route.Copy != nil:
			kind = "split copy"
		case route.Write:
			kind = "every target shard"
		}
		for _, k := range route.Shards {
			addr, r := role(sdb.shards[k], write || route.Write)
			t.add(db, sdb.shardName(k), addr, r, kind, reason)
		}
	default:
		addr, r := role(sdb.shards[route.Shard], write)
		t.add(db, sdb.shardName(route.Shard), addr, r, "single shard", reason)
	}
	return t, nil
}

// describeMerge renders a merge plan for EXPLAIN ROUTE.
func describeMerge(m *sqlroute.Merge) string {
	var parts []string
	if m.Group {
		aggs := []string{}
		for i, a := range m.Aggs {
			if a != sqlroute.AggNone {
				aggs = append(aggs, fmt.Sprintf("%s(col %d)", a, i+1))
			}
		}
		g := "combine groups"
		if len(m.GroupCols) > 0 {
			g += fmt.Sprintf(" by columns %v", plusOne(m.GroupCols))
		}
		parts = append(parts, g+" with "+strings.Join(aggs, ", "))
	}
	if len(m.Sort) > 0 {
		var keys []string
		for _, k := range m.Sort {
			s := k.Name
			if k.Col >= 0 {
				s = fmt.Sprintf("col %d", k.Col+1)
			}
			if k.Desc {
				s += " DESC"
			}
			if k.NullsFirst != k.Desc {
				if k.NullsFirst {
					s += " NULLS FIRST"
				} else {
					s += " NULLS LAST"
				}
			}
			keys = append(keys, s)
		}
		parts = append(parts, "k-way merge ORDER BY "+strings.Join(keys, ", "))
	}
	if m.Distinct {
		parts = append(parts, "DISTINCT")
	}
	if m.Offset > 0 {
		parts = append(parts, fmt.Sprintf("OFFSET %d", m.Offset))
	}
	if m.Limit >= 0 {
		parts = append(parts, fmt.Sprintf("LIMIT %d", m.Limit))
	}
	if m.SQL != "" {
		parts = append(parts, "shards run: "+m.SQL)
	}
	if len(parts) == 0 {
		return "concatenate"
	}
	return strings.Join(parts, "; ")
}

func plusOne(cols []int) []int {
	out := make([]int, len(cols))
	for i, c := range cols {
		out[i] = c + 1
	}
	return out
}
