// Package sqlroute owns dbproxy's statement routing decision: given the text
// of a simple query or of a prepared statement, it says whether the statement
// must run on the primary or may run on a replica, why, and what else the
// session layer must know about it (transaction control, session state
// changes, LISTEN, advisory locks, proxy-local tiergate.* settings, and the
// tables it reads and writes).
//
// It is pure: no sockets, no logging, no clocks. A [Classifier] normalises the
// statement with a hand-written lexer into a 64-bit digest (literals become
// placeholders, whitespace and comments collapse, routing hints are kept),
// looks the digest up in a bounded cache, and only on a miss parses the text
// with the real PostgreSQL parser (pg_query_go, cgo). Decisions are a function
// of the digest alone, so a cached [Decision] is shared, immutable, and
// returned without allocating. The one exception is [FlagVolatile] from a
// 'now'-like literal, which Classify adds to the cached Decision because
// literal values are not part of the digest.
//
// Routing rules, in short:
//
//   - Reads go to a replica: SELECT, TABLE, VALUES, WITH without
//     data-modifying parts, SHOW, EXPLAIN (without ANALYZE, or ANALYZE of a
//     read), COPY ... TO.
//   - Everything else goes to the primary, including SELECT ... FOR UPDATE /
//     SHARE / NO KEY UPDATE / KEY SHARE, SELECT ... INTO, calls to known
//     writing functions (nextval, setval, pg_advisory_*, pg_notify, lo_*
//     writes, txid_current, pg_current_xact_id, ...) and to the functions in
//     [Config.WriteFunctions], EXECUTE of a SQL-level prepared statement, and
//     statements the parser rejects (reason "unparsable"; the server will
//     report the real error).
//   - A multi-statement simple query goes to the primary if any part needs
//     it. Statements that act on the current connection's state only
//     (COMMIT, ROLLBACK, SAVEPOINT, SET, RESET, DISCARD, FETCH, ...) do not
//     pull a batch either way; on their own they go to the primary.
//   - A comment hint /* tiergate: primary */ or /* tiergate: replica */
//     anywhere in the text overrides the target (FlagHint).
//   - SET [LOCAL] tiergate.route = primary|replica|auto, RESET tiergate.route
//     and SHOW tiergate.route are proxy-local (KindProxySet / FlagProxySetting):
//     the session layer applies or answers them and never forwards them.
//
// Besides the target, a Decision carries what the session layer and the
// pooler act on: FlagTxnControl and FlagReadOnlyTxn (pin an explicit
// transaction to the primary unless it starts READ ONLY), FlagSessionState
// (reset before the server connection is reused), FlagPin (keep the server
// connection for this client: LISTEN, session advisory locks, SQL PREPARE,
// WITH HOLD cursors, temporary objects), FlagClearsPrepared (DISCARD ALL,
// DEALLOCATE), and the tables read and written (query-cache invalidation).
//
// # Query cache facts
//
// For the session layer's result cache a Decision also says whether the
// result may be reused and whether the client asked for it:
//
//   - [FlagVolatile]: the result can differ between two executions over the
//     same data. Set for calls to volatile or time- or session-dependent
//     built-ins (now, random, clock_timestamp, gen_random_uuid, nextval,
//     current_setting, pg_backend_pid, age, txid_*, pg_sleep*, ...) and to
//     the functions in [Config.VolatileFunctions], for SQL value functions
//     (CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME, CURRENT_USER,
//     SESSION_USER, CURRENT_SCHEMA, ...), for the string literals 'now',
//     'today', 'tomorrow', 'yesterday', cast or not, for statistics and
//     activity views (pg_stat_*, pg_locks, pg_settings, ...) and for
//     TABLESAMPLE without REPEATABLE.
//   - [FlagUserFunction]: a call to a function that is not in the package's
//     table of known built-ins (a side-effect-free allowlist of common
//     aggregates, window, string, math, date/time, JSON and array functions,
//     plus the volatile and writing built-ins), or to anything
//     schema-qualified outside pg_catalog. It may read other tables or be
//     volatile; the session layer caches such statements only when told to.
//   - [FlagCacheHint] and [FlagNoCacheHint]: /* tiergate: cache */,
//     /* tiergate: cache ttl=30s */ and /* tiergate: nocache */ comments,
//     each in its own comment next to any routing hint. Their presence is
//     part of the digest; the TTL is not, and [CacheHintTTL] reads it from
//     the text. A malformed cache hint is an ordinary comment.
//
// Volatility that the text does not show (a view or a column default that
// calls now(), an operator or cast implemented by a volatile function, a
// user function that reads other tables) is not detected; results also
// depend on session settings (TimeZone, DateStyle, search_path, role),
// which the session layer must account for itself.
//
// # Shard routing
//
// For a sharded database a [ShardRouter] over a shardmap.Map says where a
// classified statement runs ([ShardRouter.Route]): one shard, any shard,
// or several, with how to merge a multi-shard read ([Merge]), the per-shard
// parts of a multi-row INSERT ([ShardInsert]) or how to split COPY rows
// ([CopySplit]). It works from a shape of the parse tree cached with the
// Decision (the relations by scope, the conjuncts column = value, column
// IN (...), column = ANY(...), joins on columns, INSERT rows, UPDATE SET
// lists, COPY columns, the SELECT's ORDER BY, LIMIT, aggregates, GROUP BY
// and DISTINCT). The shape holds no literal values: it refers to a literal
// by its position among the digest's literal runs, and Route lexes the
// text again to read the values (a text whose lists are longer than the
// analysed one's is analysed on its own). Bind parameters are decoded with
// the key column's type, text or binary. Co-located tables (one key space)
// joined on their keys share their key conditions. Tables the map does not
// name are treated as reference tables. What cannot run correctly on
// several shards fails with ErrCrossShard; an UPDATE moving rows to
// another shard with ErrShardKeyUpdate; a missing, NULL or bad key with
// ErrShardKey.
//
// Known limits: functions are classified by name only (a user function that
// writes must be listed in write_functions, one that is volatile in
// volatile_functions; triggers and rules are not followed); EXECUTE of a SQL-level prepared statement goes to the primary
// because the statement text lives in the session; the lexer assumes
// standard_conforming_strings = on. A write sent to a replica by mistake or
// by a hint fails there with a read-only error; it cannot change data.
package sqlroute
