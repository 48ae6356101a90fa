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
// moment, and never to a connection already handed to someone else.
//
// # Not done here
//
// TLS (SSLRequest is answered 'N'), SCRAM channel binding, SASLprep of
// non-ASCII passwords, protocol 3.2 (negotiated down to 3.0), replication
// connections, failover (the configured primary stays the primary), and
// sharding.
package pgproxy
