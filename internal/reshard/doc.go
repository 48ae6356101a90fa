// Package reshard owns online resharding: moving the rows whose shard
// changes between two shard maps (shardmap.Diff) while the proxies keep
// serving, switching the proxies to the new map, and deleting the moved
// rows from their old shards. `dbproxy reshard` is a thin CLI over Run;
// tests and tools can drive the steps one by one through a Resharder.
//
//	err := reshard.Run(ctx, reshard.Options{
//		Old: oldMap, New: newMap,                // *shardmap.Map from old.yaml / new.yaml
//		Nodes: map[string]reshard.Node{          // every shard name of both maps
//			"pg0": {Primary: dsn0, Replica: dsn0r},
//			"pg1": {Primary: dsn1},
//			"pg2": {Primary: dsn2},
//		},
//		Config:   cfg,                           // batch_rows, copy_from, ...
//		Store:    &reshard.FileStore{Path: state}, // -state FILE: resumable
//		Cutover:  true,                          // -cutover
//		Pause:    proxies.PauseWrites,           // returns once no write is in flight
//		Resume:   proxies.ResumeWrites,
//		Switch:   proxies.LoadNewMap,            // idempotent reload to the new map
//		Progress: reshard.NewBar(os.Stderr, reshard.IsTerminal(os.Stderr)).Update,
//		Log:      log,
//	})
//
// # Phases
//
// A job goes through PhaseCopy, PhaseCatchup, PhaseCutover, PhaseDelete
// and PhaseDone, recorded in its State after every batch:
//
//  1. Copy installs change capture on every source shard (below), waits
//     for the replica it copies from to replay that, then copies every
//     (table, old shard) that loses keys, in batches, and copies the
//     reference tables in full to the shards the new map adds.
//  2. CatchUp applies the captured changes to the targets, round after
//     round, until fewer than catchup_threshold are waiting. Without
//     -cutover Run stops here; capture stays installed and a later run
//     continues.
//  3. Cutover has the proxies pause writes, applies the rest of the
//     captured changes, re-copies the reference tables written since their
//     copy, verifies every moved set, records the decision, calls Switch,
//     drops the capture triggers and resumes writes.
//  4. Delete drops what is left of the capture and deletes the moved rows
//     from their old shards, in batches.
//
// A source row is deleted only after its set was verified and the proxies
// route its key to the new shard; before the cutover the old shards are
// only read (and given triggers). Abort undoes a job that has not cut over.
//
// # Which rows move, and the cost of finding them
//
// For the hash function the shard of a key is xxHash64 of its encoding
// reduced to a partition, which PostgreSQL cannot compute, so no SQL
// predicate selects the moving rows. The copy therefore reads whole rows of
// the source table, in key order and in key ranges of batch_rows rows, and
// filters them in Go with TableDiff.Moves (parsing, routing and buffering
// cost about 130 ns a row, BenchmarkCopyFilter). Reading whole rows in one pass was chosen over first
// streaming the keys and then fetching the moving rows by key: it needs no
// key list in memory, reads each row once, and the rows that move are
// already in hand. The cost is transfer: a source sends all of its rows,
// so going from N to N+1 shards reads about N+1 times the bytes that move
// (3× for 2 → 3). Verification and the delete phase stream only (key, row
// hash) and keys.
//
// For the modulo function (new map) the plan pushes the condition down:
// a source sends only the rows whose new shard is another one, a target's
// verification reads only the rows that belong to it. Range and list
// functions are filtered in Go like hash (shardmap does not expose their
// bounds).
//
// A batch is the key range (last, hi], where hi is found with
// `ORDER BY key OFFSET batch_rows-1 LIMIT 1`, so all rows of a key are in
// one batch (keys need not be unique: orders.user_id). This needs an index
// on the shard key; without one every batch scans the table. Rows with a
// NULL key never move.
//
// # Copying a batch
//
// The source runs COPY (SELECT columns FROM t WHERE key range) TO STDOUT
// (FORMAT binary), from the replica with copy_from: replica. The moving
// tuples are passed through unchanged into one buffer per target, and each
// target gets one transaction: DELETE the batch's moving keys, COPY ...
// FROM STDIN (FORMAT binary), commit; then the checkpoint (the batch's
// last key) is saved. A batch re-run after a crash between the commit and
// the checkpoint replaces what the first attempt wrote, so nothing is
// duplicated. Tables with a composite column or an array of a user-defined
// or composite type are copied in the text format instead: their binary
// forms carry type OIDs, which differ between servers.
//
// # Change capture
//
// Capture is trigger based, so it works with wal_level replica and needs
// no replication slot. In schema tiergate_reshard on each source primary:
//
//   - an AFTER INSERT/UPDATE/DELETE row trigger on each moving table logs
//     the changed key (old and new key when an UPDATE changes it) into
//     tiergate_reshard.change_log;
//   - a BEFORE TRUNCATE trigger rejects TRUNCATE until the cutover;
//   - a statement trigger on each reference table that is copied marks it
//     dirty for each target.
//
// The triggers skip the resharder's own sessions (setting
// tiergate.reshard_skip). Replaying a logged key replaces the target's
// rows for that key with the source primary's current rows, or deletes
// them when the key is gone. That is idempotent and independent of order,
// so log ids need not follow commit order; entries are deleted after
// their keys were applied. Capture is installed before the copy starts, so
// every write is either in what the copy reads or in the log.
//
// Cost while it runs: each write to a moving table on a source also
// inserts one log row (two for an UPDATE that changes the key), WAL logged;
// installing and removing a trigger takes a brief table lock, tried with
// a short lock_timeout (writes queue behind the lock request) and retried.
//
// # The write pause
//
// Pause must return only when no write transaction is in flight on any
// proxy and new ones wait (PgBouncer's PAUSE, or dbproxy's own). A write
// from a client that bypasses the proxies and lands between the
// verification and the switch is still captured and applied before writes
// resume; one after the triggers are dropped is lost. The pause
// lasts the final catch-up (fewer than catchup_threshold changes), the
// re-copy of dirty reference tables, and a verification scan of the moving
// tables on their sources and targets. In the tests (2 → 3 shards, 100k
// users and 30k orders, a third of them moving, all servers on one
// two-core machine) writes were paused 0.2 s when the machine was
// otherwise idle and up to 1.6 s when other work loaded it; the scan grows
// linearly with the rows of the moving tables.
//
// # Verification
//
// For each (table, old shard, new shard) the rows that move are counted
// and their checksums summed, sum(hashtextextended(ROW(columns)::text, 0))
// mod 2^64, on the source primary and on the target primary, filtering
// both sides in Go with TableDiff.Moves; every reference table copy is
// compared whole. Sessions fix DateStyle, TimeZone, extra_float_digits,
// IntervalStyle and bytea_output so both sides print rows alike. Any
// difference is a *VerifyError: the cutover stops before Switch, writes
// resume on the old map, nothing is deleted.
//
// # Crashes and re-runs
//
// Every step resumes from the saved State (FileStore writes it atomically
// after each batch). A crash during the copy resumes after the last saved
// batch; during catch-up the log still holds whatever was not applied.
// A crash after the cutover decision (PhaseCutover) but before the job
// recorded the switch: the next Cutover pauses, applies what the
// still-installed capture logged meanwhile and calls Switch again, without
// verifying (writes through proxies that had switched would fail it). If a
// capture trigger disappears, CatchUp and Cutover refuse to continue. A
// job takes a session advisory lock on every shard it touches while a
// step runs, so two jobs never work on a shard at once.
//
// # Left out
//
//   - Schema changes: tables must exist on the new shards with the same
//     column types (run a schema-only dump first); sequences are not
//     advanced on the new shards.
//   - Foreign keys between moving tables: copies and deletes run per table
//     in parallel, so such constraints must be deferrable or dropped
//     during the job. User triggers on target tables fire on the copy.
//   - Logical replication as the capture: it needs wal_level logical, a
//     slot and a publication per source and a decoder (pglogrepl is not a
//     dependency); triggers need none of that, at the price of the extra
//     writes above.
//   - Tables that become or stop being sharded, a changed shard key column
//     or type (ErrUnsupported), and rows a map places on no shard
//     (ErrUnplaceable).
//   - Reference tables on removed shards are left in place.
package reshard
