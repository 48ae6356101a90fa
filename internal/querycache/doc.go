// Package querycache owns dbproxy's read-through query cache: the store of
// encoded result messages (bounded by bytes, per-entry TTL, eviction by
// otter), the per-table generations that make cached results disappear when
// a table they read is written, and the batching of those invalidations to
// peer proxies.
//
// Consistency model. Every cached result records, when its query started,
// the generation of each table it read and of its database. A write that
// commits through any proxy bumps the generations of the tables it wrote
// (locally before the client sees the commit, on peers when the gossip
// message arrives), which makes every result that read them invalid at
// once; Get drops such entries lazily. A result is not stored when a table
// it read was invalidated while the query ran, or less than the grace
// period before it started: a replica that has not replayed the write yet
// could have answered it. So a result served from the cache is at most
// the gossip delay older than a write through another proxy, and at most
// its TTL older than a write that bypassed every proxy.
package querycache
