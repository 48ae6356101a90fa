// Package pgtest starts real PostgreSQL servers for tests and for the demo:
// a replicated cluster (one primary and N streaming replicas, optionally
// synchronous) or several independent clusters used as shards, all on free
// 127.0.0.1 ports in temporary directories.
//
// It also owns the fault helpers the failover tests need: Kill (SIGKILL the
// postmaster), Stop, Start, Promote, Repoint, Pause and Resume (SIGSTOP and
// SIGCONT the node's whole process group).
//
// Tests use New or NewShards, which stop every server and remove every
// directory in t.Cleanup, also when the test fails or panics, and which skip
// the test when the PostgreSQL server binaries are missing (but fail it when
// the CI environment variable is "true"). Programs use Start and Close.
//
// When running as root the servers run as the "postgres" user, because
// initdb refuses to run as root.
package pgtest
