package pgproxy

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// cacheCommand answers the console's query cache commands:
//
//	SHOW CACHE                      counters per database
//	CACHE PURGE [<db> [<table>]]    drop cached results (this proxy only)
//
// It reports whether cmd (lower-cased, single-spaced) was one of them.
func (srv *Server) cacheCommand(s *session, cmd string) bool {
	switch {
	case cmd == "show cache":
		s.sendTable(srv.showCache(), "SHOW")
		return true
	case cmd == "cache purge" || strings.HasPrefix(cmd, "cache purge "):
	default:
		return false
	}
	qc := srv.qcache.Load()
	if qc == nil {
		s.send(errorResponse(sqlstateFeatureNotSupported, "the query cache is off (query_cache.enabled)"))
		return true
	}
	args := strings.Fields(strings.TrimPrefix(cmd, "cache purge"))
	switch len(args) {
	case 0:
		qc.Purge()
	case 1, 2:
		if _, ok := srv.rt.Load().cfg.Databases[args[0]]; !ok {
			s.send(errorResponse(sqlstateInvalidParameter, "no database %q", args[0]))
			return true
		}
		if len(args) == 1 {
			qc.DB(args[0]).Purge()
		} else {
			qc.DB(args[0]).Invalidate(args[1:])
		}
	default:
		s.send(errorResponse(sqlstateSyntaxError, "usage: CACHE PURGE [<database> [<table>]]"))
		return true
	}
	srv.log.Info("query cache purged from the console")
	s.send(&pgproto3.CommandComplete{CommandTag: []byte("CACHE PURGE")})
	return true
}

func (srv *Server) showCache() *table {
	t := &table{cols: []string{"database", "entries", "bytes", "max_bytes", "hits", "misses", "hit_ratio", "stores", "skipped", "invalidations", "remote_invalidations", "evictions", "coalesced"}}
	qc := srv.qcache.Load()
	if qc == nil {
		return t
	}
	for _, st := range qc.Stats() {
		t.add(st.Database, st.Entries, st.Bytes, st.MaxBytes, st.Hits, st.Misses, fmt.Sprintf("%.3f", st.HitRatio),
			st.Stores, st.Skipped, st.Invalidations, st.RemoteInvalidations, st.Evictions, st.Coalesced)
	}
	return t
}
