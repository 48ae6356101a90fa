package reshard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/shardmap"
)

// batchAttempts is how often a batch is tried when it fails with a
// retryable error (see retryable).
const batchAttempts = 3

// Copy installs change capture on every source shard, then copies the
// moving rows of every (table, source) to their targets in batches, and the
// reference tables to the added shards. It resumes from the saved
// checkpoints; when it returns nil the job is in PhaseCatchup. It is a
// no-op in any later phase.
func (r *Resharder) Copy(ctx context.Context) error {
	if !r.Phase().before(PhaseCatchup) {
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
	// Capture first: every write committed after this is logged, every
	// write before it is in what the copy reads (once the replica has
	// replayed the installation).
	for _, s := range r.sources() {
		lsn, err := r.installCapture(ctx, s)
		if err != nil {
			return err
		}
		if dsn := r.copyDSN(s); dsn != r.primary(s) {
			if err := r.waitReplayed(ctx, dsn, lsn); err != nil {
				return fmt.Errorf("reshard: %s: %w", s, err)
			}
		}
	}
	r.progress.startPhase(PhaseCopy)
	if err := parallel(ctx, r.cfg.Parallel, r.units(), r.copySource); err != nil {
		return err
	}
	for _, rc := range r.plan.References {
		if r.refCopied(rc) {
			continue
		}
		if err := r.copyRef(ctx, rc); err != nil {
			return err
		}
	}
	return r.setPhase(ctx, PhaseCatchup)
}

// copySource copies the moving rows of one (table, source shard).
func (r *Resharder) copySource(ctx context.Context, u unit) error {
	tp, sp := u.tp, u.sp
	key := sourceKey(tp.Name, sp.Shard)
	r.mu.Lock()
	st := r.state.Sources[key]
	done, last := st.CopyDone, st.CopyLast
	r.mu.Unlock()
	if done {
		return nil
	}
	src := &connCache{dsn: r.copyDSN(sp.Shard)}
	defer src.close()
	tg := newTargets(r)
	defer tg.close()

	c, err := src.get(ctx)
	if err != nil {
		return err
	}
	if err := r.progress.estimate(ctx, c, tp, key, sp.Predicate); err != nil {
		return err
	}
	log := r.log.With(zap.String("table", tp.Name), zap.String("from", sp.Shard))
	log.Info("copy started", zap.Stringp("after_key", last))
	b := r.newBatch(tp, sp.Shard)
	for {
		var hi *string
		err := retry(ctx, func() error {
			c, err := src.get(ctx)
			if err != nil {
				return err
			}
			hi, err = probe(ctx, c, tp, last, r.cfg.BatchRows)
			if err != nil {
				return err
			}
			where, err := rangeWhere(tp, last, hi, sp.Predicate)
			if err != nil {
				return err
			}
			if err := b.read(ctx, c, where); err != nil {
				return err
			}
			return b.write(ctx, tg)
		})
		if err != nil {
			return fmt.Errorf("reshard: copy %s from %s: %w", tp.Name, sp.Shard, err)
		}
		if b.misplaced > 0 {
			log.Warn("rows on a shard the old map does not place them on were left alone", zap.Int64("rows", b.misplaced))
			b.misplaced = 0
		}
		if err := r.update(ctx, func(s *State) {
			ss := s.Sources[key]
			ss.CopyLast, ss.CopyDone = hi, hi == nil
			ss.Scanned += b.scanned
			ss.Copied += b.copied
			ss.Bytes += b.bytes
		}); err != nil {
			return err
		}
		r.progress.report(false)
		if hi == nil {
			log.Info("copy done")
			r.progress.finish(key)
			return nil
		}
		last = hi
	}
}

func (r *Resharder) newBatch(tp *TablePlan, source string) *batch {
	return &batch{r: r, tp: tp, srcIdx: tp.oldIndex[source], cols: r.cols[tp.Name], keyIdx: r.keyIndex(tp), text: r.text[tp.Name]}
}

// batch reads one range of a source and routes its moving rows to
// per-target buffers.
type batch struct {
	r      *Resharder
	tp     *TablePlan
	srcIdx int
	cols   []column
	keyIdx int
	text   bool // text format

	bufs      map[int]*copyBuffer // new shard index → rows
	scanned   int64
	copied    int64
	bytes     int64
	misplaced int64
}

// read runs COPY (SELECT cols FROM t WHERE ...) on c and fills the
// buffers with the rows that move away from the source.
func (b *batch) read(ctx context.Context, c *pgx.Conn, where string) error {
	q := fmt.Sprintf("COPY (SELECT %s FROM %s%s) TO STDOUT %s", columnList(b.cols), quoteTable(b.tp.Name), where, copyFormat(b.text))
	return b.readQuery(ctx, c, q, nil)
}

// readQuery is read with a complete COPY statement. keys, when not nil,
// are the keys the caller asked for: each is deleted on its target even
// when no row is left (catch-up of deleted rows).
func (b *batch) readQuery(ctx context.Context, c *pgx.Conn, q string, keys []string) error {
	if b.bufs == nil {
		b.bufs = map[int]*copyBuffer{}
	}
	for _, buf := range b.bufs {
		buf.reset()
	}
	b.scanned, b.copied, b.bytes = 0, 0, 0
	scan := newScanner(b.text, b.route)
	// CopyTo returns route's errors as they are (and drops the session).
	if _, err := c.PgConn().CopyTo(ctx, scan, q); err != nil {
		return err
	}
	if err := scan.finish(); err != nil {
		return err
	}
	b.scanned = scan.rows()
	if keys != nil {
		for _, buf := range b.bufs {
			buf.keys = buf.keys[:0]
		}
		if err := b.routeKeys(keys); err != nil {
			return err
		}
	}
	return nil
}

// route files one row of a batch: into its target's buffer when its key
// moves away from the source, nowhere otherwise.
func (b *batch) route(raw []byte, fields [][]byte) error {
	tp := b.tp
	if b.keyIdx >= len(fields) {
		return fmt.Errorf("%w: %d columns, key is column %d", ErrBackend, len(fields), b.keyIdx)
	}
	f := fields[b.keyIdx]
	if f == nil {
		return nil // NULL keys never move
	}
	var k shardmap.Key
	var err error
	if b.text {
		k, err = tp.Type.DecodeText(f)
	} else {
		k, err = tp.Type.DecodeBinary(f)
	}
	if err != nil {
		return fmt.Errorf("%w: table %s: %w", ErrBackend, tp.Name, err)
	}
	from, to, moved := tp.route(k)
	switch {
	case !moved:
		return nil
	case from != b.srcIdx:
		b.misplaced++
		return nil
	case to < 0:
		return fmt.Errorf("%w: table %s, key %s", ErrUnplaceable, tp.Name, k)
	}
	buf := b.buf(to)
	buf.add(raw)
	buf.addKey(keyText(k))
	b.copied++
	b.bytes += int64(len(raw))
	return nil
}

// routeKeys adds keys that may have no row left to their target's delete
// list.
func (b *batch) routeKeys(keys []string) error {
	for _, s := range keys {
		k, err := shardmap.ParseKey(b.tp.Type, s)
		if err != nil {
			return fmt.Errorf("%w: table %s: %w", ErrBackend, b.tp.Name, err)
		}
		from, to, moved := b.tp.route(k)
		if !moved || from != b.srcIdx || to < 0 {
			continue
		}
		buf := b.buf(to)
		buf.keys = append(buf.keys, s)
	}
	return nil
}

// buf returns the buffer of target to.
func (b *batch) buf(to int) *copyBuffer {
	buf := b.bufs[to]
	if buf == nil {
		buf = &copyBuffer{text: b.text}
		b.bufs[to] = buf
	}
	return buf
}

// write commits each target's buffer in its own transaction.
func (b *batch) write(ctx context.Context, tg *targets) error {
	tos := make([]int, 0, len(b.bufs))
	for to, buf := range b.bufs {
		if buf.rows > 0 || len(buf.keys) > 0 {
			tos = append(tos, to)
		}
	}
	slices.Sort(tos)
	for _, to := range tos {
		c, err := tg.get(ctx, to)
		if err != nil {
			return err
		}
		if err := writeRows(ctx, c, b.tp, b.cols, b.bufs[to]); err != nil {
			return fmt.Errorf("write to %s: %w", b.r.opts.New.ShardName(to), err)
		}
	}
	return nil
}

// writeRows makes the target hold exactly buf's rows for buf's keys, in
// one transaction: delete those keys' rows (a previous, interrupted
// attempt may have copied some), then COPY the rows in. Re-running it is
// harmless.
func writeRows(ctx context.Context, c *pgx.Conn, tp *TablePlan, cols []column, buf *copyBuffer) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if len(buf.keys) > 0 {
		q := fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1::text[]::%s[])", quoteTable(tp.Name), quoteIdent(tp.Column), sqlType(tp.Type))
		if _, err := tx.Exec(ctx, q, buf.keys); err != nil {
			return err
		}
	}
	if buf.rows > 0 {
		q := fmt.Sprintf("COPY %s (%s) FROM STDIN %s", quoteTable(tp.Name), columnList(cols), copyFormat(buf.text))
		if _, err := c.PgConn().CopyFrom(ctx, bytes.NewReader(buf.bytes()), q); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// targets are sessions on the new shards' primaries, opened on first use.
type targets struct {
	r     *Resharder
	conns map[int]*connCache
}

func newTargets(r *Resharder) *targets { return &targets{r: r, conns: map[int]*connCache{}} }

func (t *targets) get(ctx context.Context, to int) (*pgx.Conn, error) {
	cc := t.conns[to]
	if cc == nil {
		cc = &connCache{dsn: t.r.primary(t.r.opts.New.ShardName(to))}
		t.conns[to] = cc
	}
	return cc.get(ctx)
}

func (t *targets) close() {
	for _, cc := range t.conns {
		cc.close()
	}
}

// probe returns the text form of the key n rows after last (in key order),
// the inclusive upper bound of the next batch, or nil when fewer than n
// rows are left. Rows with a NULL key are never read.
func probe(ctx context.Context, c *pgx.Conn, tp *TablePlan, last *string, n int) (*string, error) {
	col := quoteIdent(tp.Column)
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s::text FROM %s WHERE %s IS NOT NULL", col, quoteTable(tp.Name), col)
	var args []any
	if last != nil {
		fmt.Fprintf(&b, " AND %s > $1::%s", col, sqlType(tp.Type))
		args = append(args, *last)
	}
	fmt.Fprintf(&b, " ORDER BY %s OFFSET %d LIMIT 1", col, n-1)
	var hi string
	err := c.QueryRow(ctx, b.String(), args...).Scan(&hi)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &hi, nil
}

// rangeWhere is the WHERE clause of the keys in (last, hi] (unbounded when
// nil) that satisfy pred, with the bounds inlined (COPY takes no
// parameters).
func rangeWhere(tp *TablePlan, last, hi *string, pred string) (string, error) {
	col := quoteIdent(tp.Column)
	conds := []string{col + " IS NOT NULL"}
	if last != nil {
		lit, err := keyLiteral(tp.Type, *last)
		if err != nil {
			return "", err
		}
		conds = append(conds, col+" > "+lit)
	}
	if hi != nil {
		lit, err := keyLiteral(tp.Type, *hi)
		if err != nil {
			return "", err
		}
		conds = append(conds, col+" <= "+lit)
	}
	if pred != "" {
		conds = append(conds, "("+pred+")")
	}
	return " WHERE " + strings.Join(conds, " AND "), nil
}

// retry runs fn up to batchAttempts times while it fails with a retryable
// error.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for range batchAttempts {
		if err = fn(); err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// refCopied reports whether rc was copied (and not marked dirty since, as
// far as the state knows).
func (r *Resharder) refCopied(rc RefCopy) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.state.References[sourceKey(rc.Table, rc.To)]
	return rs != nil && rs.Copied
}

// copyRef replaces the reference table on rc.To with the one on rc.From.
// The source side runs in a REPEATABLE READ transaction that also clears
// the table's dirty mark, so a write the copy's snapshot misses marks it
// dirty again; the mark is cleared only if the target committed.
func (r *Resharder) copyRef(ctx context.Context, rc RefCopy) error {
	src, err := connect(ctx, r.primary(rc.From))
	if err != nil {
		return err
	}
	defer closeConn(src)
	dst, err := connect(ctx, r.primary(rc.To))
	if err != nil {
		return err
	}
	defer closeConn(dst)
	cols := columnList(r.cols[rc.Table])
	table := quoteTable(rc.Table)

	stx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return err
	}
	defer func() { _ = stx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := stx.Exec(ctx, `DELETE FROM `+refDirty+` WHERE tbl = $1 AND dest = $2`, rc.Table, rc.To); err != nil {
		return fmt.Errorf("reshard: copy %s: %w", rc.Table, err)
	}
	dtx, err := dst.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = dtx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := dtx.Exec(ctx, `DELETE FROM `+table); err != nil {
		return fmt.Errorf("reshard: copy %s to %s: %w", rc.Table, rc.To, err)
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := src.PgConn().CopyTo(ctx, pw, fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT %s", cols, table, copyFormat(r.text[rc.Table])))
		pw.CloseWithError(err) // nil: EOF
		errc <- err
	}()
	tag, err := dst.PgConn().CopyFrom(ctx, pr, fmt.Sprintf("COPY %s (%s) FROM STDIN %s", table, cols, copyFormat(r.text[rc.Table])))
	pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if CopyFrom stopped early
	serr := <-errc
	if err != nil {
		return fmt.Errorf("reshard: copy %s to %s: %w", rc.Table, rc.To, err)
	}
	if serr != nil {
		return fmt.Errorf("reshard: copy %s from %s: %w", rc.Table, rc.From, serr)
	}
	if err := dtx.Commit(ctx); err != nil {
		return fmt.Errorf("reshard: copy %s to %s: %w", rc.Table, rc.To, err)
	}
	// A failure from here on leaves the table marked dirty: it is copied
	// again at cutover, which is harmless.
	if err := stx.Commit(ctx); err != nil {
		r.log.Warn("reference table stays marked dirty", zap.String("table", rc.Table), zap.Error(err))
	}
	rows := tag.RowsAffected()
	r.log.Info("reference table copied", zap.String("table", rc.Table), zap.String("from", rc.From), zap.String("to", rc.To), zap.Int64("rows", rows))
	return r.update(ctx, func(s *State) {
		s.References[sourceKey(rc.Table, rc.To)] = &RefState{Copied: true, Rows: rows}
	})
}
