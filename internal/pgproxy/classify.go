package pgproxy

import (
	"strings"
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
}

// classifier decides where a statement goes. It is called on every simple
// query and every Parse, from many sessions at once: it must be safe for
// concurrent use and must not block.
//
// router/sqlroute implements the real one; until it is wired in, dbproxy
// uses keywordClassifier.
type classifier interface {
	classify(sql string) stmtClass
}

// keywordClassifier is a conservative stand-in for router/sqlroute: it looks
// at the first keyword only and sends anything it does not recognise as a
// plain read to the primary.
//
// TODO(sqlroute): replace with an adapter over sqlroute.Classifier once that
// package is committed.
type keywordClassifier struct{}

var _ classifier = keywordClassifier{}

// writeMarkers make a SELECT-like statement go to the primary.
var writeMarkers = []string{
	"for update", "for share", "for no key update", "for key share",
	"nextval", "setval", "pg_advisory", "into", "insert", "update", "delete",
	"merge", "txid_current", "pg_current_xact_id", "pg_notify", "lo_", "set_config",
	"pg_terminate", "pg_cancel", "pg_reload", "pg_promote", "pg_switch_wal", "analyze",
}

func (keywordClassifier) classify(sql string) stmtClass {
	var c stmtClass
	text, hint := stripComments(sql)
	lower := strings.ToLower(strings.TrimSpace(text))
	// Multi-statement queries go to the primary (a trailing ';' is fine).
	body := strings.TrimRight(lower, "; \t\r\n")
	multi := strings.Contains(body, ";")
	word, rest := firstWord(lower)
	switch word {
	case "select", "with", "table", "values", "show", "explain", "fetch":
		c.replica = !multi && !containsAny(body, writeMarkers)
		if word == "show" && !multi && strings.HasPrefix(strings.TrimSpace(rest), "tiergate.route") {
			c.proxyShow = true
		}
		if word == "fetch" {
			c.replica = false
		} else {
			c.write = !c.replica
		}
	case "begin", "start":
		c.begin = true
		c.readOnly = strings.Contains(rest, "read only")
	case "commit", "end", "rollback", "abort", "savepoint", "release":
	case "set", "reset":
		r := strings.TrimSpace(rest)
		local := false
		if w, after := firstWord(r); w == "local" {
			local, r = true, strings.TrimSpace(after)
		} else if w == "session" {
			r = strings.TrimSpace(after)
		}
		if strings.HasPrefix(r, "tiergate.route") && !multi {
			c.proxySet, c.local = true, local
			if word == "set" {
				v := strings.TrimSpace(strings.TrimPrefix(r, "tiergate.route"))
				v = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(v, "="), "to"))
				v = strings.Trim(strings.TrimSpace(strings.TrimRight(v, "; \t\r\n")), "'\"")
				switch v {
				case "primary":
					c.route = routePrimary
				case "replica":
					c.route = routeReplica
				case "auto", "default":
				default:
					c.proxySet = false // unknown value: let the server reject it
				}
			}
			return c
		}
		c.session = !local && !strings.HasPrefix(r, "transaction")
	case "discard", "deallocate":
		c.session, c.clearsPrepared = true, true
	case "listen", "unlisten", "prepare", "load":
		c.session, c.pin = true, true
		c.listen = word == "listen"
	case "declare":
		c.session = true
		c.pin = strings.Contains(rest, "with hold")
	case "create":
		c.write = true
		if w, _ := firstWord(strings.TrimSpace(rest)); w == "temp" || w == "temporary" {
			c.session, c.pin = true, true
		}
	default:
		c.write = true
	}
	if strings.Contains(body, "pg_advisory_lock") || strings.Contains(body, "pg_try_advisory_lock") {
		c.session, c.pin = true, true
	}
	switch hint {
	case routePrimary:
		c.replica, c.hint = false, true
	case routeReplica:
		c.replica, c.hint = true, true
	}
	return c
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func firstWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t\r\n(")
	i := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r == '_')
	})
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// stripComments removes -- and /* */ comments (outside quotes is not
// checked: a stand-in) and returns the last tiergate routing hint seen.
func stripComments(sql string) (string, routeMode) {
	if !strings.Contains(sql, "--") && !strings.Contains(sql, "/*") {
		return sql, routeAuto
	}
	var b strings.Builder
	hint := routeAuto
	for i := 0; i < len(sql); {
		switch {
		case strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				i = len(sql)
			} else {
				i += j
			}
		case strings.HasPrefix(sql[i:], "/*"):
			j := strings.Index(sql[i+2:], "*/")
			var body string
			if j < 0 {
				body, i = sql[i+2:], len(sql)
			} else {
				body, i = sql[i+2:i+2+j], i+4+j
			}
			if k, v, ok := strings.Cut(strings.TrimSpace(body), ":"); ok && strings.EqualFold(strings.TrimSpace(k), "tiergate") {
				switch strings.ToLower(strings.TrimSpace(v)) {
				case "primary":
					hint = routePrimary
				case "replica":
					hint = routeReplica
				}
			}
			b.WriteByte(' ')
		default:
			b.WriteByte(sql[i])
			i++
		}
	}
	return b.String(), hint
}
