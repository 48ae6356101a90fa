package pgproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// Two-phase commit across shards (two_phase_commit: true).
//
// A transaction that wrote to several shards commits in two phases: every
// written shard runs PREPARE TRANSACTION '<id>_<shard>'; then the decision
// is recorded by inserting (<id>, 'commit') into
// tiergate.twophase_decisions on shard 0's primary; then every shard runs
// COMMIT PREPARED. A failure before the decision rolls every part back.
// After the decision the transaction is committed: a shard that cannot
// commit its part now is finished by recovery, which the client does not
// wait for.
//
// Recovery (at startup, then every minute) looks for prepared transactions
// named tg2pc_* on every shard, older than a grace period, and settles
// each by the decision table: it inserts (<id>, 'abort') unless a decision
// exists (ON CONFLICT DO NOTHING) and then commits or rolls back as the
// recorded decision says. The insert race makes recovery safe next to a
// proxy that is committing: whichever decision is inserted first wins, and
// a committer that finds 'abort' rolls back. A write to several shards
// outside a transaction (a reference table, a split INSERT, an UPDATE
// without the shard key) commits the same way.

// twoPhasePrefix starts every transaction id the proxy prepares.
const twoPhasePrefix = "tg2pc_"

// decisionsTable holds the commit decisions, on shard 0.
const decisionsTable = "tiergate.twophase_decisions"

const decisionsDDL = `CREATE SCHEMA IF NOT EXISTS tiergate;
CREATE TABLE IF NOT EXISTS ` + decisionsTable + ` (
  gid text PRIMARY KEY,
  outcome text NOT NULL CHECK (outcome IN ('commit', 'abort')),
  decided_at timestamptz NOT NULL DEFAULT now())`

// twoPhaseGrace is how old a prepared transaction must be before recovery
// settles it (a younger one may belong to a proxy still committing).
const twoPhaseGrace = 10 * time.Second

var (
	instanceID = func() string {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}()
	twoPhaseSeq atomic.Uint64
)

// newTwoPhaseID returns a fresh transaction id (without the shard suffix).
func newTwoPhaseID() string {
	return fmt.Sprintf("%s%s_%d", twoPhasePrefix, instanceID, twoPhaseSeq.Add(1))
}

func partGID(id string, shard int) string { return fmt.Sprintf("%s_%d", id, shard) }

// baseID strips the shard suffix from a prepared transaction's gid.
func baseID(gid string) string {
	if i := strings.LastIndexByte(gid, '_'); i > 0 {
		return gid[:i]
	}
	return gid
}

// gid is the prepared transaction of one shard's part of a fan-out write.
func (f *fanout) gid(s *session, shard int) string {
	if f.txid == "" {
		f.txid = newTwoPhaseID()
	}
	return partGID(f.txid, shard)
}

// errCommitUnknown: the decision could not be recorded or read back; the
// prepared parts are left to recovery.
var errCommitUnknown = errors.New("two-phase commit: the outcome is not known yet (recovery will settle it)")

// decide records the commit decision for id on shard 0 with exec, and
// reports whether the transaction commits.
func decide(exec func(sql string) ([]string, error), id string) (bool, error) {
	rows, err := exec("INSERT INTO " + decisionsTable + " (gid, outcome) VALUES (" + quoteLiteral(id) + ", 'commit') ON CONFLICT (gid) DO NOTHING RETURNING outcome")
	if err != nil && isServerResponse(err) && strings.Contains(err.Error(), "42P01") {
		// The table is missing (first use): create it and retry.
		if _, cerr := exec(decisionsDDL); cerr == nil {
			rows, err = exec("INSERT INTO " + decisionsTable + " (gid, outcome) VALUES (" + quoteLiteral(id) + ", 'commit') ON CONFLICT (gid) DO NOTHING RETURNING outcome")
		}
	}
	if err != nil {
		return false, err
	}
	return len(rows) == 1, nil
}

// commitTwoPhase commits the session's transaction on the shards it wrote
// to (and plainly on those it only read).
func (s *session) commitTwoPhase(ctx context.Context, sdb *shardedDB) error {
	sh := s.sh
	rt := s.rt()
	timeout := rt.cfg.Pool.ConnectTimeout
	id := newTwoPhaseID()
	// Read-only parts first: nothing to prepare.
	for m := sh.mask &^ sh.wrote; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		if _, err := sh.conns[k].exec("COMMIT", timeout); err != nil {
			s.rollbackParts(sdb, id, 0)
			return fmt.Errorf("shard %s: %w", sdb.shardName(k), err)
		}
	}
	var prepared uint64
	for m := sh.mask & sh.wrote; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		sc := sh.conns[k]
		_, err := sc.exec("PREPARE TRANSACTION "+quoteLiteral(partGID(id, k)), timeout)
		if err == nil && sc.txStatus != 'I' {
			err = errors.New("PREPARE TRANSACTION left the transaction open")
		}
		if err != nil {
			s.rollbackParts(sdb, id, prepared)
			return fmt.Errorf("transaction rolled back: shard %s: %w", sdb.shardName(k), err)
		}
		prepared |= 1 << uint(k)
	}
	commit, err := s.decideOnShard0(ctx, sdb, id)
	if err != nil {
		if isServerResponse(err) {
			s.rollbackParts(sdb, id, prepared)
			return fmt.Errorf("transaction rolled back: recording the commit decision on shard %s: %w", sdb.shardName(0), err)
		}
		return fmt.Errorf("%w: %v", errCommitUnknown, err)
	}
	if !commit {
		s.rollbackParts(sdb, id, prepared)
		return errors.New("transaction rolled back: recovery decided to abort it")
	}
	s.commitParts(sdb, id, prepared)
	sdb.stats.twoPhase.Add(1)
	return nil
}

// decideOnShard0 records the decision on shard 0's primary, on the
// session's connection there when it has one (it is idle after PREPARE).
func (s *session) decideOnShard0(ctx context.Context, sdb *shardedDB, id string) (bool, error) {
	rt := s.rt()
	timeout := rt.cfg.Pool.ConnectTimeout
	if sc := s.sh.conns[0]; sc != nil && s.sh.nodes[0].role == rolePrimary && sc.txStatus == 'I' {
		return decide(func(q string) ([]string, error) { return sc.exec(q, timeout) }, id)
	}
	n, err := s.srv.primaryFor(sdb.shards[0])
	if err != nil {
		return false, err
	}
	sc, err := s.checkout(ctx, rt, n)
	if err != nil {
		return false, err
	}
	ok, err := decide(func(q string) ([]string, error) { return sc.exec(q, timeout) }, id)
	if sc.txStatus != 'I' {
		sc.broken = true
	}
	sc.client.Store(0)
	sc.pool.release(sc)
	return ok, err
}

// rollbackParts rolls back what is prepared (mask) and what is still open.
func (s *session) rollbackParts(sdb *shardedDB, id string, prepared uint64) {
	sh := s.sh
	timeout := s.rt().cfg.Pool.ConnectTimeout
	for m := sh.mask; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		sc := sh.conns[k]
		var err error
		if prepared&(1<<uint(k)) != 0 {
			_, err = sc.exec("ROLLBACK PREPARED "+quoteLiteral(partGID(id, k)), timeout)
		} else if sc.txStatus != 'I' {
			_, err = sc.exec("ROLLBACK", timeout)
		}
		if err != nil {
			s.log.Warn("two-phase rollback failed (recovery settles it)", zap.String("gid", partGID(id, k)), zap.Error(err))
		}
	}
}

// commitParts commits the prepared parts; a failure is left to recovery.
func (s *session) commitParts(sdb *shardedDB, id string, prepared uint64) {
	sh := s.sh
	timeout := s.rt().cfg.Pool.ConnectTimeout
	done := true
	for m := prepared; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		if _, err := sh.conns[k].exec("COMMIT PREPARED "+quoteLiteral(partGID(id, k)), timeout); err != nil {
			done = false
			s.log.Warn("COMMIT PREPARED failed; recovery will commit it", zap.String("gid", partGID(id, k)), zap.Error(err))
		}
	}
	if done {
		s.forgetDecision(sdb, id)
	}
}

// forgetDecision deletes a decision whose parts are all committed.
func (s *session) forgetDecision(sdb *shardedDB, id string) {
	timeout := s.rt().cfg.Pool.ConnectTimeout
	if sc := s.sh.conns[0]; sc != nil && s.sh.nodes[0].role == rolePrimary && sc.txStatus == 'I' {
		_, _ = sc.exec("DELETE FROM "+decisionsTable+" WHERE gid = "+quoteLiteral(id), timeout)
		return
	}
	// Otherwise recovery deletes it once it is older than the grace period.
}

// finishTwoPhase commits a fan-out write whose parts all prepared.
func (s *session) finishTwoPhase(ctx context.Context, f *fanout) error {
	timeout := s.rt().cfg.Pool.ConnectTimeout
	id := f.txid
	commit, err := s.decideFanout(ctx, f, id)
	if err != nil && !isServerResponse(err) {
		return fmt.Errorf("%w: %v", errCommitUnknown, err)
	}
	if err != nil || !commit {
		s.abortTwoPhase(f)
		if err != nil {
			return fmt.Errorf("statement rolled back: recording the commit decision on shard %s: %w", f.sdb.shardName(0), err)
		}
		return errors.New("statement rolled back: recovery decided to abort it")
	}
	done := true
	for _, r := range f.res {
		if _, err := r.sc.exec("COMMIT PREPARED "+quoteLiteral(partGID(id, r.shard)), timeout); err != nil {
			done = false
			s.log.Warn("COMMIT PREPARED failed; recovery will commit it", zap.String("gid", partGID(id, r.shard)), zap.Error(err))
		}
	}
	if done {
		// Recovery deletes the decision later when shard 0 took no part.
		for _, r := range f.res {
			if r.shard == 0 && r.n.role == rolePrimary {
				_, _ = r.sc.exec("DELETE FROM "+decisionsTable+" WHERE gid = "+quoteLiteral(id), timeout)
			}
		}
	}
	f.sdb.stats.twoPhase.Add(1)
	return nil
}

func (s *session) decideFanout(ctx context.Context, f *fanout, id string) (bool, error) {
	timeout := s.rt().cfg.Pool.ConnectTimeout
	for _, r := range f.res {
		if r.shard == 0 && r.n.role == rolePrimary {
			return decide(func(q string) ([]string, error) { return r.sc.exec(q, timeout) }, id)
		}
	}
	return s.decideOnShard0(ctx, f.sdb, id)
}

// abortTwoPhase rolls back a fan-out write's prepared parts.
func (s *session) abortTwoPhase(f *fanout) {
	if f.txid == "" {
		return
	}
	timeout := s.rt().cfg.Pool.ConnectTimeout
	for _, r := range f.res {
		if r.ioErr != nil || r.sc == nil || r.sc.broken {
			continue
		}
		if r.sc.txStatus != 'I' {
			_, _ = r.sc.exec("ROLLBACK", timeout)
			continue
		}
		// A part whose statement failed was rolled back by PREPARE
		// TRANSACTION itself; this then fails harmlessly.
		if _, err := r.sc.exec("ROLLBACK PREPARED "+quoteLiteral(partGID(f.txid, r.shard)), timeout); err != nil && r.errResp == nil {
			s.log.Warn("ROLLBACK PREPARED failed; recovery settles it", zap.String("gid", partGID(f.txid, r.shard)), zap.Error(err))
		}
	}
}

// twoPhaseLoop prepares the decision tables and settles in-doubt
// transactions: at startup (any age), then every minute (older than
// twoPhaseGrace).
func (srv *Server) twoPhaseLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	minAge := time.Duration(0)
	for {
		func() {
			defer srv.recoverLog("two-phase recovery")
			rt := srv.rt.Load()
			for name, sdb := range rt.sharded {
				if !sdb.cfg.TwoPhaseCommit {
					continue
				}
				if _, err := srv.RecoverTwoPhase(ctx, name, minAge); err != nil && ctx.Err() == nil {
					srv.log.Warn("two-phase recovery", zap.String("database", name), zap.Error(err))
				}
			}
		}()
		minAge = twoPhaseGrace
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RecoverTwoPhase settles the prepared transactions of database db's
// shards that are older than minAge: committed when the decision table
// says commit, rolled back otherwise (recording 'abort' first, so a proxy
// still committing cannot record 'commit' afterwards). It also creates the
// decision table and deletes decisions with nothing left to settle. It
// returns how many prepared transactions it settled.
func (srv *Server) RecoverTwoPhase(ctx context.Context, db string, minAge time.Duration) (int, error) {
	rt := srv.rt.Load()
	sdb := rt.sharded[db]
	if sdb == nil {
		return 0, fmt.Errorf("%w: %s is not a sharded database", errUnknownDatabase, db)
	}
	p0, err := srv.primaryFor(sdb.shards[0])
	if err != nil {
		return 0, err
	}
	c0, err := healthConnect(ctx, rt, p0)
	if err != nil {
		return 0, fmt.Errorf("shard %s: %w", sdb.shardName(0), err)
	}
	defer c0.Close(context.Background())
	if err := c0.Exec(ctx, decisionsDDL).Close(); err != nil {
		return 0, fmt.Errorf("shard %s: creating %s: %w", sdb.shardName(0), decisionsTable, err)
	}
	settled := 0
	pending := map[string]bool{}
	var errs []error
	for k, cl := range sdb.shards {
		n, err := srv.primaryFor(cl)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := c0
		if k != 0 {
			if c, err = healthConnect(ctx, rt, n); err != nil {
				errs = append(errs, fmt.Errorf("shard %s: %w", sdb.shardName(k), err))
				continue
			}
		}
		// This proxy's own transactions always get the grace period: its
		// sessions may be committing them right now.
		res, err := c.Exec(ctx, fmt.Sprintf(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()
			AND gid LIKE 'tg2pc\_%%' AND prepared <= now() - interval '%d milliseconds'
			AND NOT (gid LIKE '%s\_%%' AND prepared > now() - interval '%d milliseconds')`,
			minAge.Milliseconds(), twoPhasePrefix+instanceID, twoPhaseGrace.Milliseconds())).ReadAll()
		if err == nil && len(res) == 1 {
			for _, row := range res[0].Rows {
				gid := string(row[0])
				outcome, derr := recordAbort(ctx, c0, baseID(gid))
				if derr != nil {
					errs = append(errs, derr)
					continue
				}
				verb := "ROLLBACK PREPARED "
				if outcome == "commit" {
					verb = "COMMIT PREPARED "
				}
				if err := c.Exec(ctx, verb+quoteLiteral(gid)).Close(); err != nil {
					errs = append(errs, fmt.Errorf("shard %s: %s%s: %w", sdb.shardName(k), verb, gid, err))
					pending[baseID(gid)] = true
					continue
				}
				settled++
				srv.log.Info("settled an in-doubt two-phase transaction", zap.String("database", db),
					zap.String("shard", sdb.shardName(k)), zap.String("gid", gid), zap.String("outcome", outcome))
			}
		} else if err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", sdb.shardName(k), err))
		}
		// Parts still prepared (younger than minAge) keep their decision.
		if res, err := c.Exec(ctx, `SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE 'tg2pc\_%'`).ReadAll(); err == nil && len(res) == 1 {
			for _, row := range res[0].Rows {
				pending[baseID(string(row[0]))] = true
			}
		} else {
			pending["*"] = true // unknown: delete nothing
		}
		if k != 0 {
			c.Close(context.Background())
		}
	}
	if !pending["*"] && len(errs) == 0 {
		// Decisions older than the grace period with no part left.
		res, err := c0.Exec(ctx, fmt.Sprintf("SELECT gid FROM %s WHERE decided_at <= now() - interval '%d milliseconds'", decisionsTable, minAge.Milliseconds())).ReadAll()
		if err == nil && len(res) == 1 {
			for _, row := range res[0].Rows {
				if id := string(row[0]); !pending[id] {
					_ = c0.Exec(ctx, "DELETE FROM "+decisionsTable+" WHERE gid = "+quoteLiteral(id)).Close()
				}
			}
		}
	}
	return settled, errors.Join(errs...)
}

// recordAbort inserts an 'abort' decision unless one exists and returns
// the decision in force.
func recordAbort(ctx context.Context, c *pgconn.PgConn, id string) (string, error) {
	res, err := c.Exec(ctx, "INSERT INTO "+decisionsTable+" (gid, outcome) VALUES ("+quoteLiteral(id)+", 'abort') ON CONFLICT (gid) DO NOTHING; SELECT outcome FROM "+decisionsTable+" WHERE gid = "+quoteLiteral(id)).ReadAll()
	if err != nil {
		return "", err
	}
	if len(res) != 2 || len(res[1].Rows) != 1 {
		return "", fmt.Errorf("no decision for %s", id)
	}
	return string(res[1].Rows[0][0]), nil
}
