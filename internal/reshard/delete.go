package reshard

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Delete removes change capture from the sources, then deletes the moved
// rows from their old shards in batches (delete_batch_rows source rows
// scanned per transaction), resuming from its checkpoint. It runs only
// after the cutover (ErrState before): a row is deleted only once its set
// was verified and the proxies route its key to the new shard. When it
// returns nil the job is done.
func (r *Resharder) Delete(ctx context.Context) error {
	switch p := r.Phase(); {
	case p == PhaseDone:
		return nil
	case p != PhaseDelete:
		return fmt.Errorf("%w: rows are deleted only after the cutover (phase is %s)", ErrState, p)
	}
	release, err := r.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	for _, s := range r.sources() {
		if err := r.dropCapture(ctx, s); err != nil {
			return err
		}
	}
	r.progress.startPhase(PhaseDelete)
	err = parallel(ctx, r.cfg.Parallel, r.units(), func(ctx context.Context, u unit) error {
		key := sourceKey(u.tp.Name, u.sp.Shard)
		r.mu.Lock()
		st := r.state.Sources[key]
		done, last := st.DeleteDone, st.DeleteLast
		r.mu.Unlock()
		if done {
			return nil
		}
		srcIdx := u.tp.oldIndex[u.sp.Shard]
		match := func(from, to int) bool { return from == srcIdx && to >= 0 }
		err := r.deleteMoved(ctx, u.tp, u.sp.Shard, u.sp.Predicate, last, match, true, func(hi *string, scanned, deleted int64) error {
			err := r.update(ctx, func(s *State) {
				ss := s.Sources[key]
				ss.DeleteLast, ss.DeleteDone = hi, hi == nil
				ss.DeleteScanned += scanned
				ss.Deleted += deleted
			})
			r.progress.report(false)
			return err
		})
		if err != nil {
			return fmt.Errorf("reshard: delete moved rows of %s on %s: %w", u.tp.Name, u.sp.Shard, err)
		}
		r.progress.finish(key)
		r.log.Info("moved rows deleted", zap.String("table", u.tp.Name), zap.String("shard", u.sp.Shard))
		return nil
	})
	if err != nil {
		return err
	}
	return r.setPhase(ctx, PhaseDone)
}

// deleteMoved deletes, range by range in key order after last, the rows
// of tp on shard's primary whose key moves (per route) and satisfies
// match(from, to). After each committed batch it calls done with the
// batch's upper bound (nil for the last one) and counts.
func (r *Resharder) deleteMoved(ctx context.Context, tp *TablePlan, shard, pred string, last *string,
	match func(from, to int) bool, estimate bool, done func(hi *string, scanned, deleted int64) error) error {
	cc := &connCache{dsn: r.primary(shard)}
	defer cc.close()
	if estimate {
		c, err := cc.get(ctx)
		if err != nil {
			return err
		}
		if err := r.progress.estimate(ctx, c, tp, sourceKey(tp.Name, shard), pred); err != nil {
			return err
		}
	}
	col := quoteIdent(tp.Column)
	del := fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1::text[]::%s[])", quoteTable(tp.Name), col, sqlType(tp.Type))
	for {
		var hi *string
		var scanned, deleted int64
		err := retry(ctx, func() error {
			c, err := cc.get(ctx)
			if err != nil {
				return err
			}
			hi, err = probe(ctx, c, tp, last, r.cfg.DeleteBatchRows)
			if err != nil {
				return err
			}
			where, err := rangeWhere(tp, last, hi, pred)
			if err != nil {
				return err
			}
			keys, n, err := movingKeys(ctx, c, tp, where, match)
			if err != nil {
				return err
			}
			scanned = n
			if len(keys) == 0 {
				deleted = 0
				return nil
			}
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, del, keys)
				deleted = tag.RowsAffected()
				return err
			})
		})
		if err != nil {
			return err
		}
		if err := done(hi, scanned, deleted); err != nil {
			return err
		}
		if hi == nil {
			return nil
		}
		last = hi
	}
}

// movingKeys returns the distinct keys in where that move and match, and
// how many rows it read.
func movingKeys(ctx context.Context, c *pgx.Conn, tp *TablePlan, where string, match func(from, to int) bool) ([]string, int64, error) {
	col := quoteIdent(tp.Column)
	q := fmt.Sprintf("COPY (SELECT %s FROM %s%s ORDER BY %s) TO STDOUT (FORMAT binary)", col, quoteTable(tp.Name), where, col)
	var buf copyBuffer
	scan := newTupleScanner(func(_ []byte, f [][]byte) error {
		if len(f) != 1 || f[0] == nil {
			return fmt.Errorf("%w: unexpected key row", ErrBackend)
		}
		k, err := tp.Type.DecodeBinary(f[0])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBackend, err)
		}
		if from, to, moved := tp.route(k); moved && match(from, to) {
			buf.addKey(keyText(k))
		}
		return nil
	})
	if _, err := c.PgConn().CopyTo(ctx, scan, q); err != nil {
		return nil, 0, err
	}
	if err := scan.finish(); err != nil {
		return nil, 0, err
	}
	return buf.keys, scan.tuples, nil
}

// Abort undoes a job that has not cut over: it removes change capture from
// the sources, deletes the copied rows from the targets (the rows whose key
// moves there from one of the table's sources: under the old map no such
// row belongs there), empties the reference tables copied to added shards
// (which the old map does not use), and starts the state afresh. It fails
// with ErrState once the job has reached PhaseCutover, since the proxies
// may then use the new map.
func (r *Resharder) Abort(ctx context.Context) error {
	if p := r.Phase(); !p.before(PhaseCutover) && p != PhaseDone {
		return fmt.Errorf("%w: the job is in phase %s; the proxies may use the new map, finish it instead", ErrState, p)
	} else if p == PhaseDone {
		return fmt.Errorf("%w: the job is done", ErrState)
	}
	release, err := r.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	for _, s := range r.sources() {
		if err := r.dropCapture(ctx, s); err != nil {
			return err
		}
	}
	for _, tp := range r.plan.Tables {
		isSource := make([]bool, r.opts.Old.Shards())
		for _, sp := range tp.Sources {
			isSource[tp.oldIndex[sp.Shard]] = true
		}
		for _, t := range tp.Targets {
			self := tp.newIndex[t]
			match := func(from, to int) bool { return to == self && from >= 0 && isSource[from] }
			err := r.deleteMoved(ctx, tp, t, tp.TargetPredicate[t], nil, match, false, func(*string, int64, int64) error { return nil })
			if err != nil {
				return fmt.Errorf("reshard: abort: delete copied rows of %s on %s: %w", tp.Name, t, err)
			}
		}
	}
	for _, rc := range r.plan.References {
		c, err := connect(ctx, r.primary(rc.To))
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, `DELETE FROM `+quoteTable(rc.Table))
		closeConn(c)
		if err != nil {
			return fmt.Errorf("reshard: abort: empty %s on %s: %w", rc.Table, rc.To, err)
		}
	}
	st := r.freshState()
	r.mu.Lock()
	r.state = st
	err = r.store.Save(context.WithoutCancel(ctx), st)
	r.mu.Unlock()
	r.log.Info("resharding aborted")
	return err
}
