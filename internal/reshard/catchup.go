package reshard

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/shardmap"
)

// replayKeys is how many keys one catch-up COPY fetches.
const replayKeys = 1000

// passLimit is how many change-log batches one online drain pass applies
// before the backlog is measured again.
const passLimit = 10

// CatchUp applies the changes captured on the sources since the copy
// started, round after round, until every source's backlog is under
// catchup_threshold; it fails when that takes longer than catchup_timeout.
// The job must have finished Copy; CatchUp is a no-op once cut over.
func (r *Resharder) CatchUp(ctx context.Context) error {
	switch p := r.Phase(); {
	case p == PhaseCopy:
		return fmt.Errorf("%w: the copy is not finished", ErrState)
	case p != PhaseCatchup:
		return nil
	}
	release, err := r.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := r.prepare(ctx); err != nil {
		return err
	}
	if err := r.checkCapture(ctx); err != nil {
		return err
	}
	r.progress.startPhase(PhaseCatchup)
	deadline := r.now().Add(r.cfg.CatchupTimeout)
	for {
		left, err := r.drainAll(ctx, false)
		if err != nil {
			return err
		}
		r.progress.setBacklog(left)
		r.progress.report(false)
		if left < int64(r.cfg.CatchupThreshold) {
			r.log.Info("caught up", zap.Int64("backlog", left))
			r.progress.report(true)
			return nil
		}
		if r.now().After(deadline) {
			return fmt.Errorf("reshard: catch-up: %d changes still waiting after %v; writes outpace the copy (raise catchup_timeout or catchup_threshold)", left, r.cfg.CatchupTimeout)
		}
	}
}

// drainAll runs a drain pass on every source shard in parallel and returns
// the total backlog left. With full, each pass runs until its log is empty
// (writes must be paused, or it may never end).
func (r *Resharder) drainAll(ctx context.Context, full bool) (int64, error) {
	shards := r.tableSources()
	lefts := make([]int64, len(shards))
	idx := make([]int, len(shards))
	for i := range idx {
		idx[i] = i
	}
	err := parallel(ctx, r.cfg.Parallel, idx, func(ctx context.Context, i int) error {
		n, err := r.drainSource(ctx, shards[i], full)
		lefts[i] = n
		return err
	})
	var total int64
	for _, n := range lefts {
		total += n
	}
	return total, err
}

// tableSources returns the shards that are a source of a sharded table.
func (r *Resharder) tableSources() []string {
	var out []string
	for _, u := range r.units() {
		out = append(out, u.sp.Shard)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// logEntry is one change-log row.
type logEntry struct {
	id       int64
	tbl, key string
}

// drainSource applies shard's captured changes to the targets: for each
// logged key that moves, the target's rows for the key are replaced by the
// source's current rows (none when the key was deleted), read from the
// primary. Replaying a key is idempotent and order does not matter, so log
// ids need not be in commit order; entries are deleted only after their
// keys were applied. It returns the backlog left.
func (r *Resharder) drainSource(ctx context.Context, shard string, full bool) (int64, error) {
	src := &connCache{dsn: r.primary(shard)}
	defer src.close()
	tg := newTargets(r)
	defer tg.close()
	byTable := map[string]*TablePlan{}
	for _, u := range r.units() {
		if u.sp.Shard == shard {
			byTable[u.tp.Name] = u.tp
		}
	}
	for pass := 0; full || pass < passLimit; pass++ {
		c, err := src.get(ctx)
		if err != nil {
			return 0, err
		}
		entries, err := readLog(ctx, c, r.cfg.CatchupBatch)
		if err != nil {
			return 0, fmt.Errorf("reshard: %s: read change log: %w", shard, err)
		}
		if len(entries) == 0 {
			break
		}
		if err := r.replay(ctx, c, tg, shard, byTable, entries); err != nil {
			return 0, fmt.Errorf("reshard: %s: apply changes: %w", shard, err)
		}
		ids := make([]int64, len(entries))
		for i, e := range entries {
			ids[i] = e.id
		}
		if _, err := c.Exec(ctx, `DELETE FROM `+changeLog+` WHERE id = ANY($1)`, ids); err != nil {
			return 0, fmt.Errorf("reshard: %s: trim change log: %w", shard, err)
		}
		r.progress.addReplayed(int64(len(entries)))
		if len(entries) < r.cfg.CatchupBatch && !full {
			break
		}
	}
	c, err := src.get(ctx)
	if err != nil {
		return 0, err
	}
	n, err := backlog(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("reshard: %s: %w", shard, err)
	}
	return n, nil
}

func readLog(ctx context.Context, c *pgx.Conn, limit int) ([]logEntry, error) {
	rows, err := c.Query(ctx, `SELECT id, tbl, key FROM `+changeLog+` ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (logEntry, error) {
		var e logEntry
		err := row.Scan(&e.id, &e.tbl, &e.key)
		return e, err
	})
}

// replay applies the moving keys of entries, per table, in chunks.
func (r *Resharder) replay(ctx context.Context, c *pgx.Conn, tg *targets, shard string, byTable map[string]*TablePlan, entries []logEntry) error {
	keys := map[string][]string{}
	seen := map[[2]string]bool{}
	for _, e := range entries {
		tp := byTable[e.tbl]
		if tp == nil || seen[[2]string{e.tbl, e.key}] {
			continue
		}
		seen[[2]string{e.tbl, e.key}] = true
		k, err := shardmap.ParseKey(tp.Type, e.key)
		if err != nil {
			continue // not a key of this type: cannot be a moving row
		}
		if from, _, moved := tp.route(k); moved && from == tp.oldIndex[shard] {
			keys[e.tbl] = append(keys[e.tbl], e.key)
		}
	}
	for name, ks := range keys {
		tp := byTable[name]
		b := r.newBatch(tp, shard)
		for chunk := range slices.Chunk(ks, replayKeys) {
			arr, err := keyArray(tp.Type, chunk)
			if err != nil {
				return err
			}
			q := fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s = ANY(%s)) TO STDOUT %s",
				columnList(b.cols), quoteTable(tp.Name), quoteIdent(tp.Column), arr, copyFormat(b.text))
			if err := retry(ctx, func() error {
				if err := b.readQuery(ctx, c, q, chunk); err != nil {
					return err
				}
				return b.write(ctx, tg)
			}); err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
		}
	}
	return nil
}
