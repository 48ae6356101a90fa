// Package httproute owns the edge's routing decision: given a request's
// method, host, path, headers, query and cookies, which configured route
// matches, and what that route does (proxy to an upstream or a weighted
// split, rewrite the path, edit headers, redirect, or answer with a fixed
// response). It is pure: no sockets, no clocks, no logging.
//
// It also holds the pure header helpers the engine needs on the forwarding
// path: the hop-by-hop list and Connection-token stripping (hopbyhop.go),
// X-Forwarded-For parsing and appending with trusted proxies (forwarded.go),
// and detection of ambiguous message framing (framing.go).
//
// # Use
//
// The engine compiles its `routes:` section once per config generation and
// publishes the immutable *Table through an atomic.Pointer; Match is safe for
// concurrent use and does not allocate unless an expression is evaluated.
//
//	tbl, err := httproute.Compile(cfg.Routes, upstreamNames)
//	...
//	var rv httproute.FastHTTPRequest // one per worker or pooled request state
//	rv.Reset(&ctx.Request, clientIP)
//	route, ok := tbl.Match(&rv)
//
// # Matching
//
// A route matches when every condition it lists holds; an empty match
// matches every request.
//
//   - hosts: "example.com" (exact) or "*.example.com" (one or more labels in
//     front of example.com, not example.com itself); "*" means any host.
//     Comparison is ASCII case-insensitive, the port and one trailing dot of
//     the request host are ignored. For absolute-form request targets the
//     authority of the target is the host.
//   - path (exact), path_prefix (plain byte prefix: "/api" also matches
//     "/apiary"; write "/api/" for a segment) or path_regex (Go RE2,
//     unanchored: use ^ and $). All compare the raw path as received,
//     without the query, without percent-decoding or dot-segment removal, so
//     the router sees what the upstream will see.
//   - methods: any of the listed methods (case-sensitive, as in HTTP).
//   - headers: each entry requires the header to be present (name only), to
//     be absent (absent: true), to equal value exactly, or to match regex.
//     Names are case-insensitive; the first field line of that name is
//     compared.
//   - query: like headers, over the raw query string: keys and values are
//     compared as received, without percent-decoding; the first occurrence of
//     a key counts, and "?debug" (no '=') is present with an empty value.
//   - expr: an expr-lang boolean expression compiled once at load, over the
//     variables Method, Host (lower-case, no port), Path, Query (raw, no '?')
//     and ClientIP, and the functions Header(name), Cookie(name) and
//     QueryParam(name), which return "" when absent. A runtime error counts
//     as no match.
//
// # Precedence
//
// Routes are tried in one fixed order and the first that matches wins:
//
//  1. priority, higher first (default 0);
//  2. host: exact host, then wildcard (longer suffix first), then any host;
//  3. path: exact path, then prefix (longer first), then regex, then none;
//  4. more conditions first: the number of header and query entries, plus
//     one for a method list and one for an expression;
//  5. file order.
//
// A route listing several hosts is ranked once per host, so
// `hosts: [a.com, "*.a.com"]` sorts as an exact route for a.com and as a
// wildcard route for its subdomains. Table.Routes returns the routes in
// file order; Table.Order shows the evaluation order for diagnostics.
package httproute
