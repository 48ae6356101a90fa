package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// Trigger names on the captured tables.
const (
	captureTrigger  = "tiergate_reshard_capture"
	truncateTrigger = "tiergate_reshard_truncate"
	dirtyTrigger    = "tiergate_reshard_dirty"
)

// captureDDL creates the schema, the change log and the TRUNCATE guard.
// The functions are SECURITY DEFINER so that application roles need no
// privilege on the log.
var captureDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS ` + captureSchema,
	`CREATE TABLE IF NOT EXISTS ` + changeLog + ` (id bigserial PRIMARY KEY, tbl text NOT NULL, key text NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS ` + refDirty + ` (tbl text NOT NULL, dest text NOT NULL, PRIMARY KEY (tbl, dest))`,
	`CREATE OR REPLACE FUNCTION ` + captureSchema + `.no_truncate() RETURNS trigger
	LANGUAGE plpgsql AS $f$
	BEGIN
		IF current_setting('` + skipSetting + `', true) = 'on' THEN RETURN NULL; END IF;
		RAISE EXCEPTION 'TRUNCATE of %.% is blocked while tiergate reshards it', TG_TABLE_SCHEMA, TG_TABLE_NAME
			USING HINT = 'wait for the cutover, or abort the resharding job';
	END $f$`,
}

// installCapture installs change capture on shard's primary for the
// sharded tables and reference tables it is a source of: a row trigger
// logging every changed key into the change log, a TRUNCATE guard, and for
// reference tables a statement trigger marking them dirty. It is
// idempotent. It returns the WAL position after the installation, which a
// replica must have replayed before the bulk copy reads from it.
func (r *Resharder) installCapture(ctx context.Context, shard string) (string, error) {
	c, err := connect(ctx, r.primary(shard))
	if err != nil {
		return "", err
	}
	defer closeConn(c)
	for _, q := range captureDDL {
		if _, err := c.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("reshard: %s: install change capture: %w", shard, err)
		}
	}
	for _, tp := range r.plan.Tables {
		for _, sp := range tp.Sources {
			if sp.Shard == shard {
				if err := r.captureTable(ctx, c, tp.Name, tp.Column); err != nil {
					return "", fmt.Errorf("reshard: %s: capture %s: %w", shard, tp.Name, err)
				}
			}
		}
	}
	done := map[string]bool{}
	for _, rc := range r.plan.References {
		if rc.From == shard && !done[rc.Table] {
			done[rc.Table] = true
			if err := r.captureRef(ctx, c, rc.Table); err != nil {
				return "", fmt.Errorf("reshard: %s: capture %s: %w", shard, rc.Table, err)
			}
		}
	}
	var lsn string
	if err := c.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		return "", fmt.Errorf("reshard: %s: %w", shard, err)
	}
	r.log.Info("change capture installed", zap.String("shard", shard), zap.String("lsn", lsn))
	return lsn, nil
}

// captureTable installs the key-logging trigger on a sharded table. A key
// changed by an UPDATE is logged twice (old and new); NULL keys are never
// moved, so they are not logged.
func (r *Resharder) captureTable(ctx context.Context, c *pgx.Conn, table, col string) error {
	oid, err := tableOID(ctx, c, table)
	if err != nil {
		return err
	}
	name, err := quoteLiteral(table)
	if err != nil {
		return err
	}
	k := quoteIdent(col)
	fn := fmt.Sprintf("%s.capture_%d", captureSchema, oid)
	body := fmt.Sprintf(`CREATE OR REPLACE FUNCTION %[1]s() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
	BEGIN
		IF current_setting('%[2]s', true) = 'on' THEN RETURN NULL; END IF;
		IF TG_OP <> 'INSERT' AND OLD.%[3]s IS NOT NULL THEN
			INSERT INTO %[4]s (tbl, key) VALUES (%[5]s, OLD.%[3]s::text);
		END IF;
		IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.%[3]s IS DISTINCT FROM OLD.%[3]s) THEN
			IF NEW.%[3]s IS NOT NULL THEN
				INSERT INTO %[4]s (tbl, key) VALUES (%[5]s, NEW.%[3]s::text);
			END IF;
		END IF;
		RETURN NULL;
	END $f$`, fn, skipSetting, k, changeLog, name)
	if _, err := c.Exec(ctx, body); err != nil {
		return err
	}
	return r.createTriggers(ctx, c, oid, table, []trigger{
		{captureTrigger, "AFTER INSERT OR UPDATE OR DELETE", "FOR EACH ROW", fn},
		{truncateTrigger, "BEFORE TRUNCATE", "FOR EACH STATEMENT", captureSchema + ".no_truncate"},
	})
}

// captureRef installs the dirty-marking trigger on a reference table: any
// write marks the table dirty for each shard it is copied to.
func (r *Resharder) captureRef(ctx context.Context, c *pgx.Conn, table string) error {
	oid, err := tableOID(ctx, c, table)
	if err != nil {
		return err
	}
	name, err := quoteLiteral(table)
	if err != nil {
		return err
	}
	var values []string
	for _, rc := range r.plan.References {
		if rc.Table == table {
			dest, err := quoteLiteral(rc.To)
			if err != nil {
				return err
			}
			values = append(values, "("+name+", "+dest+")")
		}
	}
	fn := fmt.Sprintf("%s.dirty_%d", captureSchema, oid)
	body := fmt.Sprintf(`CREATE OR REPLACE FUNCTION %[1]s() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
	BEGIN
		IF current_setting('%[2]s', true) = 'on' THEN RETURN NULL; END IF;
		INSERT INTO %[3]s (tbl, dest) VALUES %[4]s ON CONFLICT DO NOTHING;
		RETURN NULL;
	END $f$`, fn, skipSetting, refDirty, strings.Join(values, ", "))
	if _, err := c.Exec(ctx, body); err != nil {
		return err
	}
	return r.createTriggers(ctx, c, oid, table, []trigger{
		{dirtyTrigger, "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE", "FOR EACH STATEMENT", fn},
	})
}

type trigger struct{ name, when, level, fn string }

// createTriggers creates the missing triggers in one transaction, waiting
// at most lock_timeout for the table lock. Existing triggers are kept (their
// functions were just replaced), so a re-run takes no lock at all.
func (r *Resharder) createTriggers(ctx context.Context, c *pgx.Conn, oid uint32, table string, trigs []trigger) error {
	return retryLock(ctx, lockAttempts, func() error { return r.createTriggersOnce(ctx, c, oid, table, trigs) })
}

func (r *Resharder) createTriggersOnce(ctx context.Context, c *pgx.Conn, oid uint32, table string, trigs []trigger) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", r.cfg.LockTimeout.Milliseconds())); err != nil {
		return err
	}
	for _, t := range trigs {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1 AND tgname = $2)`, oid, t.name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			continue
		}
		q := fmt.Sprintf("CREATE TRIGGER %s %s ON %s %s EXECUTE FUNCTION %s()", t.name, t.when, quoteTable(table), t.level, t.fn)
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// tableOID resolves a configured table name on c.
func tableOID(ctx context.Context, c *pgx.Conn, table string) (uint32, error) {
	var oid *uint32
	if err := c.QueryRow(ctx, `SELECT to_regclass($1)::oid`, quoteTable(table)).Scan(&oid); err != nil {
		return 0, err
	}
	if oid == nil {
		return 0, fmt.Errorf("%w: table %s does not exist", ErrSchema, table)
	}
	return *oid, nil
}

// dropTriggers removes the capture triggers from every table shard is a
// source of, one table per transaction (so the table locks are taken one at
// a time), waiting at most lock_timeout for each and retrying a few times.
// Idempotent. Cutover calls it with writes paused, where the locks are
// free.
//
// Without patient it tries once with a short lock timeout: for the write
// pause, which must stay short.
func (r *Resharder) dropTriggers(ctx context.Context, shard string, patient bool) error {
	c, err := connect(ctx, r.primary(shard))
	if err != nil {
		return err
	}
	defer closeConn(c)
	timeout, attempts := r.cfg.LockTimeout, lockAttempts
	if !patient {
		timeout, attempts = min(timeout, pausedLockTimeout), 1
	}
	drop := func(table string, names ...string) error {
		return retryLock(ctx, attempts, func() error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", timeout.Milliseconds())); err != nil {
					return err
				}
				for _, n := range names {
					if _, err := tx.Exec(ctx, fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", n, quoteTable(table))); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	for _, u := range r.units() {
		if u.sp.Shard == shard {
			if err := drop(u.tp.Name, captureTrigger, truncateTrigger); err != nil {
				return fmt.Errorf("reshard: %s: remove capture from %s: %w", shard, u.tp.Name, err)
			}
		}
	}
	for _, rc := range r.plan.References {
		if rc.From == shard {
			if err := drop(rc.Table, dirtyTrigger); err != nil {
				return fmt.Errorf("reshard: %s: remove capture from %s: %w", shard, rc.Table, err)
			}
		}
	}
	return nil
}

// dropCapture removes change capture from shard's primary: first the
// triggers (dropTriggers), then the schema with the log and the functions.
// Dropping the schema first could deadlock: it would lock the log, then
// wait for a table lock held by a write whose trigger waits for the log.
// Idempotent.
func (r *Resharder) dropCapture(ctx context.Context, shard string) error {
	if err := r.dropTriggers(ctx, shard, true); err != nil {
		return err
	}
	c, err := connect(ctx, r.primary(shard))
	if err != nil {
		return err
	}
	defer closeConn(c)
	if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+captureSchema+` CASCADE`); err != nil {
		return fmt.Errorf("reshard: %s: remove change capture: %w", shard, err)
	}
	r.log.Info("change capture removed", zap.String("shard", shard))
	return nil
}

// retryLock runs fn up to attempts times, lockBackoff apart, while it
// fails with lock_not_available (lock_timeout) or a deadlock. A short
// lock_timeout with retries keeps the writes queued behind the DDL's lock
// request from waiting long.
func retryLock(ctx context.Context, attempts int, fn func() error) error {
	var err error
	for i := range attempts {
		err = fn()
		var pe *pgconn.PgError
		if err == nil || ctx.Err() != nil || !errors.As(err, &pe) || (pe.Code != "55P03" && pe.Code != "40P01") {
			return err
		}
		if i < attempts-1 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(lockBackoff):
			}
		}
	}
	return err
}

// DDL lock waits: lockAttempts tries lockBackoff apart, and one try of at
// most pausedLockTimeout during the write pause.
const (
	lockAttempts      = 10
	lockBackoff       = 500 * time.Millisecond
	pausedLockTimeout = 500 * time.Millisecond
)

// waitReplayed waits until the replica at dsn has replayed lsn, polling.
func (r *Resharder) waitReplayed(ctx context.Context, dsn, lsn string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReplicaWait)
	defer cancel()
	c, err := connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeConn(c)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var ok *bool
		// On a primary (no recovery) the function returns NULL: nothing to
		// wait for.
		err := c.QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() >= $1::pg_lsn ELSE true END`, lsn).Scan(&ok)
		if err != nil {
			return fmt.Errorf("reshard: wait for replica to replay %s: %w", lsn, err)
		}
		if ok != nil && *ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reshard: replica did not replay %s in %v: %w", lsn, r.cfg.ReplicaWait, ctx.Err())
		case <-tick.C:
		}
	}
}

// backlog returns the number of change-log entries waiting on shard.
func backlog(ctx context.Context, c *pgx.Conn) (int64, error) {
	var n int64
	err := c.QueryRow(ctx, `SELECT count(*) FROM `+changeLog).Scan(&n)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: no capture installed
		return 0, nil
	}
	return n, err
}
