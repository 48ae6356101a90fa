package httproute

import (
	"cmp"
	"slices"
)

// Route is one compiled route. It belongs to an immutable Table: read it,
// do not modify it.
type Route struct {
	// Name is the configured name, or "routes[<Index>]".
	Name string
	// Index is the route's position in the routes list (file order).
	Index int
	// Priority is the configured priority.
	Priority int
	// Action is what the route does with a matched request.
	Action Action

	m matcher
}

// HasExpr reports whether the route has an expression condition.
func (r *Route) HasExpr() bool { return r.m.expr != nil }

// entry is a route ranked for one of its host patterns.
type entry struct {
	route *Route
	m     *matcher
	host  hostPattern
	hostN int // position of the host in the route's hosts list
}

// Table is an immutable set of compiled routes, built by Compile. It is
// safe for concurrent use; the engine publishes a new Table on reload
// (atomic.Pointer) and requests in flight keep the one they loaded.
type Table struct {
	routes  []*Route // file order
	entries []entry  // evaluation order
	// exact lists, per exact host, the ranks (indexes into entries) of the
	// entries for that host; fallback lists the ranks of wildcard and
	// any-host entries. Match merges the two in rank order.
	exact    map[string][]int32
	fallback []int32
	exprs    exprPool
}

func newTable(specs []*routeSpec) *Table {
	t := &Table{exact: map[string][]int32{}}
	for _, s := range specs {
		t.routes = append(t.routes, s.route)
		for n, h := range s.hosts {
			t.entries = append(t.entries, entry{route: s.route, m: &s.route.m, host: h, hostN: n})
		}
	}
	slices.SortStableFunc(t.entries, compareEntries)
	for i := range t.entries {
		e := &t.entries[i]
		if e.host.kind == hostExact {
			t.exact[e.host.host] = append(t.exact[e.host.host], int32(i))
		} else {
			t.fallback = append(t.fallback, int32(i))
		}
	}
	return t
}

// compareEntries orders entries by the precedence in the package doc.
func compareEntries(a, b entry) int {
	if c := cmp.Compare(b.route.Priority, a.route.Priority); c != 0 {
		return c
	}
	if c := cmp.Compare(b.host.kind, a.host.kind); c != 0 {
		return c
	}
	if a.host.kind == hostWildcard {
		if c := cmp.Compare(len(b.host.host), len(a.host.host)); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(b.m.pathKind, a.m.pathKind); c != 0 {
		return c
	}
	if a.m.pathKind == pathPrefix {
		if c := cmp.Compare(len(b.m.path), len(a.m.path)); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(b.m.conditions(), a.m.conditions()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.route.Index, b.route.Index); c != 0 {
		return c
	}
	return cmp.Compare(a.hostN, b.hostN)
}

// Match returns the first route, in precedence order, whose conditions all
// hold for r. It does not allocate unless it evaluates an expression. A nil
// Table matches nothing.
func (t *Table) Match(r Request) (*Route, bool) {
	if t == nil || len(t.entries) == 0 {
		return nil, false
	}
	var buf [maxHostLen]byte
	host, hostOK := normalizeHost(&buf, r.Host())
	var exact []int32
	if hostOK && len(host) > 0 && len(t.exact) > 0 {
		exact = t.exact[string(host)]
	}
	fallback := t.fallback

	var st *exprState
	filled := 0
	var found *Route
	for len(exact) > 0 || len(fallback) > 0 {
		var rank int32
		if len(fallback) == 0 || len(exact) > 0 && exact[0] < fallback[0] {
			rank, exact = exact[0], exact[1:]
		} else {
			rank, fallback = fallback[0], fallback[1:]
		}
		e := &t.entries[rank]
		if e.host.kind == hostWildcard && (!hostOK || !matchWildcard(host, e.host.host)) {
			continue
		}
		if !e.m.matchStatic(r) {
			continue
		}
		if p := e.m.expr; p != nil {
			if st == nil {
				st = t.exprs.get()
			}
			st.prepare(r, host, p.uses, &filled)
			if !p.eval(st) {
				continue
			}
		}
		found = e.route
		break
	}
	if st != nil {
		t.exprs.put(st)
	}
	return found, found != nil
}

// Routes returns the routes in file order.
func (t *Table) Routes() []*Route {
	return slices.Clone(t.routes)
}

// RankedRoute is one step of the evaluation order: a route and the host
// pattern it is ranked for ("api.example.com", "*.example.com" or "*").
type RankedRoute struct {
	Route *Route
	Host  string
}

// Order returns the evaluation order, for diagnostics (an admin endpoint
// or a config check command can print it).
func (t *Table) Order() []RankedRoute {
	out := make([]RankedRoute, len(t.entries))
	for i, e := range t.entries {
		h := "*"
		switch e.host.kind {
		case hostExact:
			h = e.host.host
		case hostWildcard:
			h = "*" + e.host.host
		}
		out[i] = RankedRoute{Route: e.route, Host: h}
	}
	return out
}
