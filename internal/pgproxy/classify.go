package pgproxy

import (
	"github.com/tiergate/tiergate/router/sqlroute"
)

// routeMode is the value of the proxy-local setting tiergate.route.
type routeMode uint8

const (
	routeAuto routeMode = iota
	routePrimary
	routeReplica
)

func (r routeMode) String() string {
	switch r {
	case routePrimary:
		return "primary"
	case routeReplica:
		return "replica"
	}
	return "auto"
}

// stmtClass is what a session needs to know about one statement (or one
// multi-statement simple query) to route and pool it.
type stmtClass struct {
	replica        bool      // may run on a replica
	write          bool      // may change data: starts read-your-writes tracking
	begin          bool      // BEGIN / START TRANSACTION
	readOnly       bool      // ... READ ONLY
	session        bool      // changes session state: reset the server before reuse
	pin            bool      // needs the same server for the rest of the session (LISTEN, session advisory locks, SQL PREPARE, WITH HOLD cursors, temp tables)
	listen         bool      // LISTEN: relay notifications while the client idles
	clearsPrepared bool      // DISCARD ALL / DEALLOCATE: server-side prepared statements are gone
	proxySet       bool      // SET/RESET tiergate.route: answered by the proxy
	proxyShow      bool      // SHOW tiergate.route: answered by the proxy
	route          routeMode // the new value for proxySet
	local          bool      // SET LOCAL tiergate.route
	hint           bool      // a /* tiergate: ... */ hint chose the target
	proxyErr       error     // a tiergate.* statement the proxy rejects

	// Query cache facts.
	cacheable     bool     // one read-only SELECT without volatile functions or session effects
	userFunc      bool     // calls a function that is not a known built-in
	cacheHint     bool     // /* tiergate: cache ... */
	noCache       bool     // /* tiergate: nocache */
	digest        uint64   // normalised-text digest
	tablesRead    []string // what it reads (shared with the classifier's cache: read only)
	tablesWritten []string // what it writes (likewise)
	invalidateAll bool     // it may write tables the proxy cannot name
}

// notCacheable are the flags that keep a SELECT out of the query cache.
const notCacheable = sqlroute.FlagWrite | sqlroute.FlagSessionState | sqlroute.FlagUnparsable |
	sqlroute.FlagMultiStatement | sqlroute.FlagVolatile | sqlroute.FlagPin | sqlroute.FlagProxySetting |
	sqlroute.FlagAdvisoryLock | sqlroute.FlagListen

// classifier decides where a statement goes. It is called on every simple
// query and every Parse, from many sessions at once: it must be safe for
// concurrent use and must not block. *sqlroute.Classifier implements it.
type classifier interface {
	Classify(sql string) (sqlroute.Decision, error)
}

// classOf turns a router/sqlroute decision into what the session acts on.
func classOf(d sqlroute.Decision, err error) stmtClass {
	c := stmtClass{
		replica:        d.Target == sqlroute.Replica,
		write:          d.Has(sqlroute.FlagWrite) || d.Has(sqlroute.FlagUnparsable),
		begin:          d.Kind == sqlroute.KindBegin,
		readOnly:       d.Has(sqlroute.FlagReadOnlyTxn),
		session:        d.Has(sqlroute.FlagSessionState),
		pin:            d.Has(sqlroute.FlagPin),
		listen:         d.Has(sqlroute.FlagListen) && d.Kind == sqlroute.KindListen,
		clearsPrepared: d.Has(sqlroute.FlagClearsPrepared),
		hint:           d.Has(sqlroute.FlagHint),
		cacheable:      d.Kind == sqlroute.KindSelect && len(d.Kinds) == 1 && d.Flags&notCacheable == 0,
		userFunc:       d.Has(sqlroute.FlagUserFunction),
		cacheHint:      d.Has(sqlroute.FlagCacheHint),
		noCache:        d.Has(sqlroute.FlagNoCacheHint),
		digest:         d.Digest,
		tablesRead:     d.TablesRead,
		tablesWritten:  d.TablesWritten,
	}
	if c.write {
		c.invalidateAll = writesUnknownTables(d)
	}
	if d.Has(sqlroute.FlagProxySetting) && !d.Has(sqlroute.FlagMultiStatement) {
		c.proxyErr = err
		if d.Setting.Show {
			c.proxyShow = true
		} else {
			c.proxySet = true
			c.local = d.Setting.Local
			switch d.Setting.Route {
			case sqlroute.RoutePrimary:
				c.route = routePrimary
			case sqlroute.RouteReplica:
				c.route = routeReplica
			}
		}
	}
	return c
}

// writesUnknownTables reports a write whose tables the proxy cannot name:
// unparsable text, DO blocks, procedures, calls of functions that are not
// built in, utility statements, and schema or maintenance statements
// without a named table.
func writesUnknownTables(d sqlroute.Decision) bool {
	if d.Has(sqlroute.FlagUnparsable) || d.Has(sqlroute.FlagUserFunction) {
		// A function listed in write_functions (or any other that is not
		// built in) may write any table.
		return true
	}
	for _, k := range d.Kinds {
		switch k {
		case sqlroute.KindDo, sqlroute.KindCall, sqlroute.KindOther, sqlroute.KindUnknown:
			return true
		case sqlroute.KindDDL, sqlroute.KindMaintenance, sqlroute.KindTruncate:
			if len(d.TablesWritten) == 0 {
				return true
			}
		}
	}
	return false
}
