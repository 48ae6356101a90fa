package reshard

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// jobLockKey is the session advisory lock a job holds on every shard it
// touches while one of its steps runs, so that two jobs (two processes,
// maybe on two machines with two state files) never work on a shard at the
// same time.
const jobLockKey int64 = 0x7469657267617465 // "tiergate"

// jobLock counts nested acquisitions (Cutover runs CatchUp) and holds the
// sessions that own the locks.
type jobLock struct {
	depth int
	conns []*pgx.Conn
}

// acquire takes the job lock on every shard of the plan, or fails with
// ErrBusy. Steps call it after their phase checks; release with the
// returned function.
func (r *Resharder) acquire(ctx context.Context) (func(), error) {
	if r.lock.depth > 0 {
		r.lock.depth++
		return r.release, nil
	}
	for _, s := range r.plan.Shards() {
		c, err := connect(ctx, r.primary(s))
		if err != nil {
			r.closeLocks()
			return nil, err
		}
		r.lock.conns = append(r.lock.conns, c)
		var ok bool
		if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, jobLockKey).Scan(&ok); err != nil {
			r.closeLocks()
			return nil, fmt.Errorf("reshard: %s: %w", s, err)
		}
		if !ok {
			r.closeLocks()
			return nil, fmt.Errorf("%w (it holds the job lock on shard %s)", ErrBusy, s)
		}
	}
	r.lock.depth = 1
	return r.release, nil
}

func (r *Resharder) release() {
	if r.lock.depth--; r.lock.depth == 0 {
		r.closeLocks()
	}
}

// closeLocks unlocks and ends the lock sessions. Unlocking explicitly
// matters: a closed session's locks are released only once its backend
// has exited, which a next step could outrun.
func (r *Resharder) closeLocks() {
	for _, c := range r.lock.conns {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		_, _ = c.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		cancel()
		closeConn(c)
	}
	r.lock.conns = nil
}

// checkCapture fails with ErrState when a capture trigger the job
// installed is gone: writes since then may not have been captured, so the
// copies cannot be trusted. Abort and start over.
func (r *Resharder) checkCapture(ctx context.Context) error {
	for _, shard := range r.sources() {
		c, err := connect(ctx, r.primary(shard))
		if err != nil {
			return err
		}
		err = func() error {
			defer closeConn(c)
			check := func(table, trigger string) error {
				var ok bool
				if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)`,
					quoteTable(table), trigger).Scan(&ok); err != nil {
					return fmt.Errorf("reshard: %s: %w", shard, err)
				}
				if !ok {
					return fmt.Errorf("%w: change capture trigger %s on %s.%s is gone: writes may have been missed; abort the job and start over", ErrState, trigger, shard, table)
				}
				return nil
			}
			for _, u := range r.units() {
				if u.sp.Shard == shard {
					if err := check(u.tp.Name, captureTrigger); err != nil {
						return err
					}
				}
			}
			for _, rc := range r.plan.References {
				if rc.From == shard {
					if err := check(rc.Table, dirtyTrigger); err != nil {
						return err
					}
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}
