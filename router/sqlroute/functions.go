package sqlroute

import "strings"

// funcClass says what calling a built-in function implies for routing.
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
)

// builtinFuncs classifies PostgreSQL built-in functions, matched when called
// unqualified or as pg_catalog.<name>. A read-only lookup table.
var builtinFuncs = map[string]funcClass{
	// Sequences.
	"nextval": fnWrite,
	"setval":  fnWrite,
	"currval": fnWrite, // session-local value set by nextval on the primary
	"lastval": fnWrite,

	// Advisory locks: session level (session state) and transaction level.
	"pg_advisory_lock":                 fnWrite | fnSession | fnAdvisory | fnPin,
	"pg_advisory_lock_shared":          fnWrite | fnSession | fnAdvisory | fnPin,
	"pg_try_advisory_lock":             fnWrite | fnSession | fnAdvisory | fnPin,
	"pg_try_advisory_lock_shared":      fnWrite | fnSession | fnAdvisory | fnPin,
	"pg_advisory_unlock":               fnWrite | fnSession | fnAdvisory,
	"pg_advisory_unlock_shared":        fnWrite | fnSession | fnAdvisory,
	"pg_advisory_unlock_all":           fnWrite | fnSession | fnAdvisory,
	"pg_advisory_xact_lock":            fnWrite,
	"pg_advisory_xact_lock_shared":     fnWrite,
	"pg_try_advisory_xact_lock":        fnWrite,
	"pg_try_advisory_xact_lock_shared": fnWrite,

	// Notifications.
	"pg_notify": fnWrite,

	// Large objects: writers, and descriptor operations that need the
	// transaction that called lo_open.
	"lo_creat":      fnWrite,
	"lo_create":     fnWrite,
	"lo_import":     fnWrite,
	"lo_unlink":     fnWrite,
	"lo_put":        fnWrite,
	"lo_from_bytea": fnWrite,
	"lo_open":       fnWrite,
	"lo_close":      fnWrite,
	"loread":        fnWrite,
	"lowrite":       fnWrite,
	"lo_lseek":      fnWrite,
	"lo_lseek64":    fnWrite,
	"lo_tell":       fnWrite,
	"lo_tell64":     fnWrite,
	"lo_truncate":   fnWrite,
	"lo_truncate64": fnWrite,

	// Transaction ids (assigning one is a write) and WAL positions that a
	// standby cannot report.
	"txid_current":                   fnWrite,
	"txid_current_if_assigned":       fnWrite,
	"pg_current_xact_id":             fnWrite,
	"pg_current_xact_id_if_assigned": fnWrite,
	"pg_current_wal_lsn":             fnWrite,
	"pg_current_wal_insert_lsn":      fnWrite,
	"pg_current_wal_flush_lsn":       fnWrite,
	"pg_switch_wal":                  fnWrite,
	"pg_create_restore_point":        fnWrite,
	"pg_backup_start":                fnWrite,
	"pg_backup_stop":                 fnWrite,
	"pg_start_backup":                fnWrite,
	"pg_stop_backup":                 fnWrite,

	// Replication slots and origins, logical messages.
	"pg_create_physical_replication_slot": fnWrite,
	"pg_create_logical_replication_slot":  fnWrite,
	"pg_drop_replication_slot":            fnWrite,
	"pg_copy_physical_replication_slot":   fnWrite,
	"pg_copy_logical_replication_slot":    fnWrite,
	"pg_replication_slot_advance":         fnWrite,
	"pg_logical_slot_get_changes":         fnWrite,
	"pg_logical_slot_get_binary_changes":  fnWrite,
	"pg_logical_emit_message":             fnWrite,
	"pg_replication_origin_create":        fnWrite,
	"pg_replication_origin_drop":          fnWrite,
	"pg_replication_origin_advance":       fnWrite,
	"pg_replication_origin_xact_setup":    fnWrite,
	"pg_replication_origin_session_setup": fnWrite | fnSession | fnPin,
	"pg_replication_origin_session_reset": fnWrite | fnSession,
	"pg_import_system_collations":         fnWrite,

	// Session state only: these run anywhere but change the connection.
	"set_config": fnSession,
	"setseed":    fnSession,
}

// funcMatcher classifies function calls: built-ins plus the configured
// write_functions. It is immutable after newFuncMatcher.
type funcMatcher struct {
	anySchema map[string]bool // "name" entries
	qualified map[string]bool // "schema.name" entries
}

func newFuncMatcher(names []string) funcMatcher {
	m := funcMatcher{anySchema: map[string]bool{}, qualified: map[string]bool{}}
	for _, n := range names {
		n = strings.ToLower(n)
		if strings.Contains(n, ".") {
			m.qualified[n] = true
		} else {
			m.anySchema[n] = true
		}
	}
	return m
}

// classify returns what a call of schema.name implies; schema is empty for
// an unqualified call. Names come from the parser (unquoted identifiers
// already folded to lower case).
func (m *funcMatcher) classify(schema, name string) funcClass {
	var c funcClass
	if schema == "" || schema == "pg_catalog" {
		c = builtinFuncs[name]
	}
	if len(m.anySchema) > 0 || len(m.qualified) > 0 {
		lname := strings.ToLower(name)
		if m.anySchema[lname] {
			c |= fnWrite
		} else if schema != "" && m.qualified[strings.ToLower(schema)+"."+lname] {
			c |= fnWrite
		}
	}
	return c
}
