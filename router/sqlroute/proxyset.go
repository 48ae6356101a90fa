package sqlroute

import (
	"errors"
	"fmt"
	"strings"
)

// ErrProxySetting is wrapped by the error Classify returns for a tiergate.*
// statement the proxy cannot apply: an unknown name, a bad value, bad syntax,
// or a proxy setting inside a multi-statement query. The session layer
// reports it to the client and forwards nothing.
var ErrProxySetting = errors.New("invalid tiergate setting")

// parseProxySetting parses SET [SESSION | LOCAL] tiergate.<name> {TO | =}
// <value>, RESET tiergate.<name> and SHOW tiergate.<name>. The lexer found
// that sql has such a statement; it must be the only one.
func parseProxySetting(sql string) (ProxySetting, Kind, error) {
	var toks [12]token
	n := 0
	l := lexer{s: sql}
	for {
		t := l.next()
		if t.kind == tokEOF {
			break
		}
		if t.kind == tokHint {
			continue
		}
		if t.kind == tokPunct && sql[t.start:t.end] == ";" {
			if n == 0 {
				continue // empty statement
			}
			// Only trailing semicolons may follow.
			for t = l.next(); t.kind == tokHint || (t.kind == tokPunct && sql[t.start:t.end] == ";"); t = l.next() {
			}
			if t.kind != tokEOF {
				return ProxySetting{}, KindProxySet, fmt.Errorf("%w: a tiergate setting must be the only statement in the query", ErrProxySetting)
			}
			break
		}
		if n == len(toks) {
			return ProxySetting{}, KindProxySet, errMalformed()
		}
		toks[n] = t
		n++
	}
	word := func(i int) string {
		if i >= n {
			return ""
		}
		return sql[toks[i].start:toks[i].end]
	}
	isWord := func(i int, w string) bool {
		return i < n && toks[i].kind == tokIdent && strings.EqualFold(word(i), w)
	}

	var ps ProxySetting
	i := 1
	verb := strings.ToLower(word(0))
	if verb == "set" && (isWord(1, "session") || isWord(1, "local")) {
		ps.Local = isWord(1, "local")
		i = 2
	}
	// tiergate . <name>
	if i+2 >= n || !isWord(i, "tiergate") && word(i) != `"tiergate"` || word(i+1) != "." {
		return ProxySetting{}, KindProxySet, errMalformed()
	}
	name, ok := identValue(toks[i+2], sql)
	if !ok {
		return ProxySetting{}, KindProxySet, errMalformed()
	}
	if name != SettingRoute && name != SettingShard && name != SettingShardKey {
		return ProxySetting{}, KindProxySet, fmt.Errorf("%w: unknown setting tiergate.%s", ErrProxySetting, name)
	}
	ps.Name = name
	i += 3

	switch verb {
	case "show":
		if i != n {
			return ProxySetting{}, KindShow, errMalformed()
		}
		ps.Show = true
		return ps, KindShow, nil
	case "reset":
		if i != n {
			return ProxySetting{}, KindProxySet, errMalformed()
		}
		ps.Route = RouteAuto
		return ps, KindProxySet, nil
	}
	// SET: {TO | =} value
	if !(isWord(i, "to") || word(i) == "=") || i+2 != n {
		return ProxySetting{}, KindProxySet, errMalformed()
	}
	v := toks[i+1]
	var value string
	if name != SettingRoute {
		// A shard name or number, or a key: kept as written.
		switch v.kind {
		case tokIdent, tokQuotedIdent:
			value, ok = identValue(v, sql)
			if ok && v.kind == tokIdent && value == "default" {
				value = ""
			}
		case tokString:
			value, ok = rawStringValue(sql[v.start:v.end])
		case tokNumber:
			value, ok = sql[v.start:v.end], true
		default:
			ok = false
		}
		if !ok {
			return ProxySetting{}, KindProxySet, errMalformed()
		}
		ps.Value = value
		return ps, KindProxySet, nil
	}
	switch v.kind {
	case tokIdent, tokQuotedIdent:
		value, ok = identValue(v, sql)
	case tokString:
		value, ok = stringValue(sql[v.start:v.end])
	default:
		ok = false
	}
	if !ok {
		return ProxySetting{}, KindProxySet, errMalformed()
	}
	switch {
	case value == "primary":
		ps.Route = RoutePrimary
	case value == "replica":
		ps.Route = RouteReplica
	case value == "auto" || (value == "default" && v.kind == tokIdent):
		ps.Route = RouteAuto
	default:
		return ProxySetting{}, KindProxySet, fmt.Errorf("%w: tiergate.route: %q is not one of primary, replica, auto", ErrProxySetting, value)
	}
	return ps, KindProxySet, nil
}

func errMalformed() error {
	return fmt.Errorf("%w: expected SET [LOCAL] tiergate.<route|shard|shard_key> {TO | =} value, RESET tiergate.<name> or SHOW tiergate.<name>", ErrProxySetting)
}

// identValue returns an identifier as the server sees it: unquoted ones
// lower-cased, quoted ones with the quotes removed.
func identValue(t token, sql string) (string, bool) {
	text := sql[t.start:t.end]
	switch t.kind {
	case tokIdent:
		return strings.ToLower(text), true
	case tokQuotedIdent:
		if text[0] != '"' {
			return "", false // U&"..." is not worth supporting here
		}
		return strings.ReplaceAll(text[1:len(text)-1], `""`, `"`), true
	}
	return "", false
}

// rawStringValue unquotes a plain '...' literal without changing its case.
func rawStringValue(text string) (string, bool) {
	if len(text) < 2 || text[0] != '\'' {
		return "", false
	}
	return strings.ReplaceAll(text[1:len(text)-1], "''", "'"), true
}

// stringValue unquotes a plain '...' literal; other literal forms are not
// accepted for proxy settings.
func stringValue(text string) (string, bool) {
	if len(text) < 2 || text[0] != '\'' {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(text[1:len(text)-1], "''", "'")), true
}
