package sqlroute

import "strings"

// funcClass says what calling a function implies.
type funcClass uint8

const (
	// fnWrite: the call writes, or cannot run on a hot standby, or must run
	// on the connection holding related state (large-object descriptors,
	// currval after nextval): send the statement to the primary.
	fnWrite funcClass = 1 << iota
	// fnSession: the call changes session state (FlagSessionState).
	fnSession
	// fnAdvisory: a session-level advisory lock or unlock (FlagAdvisoryLock).
	fnAdvisory
	// fnPin: the state it creates ties the client to this server connection
	// (FlagPin).
	fnPin
	// fnVolatile: the result can differ between two calls with the same
	// arguments over the same data (FlagVolatile).
	fnVolatile
	// fnUser: not a known built-in (FlagUserFunction). Never in the table.
	fnUser
)

// builtinFuncs classifies PostgreSQL built-in functions, matched when called
// unqualified or as pg_catalog.<name>. A name in the table is a known
// built-in (no FlagUserFunction); a class of 0 means side-effect free and
// stable for a given database and session settings. Every writing or
// session-changing built-in is volatile too. A read-only lookup table.
var builtinFuncs = map[string]funcClass{
	// Sequences.
	"nextval": fnWrite | fnVolatile,
	"setval":  fnWrite | fnVolatile,
	"currval": fnWrite | fnVolatile, // session-local value set by nextval on the primary
	"lastval": fnWrite | fnVolatile,

	// Advisory locks: session level (session state) and transaction level.
	"pg_advisory_lock":                 fnWrite | fnVolatile | fnSession | fnAdvisory | fnPin,
	"pg_advisory_lock_shared":          fnWrite | fnVolatile | fnSession | fnAdvisory | fnPin,
	"pg_try_advisory_lock":             fnWrite | fnVolatile | fnSession | fnAdvisory | fnPin,
	"pg_try_advisory_lock_shared":      fnWrite | fnVolatile | fnSession | fnAdvisory | fnPin,
	"pg_advisory_unlock":               fnWrite | fnVolatile | fnSession | fnAdvisory,
	"pg_advisory_unlock_shared":        fnWrite | fnVolatile | fnSession | fnAdvisory,
	"pg_advisory_unlock_all":           fnWrite | fnVolatile | fnSession | fnAdvisory,
	"pg_advisory_xact_lock":            fnWrite | fnVolatile,
	"pg_advisory_xact_lock_shared":     fnWrite | fnVolatile,
	"pg_try_advisory_xact_lock":        fnWrite | fnVolatile,
	"pg_try_advisory_xact_lock_shared": fnWrite | fnVolatile,

	// Notifications.
	"pg_notify": fnWrite | fnVolatile,

	// Large objects: writers, and descriptor operations that need the
	// transaction that called lo_open.
	"lo_creat":      fnWrite | fnVolatile,
	"lo_create":     fnWrite | fnVolatile,
	"lo_import":     fnWrite | fnVolatile,
	"lo_unlink":     fnWrite | fnVolatile,
	"lo_put":        fnWrite | fnVolatile,
	"lo_from_bytea": fnWrite | fnVolatile,
	"lo_open":       fnWrite | fnVolatile,
	"lo_close":      fnWrite | fnVolatile,
	"loread":        fnWrite | fnVolatile,
	"lowrite":       fnWrite | fnVolatile,
	"lo_lseek":      fnWrite | fnVolatile,
	"lo_lseek64":    fnWrite | fnVolatile,
	"lo_tell":       fnWrite | fnVolatile,
	"lo_tell64":     fnWrite | fnVolatile,
	"lo_truncate":   fnWrite | fnVolatile,
	"lo_truncate64": fnWrite | fnVolatile,

	// Transaction ids (assigning one is a write) and WAL positions that a
	// standby cannot report.
	"txid_current":                   fnWrite | fnVolatile,
	"txid_current_if_assigned":       fnWrite | fnVolatile,
	"pg_current_xact_id":             fnWrite | fnVolatile,
	"pg_current_xact_id_if_assigned": fnWrite | fnVolatile,
	"pg_current_wal_lsn":             fnWrite | fnVolatile,
	"pg_current_wal_insert_lsn":      fnWrite | fnVolatile,
	"pg_current_wal_flush_lsn":       fnWrite | fnVolatile,
	"pg_switch_wal":                  fnWrite | fnVolatile,
	"pg_create_restore_point":        fnWrite | fnVolatile,
	"pg_backup_start":                fnWrite | fnVolatile,
	"pg_backup_stop":                 fnWrite | fnVolatile,
	"pg_start_backup":                fnWrite | fnVolatile,
	"pg_stop_backup":                 fnWrite | fnVolatile,

	// Replication slots and origins, logical messages.
	"pg_create_physical_replication_slot": fnWrite | fnVolatile,
	"pg_create_logical_replication_slot":  fnWrite | fnVolatile,
	"pg_drop_replication_slot":            fnWrite | fnVolatile,
	"pg_copy_physical_replication_slot":   fnWrite | fnVolatile,
	"pg_copy_logical_replication_slot":    fnWrite | fnVolatile,
	"pg_replication_slot_advance":         fnWrite | fnVolatile,
	"pg_logical_slot_get_changes":         fnWrite | fnVolatile,
	"pg_logical_slot_get_binary_changes":  fnWrite | fnVolatile,
	"pg_logical_emit_message":             fnWrite | fnVolatile,
	"pg_replication_origin_create":        fnWrite | fnVolatile,
	"pg_replication_origin_drop":          fnWrite | fnVolatile,
	"pg_replication_origin_advance":       fnWrite | fnVolatile,
	"pg_replication_origin_xact_setup":    fnWrite | fnVolatile,
	"pg_replication_origin_session_setup": fnWrite | fnVolatile | fnSession | fnPin,
	"pg_replication_origin_session_reset": fnWrite | fnVolatile | fnSession,
	"pg_import_system_collations":         fnWrite | fnVolatile,

	// Session state only: these run anywhere but change the connection.
	"set_config": fnVolatile | fnSession,
	"setseed":    fnVolatile | fnSession,

	// Volatile: time, randomness, and the session, connection or server
	// the statement happens to run on.
	"now":                           fnVolatile,
	"clock_timestamp":               fnVolatile,
	"statement_timestamp":           fnVolatile,
	"transaction_timestamp":         fnVolatile,
	"timeofday":                     fnVolatile,
	"age":                           fnVolatile, // age(x) is measured from the current date
	"random":                        fnVolatile,
	"random_normal":                 fnVolatile,
	"gen_random_uuid":               fnVolatile,
	"uuidv4":                        fnVolatile,
	"uuidv7":                        fnVolatile,
	"uuid_generate_v1":              fnVolatile, // uuid-ossp
	"uuid_generate_v1mc":            fnVolatile,
	"uuid_generate_v4":              fnVolatile,
	"pg_sleep":                      fnVolatile,
	"pg_sleep_for":                  fnVolatile,
	"pg_sleep_until":                fnVolatile,
	"txid_current_snapshot":         fnVolatile,
	"txid_snapshot_xmin":            fnVolatile,
	"txid_snapshot_xmax":            fnVolatile,
	"txid_snapshot_xip":             fnVolatile,
	"txid_visible_in_snapshot":      fnVolatile,
	"txid_status":                   fnVolatile,
	"pg_current_snapshot":           fnVolatile,
	"pg_backend_pid":                fnVolatile,
	"current_setting":               fnVolatile,
	"current_schema":                fnVolatile, // the function forms of CURRENT_SCHEMA, ...
	"current_schemas":               fnVolatile,
	"current_query":                 fnVolatile,
	"system_user":                   fnVolatile, // SYSTEM_USER
	"inet_client_addr":              fnVolatile,
	"inet_client_port":              fnVolatile,
	"inet_server_addr":              fnVolatile,
	"inet_server_port":              fnVolatile,
	"pg_postmaster_start_time":      fnVolatile,
	"pg_conf_load_time":             fnVolatile,
	"pg_is_in_recovery":             fnVolatile,
	"pg_last_wal_receive_lsn":       fnVolatile,
	"pg_last_wal_replay_lsn":        fnVolatile,
	"pg_last_xact_replay_timestamp": fnVolatile,

	// Known side-effect-free built-ins. Aggregates and window functions.
	"count": 0, "sum": 0, "avg": 0, "min": 0, "max": 0,
	"bool_and": 0, "bool_or": 0, "every": 0,
	"array_agg": 0, "string_agg": 0, "json_agg": 0, "jsonb_agg": 0,
	"json_object_agg": 0, "jsonb_object_agg": 0,
	"stddev": 0, "stddev_pop": 0, "stddev_samp": 0,
	"variance": 0, "var_pop": 0, "var_samp": 0,
	"percentile_cont": 0, "percentile_disc": 0, "mode": 0,
	"row_number": 0, "rank": 0, "dense_rank": 0, "percent_rank": 0,
	"cume_dist": 0, "ntile": 0, "lag": 0, "lead": 0,
	"first_value": 0, "last_value": 0, "nth_value": 0,
	// Strings.
	"lower": 0, "upper": 0, "length": 0, "char_length": 0,
	"character_length": 0, "octet_length": 0, "substr": 0, "substring": 0,
	"left": 0, "right": 0, "btrim": 0, "ltrim": 0, "rtrim": 0,
	"lpad": 0, "rpad": 0, "replace": 0, "concat": 0, "concat_ws": 0,
	"split_part": 0, "strpos": 0, "position": 0, "regexp_replace": 0,
	"regexp_match": 0, "regexp_matches": 0, "starts_with": 0, "format": 0,
	"md5": 0, "initcap": 0, "repeat": 0, "reverse": 0, "to_hex": 0,
	"encode": 0, "decode": 0, "overlay": 0, "normalize": 0,
	"is_normalized": 0, "like_escape": 0, "similar_to_escape": 0,
	// Numbers.
	"abs": 0, "ceil": 0, "ceiling": 0, "floor": 0, "round": 0, "trunc": 0,
	"mod": 0, "power": 0, "sqrt": 0, "greatest": 0, "least": 0,
	"ln": 0, "log": 0, "log10": 0, "exp": 0, "sign": 0, "width_bucket": 0,
	// Dates and times (their results can depend on the TimeZone and
	// DateStyle settings, not on the clock).
	"date_trunc": 0, "date_part": 0, "extract": 0, "to_char": 0,
	"to_date": 0, "to_timestamp": 0, "make_date": 0, "make_timestamp": 0,
	"make_interval": 0, "justify_days": 0, "justify_hours": 0,
	"justify_interval": 0, "timezone": 0, "overlaps": 0,
	// JSON.
	"json_build_object": 0, "jsonb_build_object": 0, "json_build_array": 0,
	"jsonb_build_array": 0, "json_object": 0, "to_json": 0, "to_jsonb": 0,
	"jsonb_set": 0, "jsonb_array_length": 0, "json_array_length": 0,
	"jsonb_extract_path": 0, "jsonb_extract_path_text": 0,
	"json_extract_path": 0, "json_extract_path_text": 0, "jsonb_typeof": 0,
	"row_to_json": 0, "jsonb_strip_nulls": 0, "jsonb_pretty": 0,
	// Arrays and set-returning functions.
	"array_length": 0, "cardinality": 0, "unnest": 0, "array_position": 0,
	"array_remove": 0, "array_append": 0, "array_cat": 0,
	"array_to_string": 0, "string_to_array": 0, "generate_series": 0,
	"generate_subscripts": 0,
	// Miscellaneous.
	"coalesce": 0, "nullif": 0, "num_nulls": 0, "num_nonnulls": 0,
	"pg_column_size": 0, "hashtext": 0, "pg_typeof": 0, "format_type": 0,
	"quote_ident": 0, "quote_literal": 0, "quote_nullable": 0,
	"pg_collation_for": 0, "xmlexists": 0, "version": 0,
	"current_database": 0,
}

// nameSet matches function names from the config: "name" entries match
// in any schema, "schema.name" entries only in that schema; case is
// ignored.
type nameSet struct {
	anySchema map[string]bool
	qualified map[string]bool
}

func newNameSet(names []string) nameSet {
	s := nameSet{anySchema: map[string]bool{}, qualified: map[string]bool{}}
	for _, n := range names {
		n = strings.ToLower(n)
		if strings.Contains(n, ".") {
			s.qualified[n] = true
		} else {
			s.anySchema[n] = true
		}
	}
	return s
}

func (s nameSet) empty() bool { return len(s.anySchema) == 0 && len(s.qualified) == 0 }

// has reports whether the set names schema.name; both are lower case,
// schema is empty for an unqualified call.
func (s nameSet) has(schema, name string) bool {
	return s.anySchema[name] || (schema != "" && s.qualified[schema+"."+name])
}

// funcMatcher classifies function calls: built-ins plus the configured
// write_functions and volatile_functions. It is immutable after
// newFuncMatcher.
type funcMatcher struct {
	write    nameSet
	volatile nameSet
}

func newFuncMatcher(write, volatile []string) funcMatcher {
	return funcMatcher{write: newNameSet(write), volatile: newNameSet(volatile)}
}

// classify returns what a call of schema.name implies; schema is empty for
// an unqualified call. Names come from the parser (unquoted identifiers
// already folded to lower case). A name that is not in builtinFuncs, or a
// schema other than pg_catalog, makes a user function.
func (m *funcMatcher) classify(schema, name string) funcClass {
	c := fnUser
	if schema == "" || schema == "pg_catalog" {
		if b, ok := builtinFuncs[name]; ok {
			c = b
		}
	}
	if m.write.empty() && m.volatile.empty() {
		return c
	}
	lschema, lname := strings.ToLower(schema), strings.ToLower(name)
	if m.write.has(lschema, lname) {
		c |= fnWrite
	}
	if m.volatile.has(lschema, lname) {
		c |= fnVolatile
	}
	return c
}
