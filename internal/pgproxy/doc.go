// Package pgproxy is dbproxy's engine: client sessions, server pools,
// extended-protocol bookkeeping and the admin console. This file set
// currently holds dbproxy's config schema; the engine lands with the dbproxy
// issue.
package pgproxy
