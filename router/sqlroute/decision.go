package sqlroute

import (
	"strconv"
	"strings"
)

// Target is the server role a statement is sent to. The zero value is
// Primary, the safe default.
type Target uint8

const (
	// Primary is the read-write server.
	Primary Target = iota
	// Replica is any hot standby that serves reads.
	Replica
)

func (t Target) String() string {
	switch t {
	case Primary:
		return "primary"
	case Replica:
		return "replica"
	}
	return "Target(" + strconv.Itoa(int(t)) + ")"
}

// Kind is the type of one statement.
type Kind uint8

// Statement kinds. KindUnknown is used when the statement could not be
// parsed (or was too large to parse).
const (
	KindUnknown Kind = iota
	KindEmpty        // only whitespace, comments or semicolons
	KindSelect       // SELECT, TABLE, VALUES, WITH ... SELECT
	KindInsert
	KindUpdate
	KindDelete
	KindMerge
	KindShow
	KindExplain
	KindCopyTo   // COPY ... TO
	KindCopyFrom // COPY ... FROM
	KindCall
	KindDo
	KindBegin // BEGIN, START TRANSACTION
	KindCommit
	KindRollback
	KindSavepoint
	KindRelease
	KindRollbackTo
	KindPrepareTransaction
	KindCommitPrepared
	KindRollbackPrepared
	KindSetTransaction // SET TRANSACTION ...
	KindSet            // SET, SET SESSION CHARACTERISTICS, SET CONSTRAINTS
	KindReset
	KindDiscard
	KindListen
	KindUnlisten
	KindNotify
	KindPrepare // SQL-level PREPARE
	KindExecute // SQL-level EXECUTE
	KindDeallocate
	KindDeclareCursor
	KindFetch // FETCH, MOVE
	KindClose
	KindLock
	KindMaintenance // VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, REFRESH MATERIALIZED VIEW
	KindTruncate
	KindDDL // CREATE, ALTER, DROP, COMMENT, ... (schema changes)
	KindDCL // GRANT, REVOKE, role management
	KindProxySet
	KindOther // any other utility statement (LOAD, ALTER SYSTEM, ...)
	kindCount
)

var kindNames = [kindCount]string{
	KindUnknown:            "UNKNOWN",
	KindEmpty:              "EMPTY",
	KindSelect:             "SELECT",
	KindInsert:             "INSERT",
	KindUpdate:             "UPDATE",
	KindDelete:             "DELETE",
	KindMerge:              "MERGE",
	KindShow:               "SHOW",
	KindExplain:            "EXPLAIN",
	KindCopyTo:             "COPY TO",
	KindCopyFrom:           "COPY FROM",
	KindCall:               "CALL",
	KindDo:                 "DO",
	KindBegin:              "BEGIN",
	KindCommit:             "COMMIT",
	KindRollback:           "ROLLBACK",
	KindSavepoint:          "SAVEPOINT",
	KindRelease:            "RELEASE",
	KindRollbackTo:         "ROLLBACK TO",
	KindPrepareTransaction: "PREPARE TRANSACTION",
	KindCommitPrepared:     "COMMIT PREPARED",
	KindRollbackPrepared:   "ROLLBACK PREPARED",
	KindSetTransaction:     "SET TRANSACTION",
	KindSet:                "SET",
	KindReset:              "RESET",
	KindDiscard:            "DISCARD",
	KindListen:             "LISTEN",
	KindUnlisten:           "UNLISTEN",
	KindNotify:             "NOTIFY",
	KindPrepare:            "PREPARE",
	KindExecute:            "EXECUTE",
	KindDeallocate:         "DEALLOCATE",
	KindDeclareCursor:      "DECLARE CURSOR",
	KindFetch:              "FETCH",
	KindClose:              "CLOSE",
	KindLock:               "LOCK",
	KindMaintenance:        "MAINTENANCE",
	KindTruncate:           "TRUNCATE",
	KindDDL:                "DDL",
	KindDCL:                "DCL",
	KindProxySet:           "PROXY SET",
	KindOther:              "OTHER",
}

func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Flags are facts about a statement that matter to the session layer and the
// pooler beyond its target. For a multi-statement query they are the union
// over all statements.
type Flags uint32

const (
	// FlagWrite: the statement needs the primary: it writes data or schema,
	// locks rows, calls a writing function, or cannot run on a hot standby.
	// It is set even when a hint overrides Target.
	FlagWrite Flags = 1 << iota
	// FlagTxnControl: BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT,
	// RELEASE, ROLLBACK TO, SET TRANSACTION, PREPARE TRANSACTION, COMMIT/
	// ROLLBACK PREPARED.
	FlagTxnControl
	// FlagReadOnlyTxn: BEGIN / START TRANSACTION / SET TRANSACTION whose
	// transaction a replica can run: READ ONLY, no READ WRITE among the
	// options, and not SERIALIZABLE (a hot standby refuses serializable
	// mode). Only keyword forms count; SET transaction_read_only = ... and
	// default_transaction_* settings do not.
	FlagReadOnlyTxn
	// FlagSessionState: the statement changes state that outlives the current
	// transaction on this server connection (SET, RESET, DISCARD, LISTEN,
	// UNLISTEN, PREPARE, DEALLOCATE, CREATE TEMP ..., DECLARE ... WITH HOLD,
	// LOAD, session-level advisory locks, set_config, setseed), so the
	// pooler must pin or replay it.
	FlagSessionState
	// FlagListen: LISTEN or UNLISTEN.
	FlagListen
	// FlagAdvisoryLock: takes or releases a session-level advisory lock
	// (pg_advisory_lock, pg_try_advisory_lock, pg_advisory_unlock, ... but not
	// the _xact_ variants).
	FlagAdvisoryLock
	// FlagHint: a /* tiergate: primary|replica */ comment chose Target.
	FlagHint
	// FlagMultiStatement: the text holds more than one statement.
	FlagMultiStatement
	// FlagProxySetting: SET/RESET/SHOW tiergate.*; see Decision.Setting.
	FlagProxySetting
	// FlagUnparsable: the parser rejected the text, or it was not parsed
	// because it is larger than Config.MaxParseBytes or too complex; Target
	// is Primary (unless hinted), the server will report any real error, and
	// the table lists are empty (unknown).
	FlagUnparsable
	// FlagPin: session state that a reset query cannot hand over to another
	// client, so the pooler must keep this server connection for the client
	// until the state is gone: LISTEN, session-level advisory locks, SQL
	// PREPARE, DECLARE ... WITH HOLD, temporary tables, views and sequences.
	// Always comes with FlagSessionState.
	FlagPin
	// FlagClearsPrepared: DISCARD ALL or DEALLOCATE, which drop prepared
	// statements on the server connection (protocol-level ones included).
	FlagClearsPrepared
	// FlagShardHint: a /* tiergate: shard=N */ or /* tiergate: shard_key=K */
	// comment names the shard; ShardRouter.Route reads its value from the
	// text (values are not part of the digest).
	FlagShardHint
	// FlagVolatile: the statement's result can differ between two
	// executions over the same data. It calls a volatile or time- or
	// session-dependent built-in (now, random, clock_timestamp,
	// gen_random_uuid, nextval, current_setting, pg_backend_pid, age, ...)
	// or a function listed in Config.VolatileFunctions; or it uses
	// CURRENT_DATE, CURRENT_TIME[STAMP], LOCALTIME[STAMP], CURRENT_USER,
	// CURRENT_ROLE, SESSION_USER, USER, CURRENT_SCHEMA or CURRENT_CATALOG;
	// or it holds one of the string literals 'now', 'today', 'tomorrow',
	// 'yesterday' (any case, surrounding spaces allowed), which the server
	// turns into the current time when it converts them to a date/time
	// type, explicitly ('now'::timestamptz, CAST('today' AS date),
	// timestamp 'now') or implicitly (created_at > 'now'); or it reads a
	// statistics or activity view (pg_stat_*, pg_statio_*, pg_locks,
	// pg_settings, ...) or samples a table without REPEATABLE. Calls count
	// wherever they appear in the text, also in parts that do not run now
	// (a column DEFAULT, the body of PREPARE, EXPLAIN without ANALYZE).
	// Volatility behind a view, a user function, a default or a trigger is
	// not visible here; see FlagUserFunction.
	FlagVolatile
	// FlagUserFunction: the statement calls a function that is not a known
	// built-in (anything outside this package's table of PostgreSQL
	// built-ins, and anything schema-qualified outside pg_catalog, so also
	// every function of write_functions and volatile_functions). What such a
	// function reads, and whether it is volatile, is unknown.
	FlagUserFunction
	// FlagCacheHint: a /* tiergate: cache */ or /* tiergate: cache ttl=30s */
	// comment asks for the result to be cached. The TTL is not part of the
	// digest: read it from the text with CacheHintTTL.
	FlagCacheHint
	// FlagNoCacheHint: a /* tiergate: nocache */ comment asks for the result
	// not to be cached. It may come with FlagCacheHint; nocache wins.
	FlagNoCacheHint
)

var flagNames = [...]string{
	"write", "txn-control", "read-only-txn", "session-state", "listen",
	"advisory-lock", "hint", "multi-statement", "proxy-setting", "unparsable",
	"pin", "clears-prepared", "shard-hint", "volatile", "user-function",
	"cache-hint", "nocache-hint",
}

// Has reports whether all bits of f2 are set in f.
func (f Flags) Has(f2 Flags) bool { return f&f2 == f2 }

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var b strings.Builder
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(name)
		}
	}
	if rest := f &^ (1<<len(flagNames) - 1); rest != 0 {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString("0x" + strconv.FormatUint(uint64(rest), 16))
	}
	return b.String()
}

// Route is the value of the proxy-local setting tiergate.route.
type Route uint8

const (
	// RouteAuto: route by statement analysis (the default).
	RouteAuto Route = iota
	// RoutePrimary: send everything to the primary.
	RoutePrimary
	// RouteReplica: send everything to a replica.
	RouteReplica
)

func (r Route) String() string {
	switch r {
	case RouteAuto:
		return "auto"
	case RoutePrimary:
		return "primary"
	case RouteReplica:
		return "replica"
	}
	return "Route(" + strconv.Itoa(int(r)) + ")"
}

// Names (without the "tiergate." prefix) of the proxy-local settings.
const (
	// SettingRoute: primary, replica or auto.
	SettingRoute = "route"
	// SettingShard: the shard (name or number) a sharded database's
	// statements go to, overriding their shard keys.
	SettingShard = "shard"
	// SettingShardKey: a shard key value the statements are routed by.
	SettingShardKey = "shard_key"
)

// ProxySetting describes a SET, RESET or SHOW of a tiergate.* variable.
type ProxySetting struct {
	// Name is the variable name without the "tiergate." prefix (route,
	// shard or shard_key); empty when the statement is not a proxy setting.
	Name string
	// Show is true for SHOW tiergate.<name>: the session layer answers it.
	Show bool
	// Route is the new value for SET/RESET of tiergate.route (RESET and
	// SET ... TO DEFAULT give RouteAuto).
	Route Route
	// Local is true for SET LOCAL: the value lasts until the end of the
	// current transaction.
	Local bool
	// Value is the new value of tiergate.shard or tiergate.shard_key as
	// written ("" for RESET and SET ... TO DEFAULT).
	Value string
}

// Decision is where a statement (or multi-statement simple query) goes and
// why. Decisions returned by a Classifier for the same digest share their
// slices with the cache: treat every field as read-only.
type Decision struct {
	// Target is the server role to send the statement to.
	Target Target
	// Kind is the kind of the first statement (KindEmpty for an empty query).
	Kind Kind
	// Kinds holds the kind of every statement, in order (empty for an empty
	// query; one element for a single statement).
	Kinds []Kind
	// Reason says briefly why Target was chosen: "SELECT", "INSERT",
	// "SELECT FOR UPDATE", "write function nextval", "data-modifying CTE",
	// "hint", "unparsable", ...
	Reason string
	// Flags are the facts the session layer and the pooler act on.
	Flags Flags
	// Setting is the proxy-local setting for KindProxySet and for SHOW
	// tiergate.*; zero otherwise.
	Setting ProxySetting
	// TablesRead lists the relations the statement reads, schema-qualified as
	// written ("public.users", "users"), in order of first appearance, without
	// CTE names. Names that need quoting are double-quoted.
	TablesRead []string
	// TablesWritten lists the relations whose rows or definition the
	// statement changes (DML targets, COPY FROM, SELECT INTO / CREATE TABLE
	// AS, CREATE/ALTER/DROP TABLE, TRUNCATE, REFRESH MATERIALIZED VIEW).
	TablesWritten []string
	// Digest is the normalised-text digest of the statement (see Digest).
	Digest uint64
	// shape is what ShardRouter needs from the parse tree; nil when the
	// text was not parsed.
	shape *shape
}

// Has reports whether all bits of f are set in d.Flags.
func (d *Decision) Has(f Flags) bool { return d.Flags.Has(f) }
