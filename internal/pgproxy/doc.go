// Package pgproxy is dbproxy's engine: client sessions speaking the
// PostgreSQL wire protocol (pgproto3.Backend), pools of server connections
// (pgproto3.Frontend over connections logged in with pgconn and hijacked),
// extended-protocol bookkeeping, read/write routing with read-your-writes,
// node health checks, and the admin console.
//
// # A query's walk
//
// A session reads client messages. A simple Query, or an extended-protocol
// batch up to Sync (or Flush), is one unit of work. Without a server
// connection attached, the unit is classified (read or write, transaction
// control, session state), a node is chosen (a replica for reads when one
// has replayed the client's read-your-writes LSN, else the primary), and a
// connection is checked out of the (database, user, node) pool. The batch
// is written with statement names rewritten, the answers are relayed until
// ReadyForQuery, and in transaction mode the connection goes back to the
// pool when the server reports the transaction idle ('I').
//
// # Pooling
//
// In transaction mode (the default) a server connection is lent for one
// transaction. Named prepared statements are tracked per client and live on
// the servers under a name derived from their text (tg_<hash>): a Bind on a
// connection that lacks the statement makes the proxy prepare it first and
// swallow the extra ParseComplete; a Parse of a statement the connection
// already has, and a Close of a named statement, are answered by the proxy.
// The unnamed statement is re-sent when the connection last parsed another
// one. Reported parameters (client_encoding, DateStyle, TimeZone,
// IntervalStyle, application_name) and startup settings are SET on a
// connection at checkout when they differ, so every client sees the values
// it was told in ParameterStatus. A unit that changes other session state
// (SET of other settings, DISCARD, DEALLOCATE, ...) makes the proxy run
// DISCARD ALL before the connection serves someone else: such settings last
// until the end of the transaction. LISTEN, session advisory locks, SQL
// PREPARE, WITH HOLD cursors and temporary tables pin the client to its
// server connection for the rest of the session; a pinned LISTEN session
// gets its notifications while idle. In session mode a client keeps one
// primary connection for its lifetime and DISCARD ALL runs when it leaves.
// A client that disconnects in a transaction has it rolled back; one that
// disappears mid-query has its server connection closed.
//
// # Routing
//
// Reads go to a replica, writes and explicit transactions (except BEGIN
// READ ONLY) to the primary. A /* tiergate: primary|replica */ hint, or
// SET tiergate.route = primary|replica|auto (answered by the proxy, never
// forwarded, simple protocol only; SET LOCAL is accepted and ignored), override
// the choice. After a client's write transaction commits on the primary
// the proxy samples pg_current_wal_lsn() on the same connection; that
// client's reads then go only to replicas whose replay LSN (from the health
// checks) has reached it, else to the primary. A read whose replica fails
// before anything reached the client is retried on another node.
//
// # Cancel
//
// Each client gets its own BackendKeyData; a CancelRequest carrying it is
// forwarded to the server connection running that client's unit at that
// moment (every shard's, for a statement running on several shards), and
// never to a connection already handed to someone else.
//
// # Sharding
//
// A database with shards: (one primary and its replicas per shard) and a
// sharding: map (package shardmap) is sharded: each shard is a cluster of
// its own (pools, health checks, read/write split and read-your-writes per
// shard, SHOW STATS rows "db/shard"), and router/sqlroute's ShardRouter
// routes every unit of work by the shard keys it finds (WHERE key = ...,
// key IN (...), key = ANY($1), INSERT ... VALUES, UPDATE/DELETE, COPY
// FROM), by a /* tiergate: shard=N | shard_key=K */ hint, or by SET
// tiergate.shard / tiergate.shard_key (session, or LOCAL to the
// transaction; simple protocol). The extended protocol routes at Bind,
// with the statement's cached analysis and the Bind's parameters.
//
//   - One shard: the unit runs there like on an unsharded database.
//   - No sharded table, or reads of reference tables: any one shard (the
//     next in turn; shard 0 for writes such as nextval).
//   - A read without the key: every shard, in parallel, its rows held (up
//     to max_fanout_bytes) and merged (fanout.go, merge.go): k-way merge
//     on ORDER BY, LIMIT/OFFSET after the merge
//     (LIMIT offset+limit pushed down), count/sum/min/max/avg and GROUP
//     BY combined (avg as sum and count, divided like numeric_div),
//     DISTINCT. What the merger cannot answer is refused with 0A000 unless
//     allow_unsafe_cross_shard; a shard's error names the shard.
//   - Writes to every shard (reference tables, DDL, UPDATE/DELETE without
//     the key), a multi-row INSERT split per shard, COPY FROM split by key
//     (copysplit.go): each shard in its own transaction, atomically across
//     shards with two_phase_commit (twophase.go).
//   - A transaction starts on a shard when it first reaches it (BEGIN is
//     answered by the proxy, and the transaction's savepoints are replayed
//     there); SAVEPOINT, RELEASE and ROLLBACK TO run on every shard it is
//     on. Writing to a second shard needs two_phase_commit, else it is
//     refused with 0A000. COMMIT with several shards is two-phase;
//     in-doubt transactions are settled at startup and every minute from
//     tiergate.twophase_decisions on shard 0.
//
// The console's EXPLAIN ROUTE <statement> shows a decision, SHOW SHARDS
// the cross-shard counters, PAUSE WRITES stops writes for a resharding
// cutover (dbproxy reshard).
//
// # Not done here
//
// SCRAM channel binding, SASLprep of non-ASCII passwords, protocol 3.2
// (negotiated down to 3.0), replication connections. Sharding: COPY
// (query) TO with ORDER BY, LIMIT or aggregates across shards (COPY TO of
// a table or a plain query concatenates the shards' data), cursors and
// portals fetched in parts across shards, batches whose statements span
// shards, SET tiergate.* in the extended protocol, ordering text (ORDER BY,
// min, max) across shards unless the database collation is C or POSIX
// (refused: the merger compares bytes).
package pgproxy
