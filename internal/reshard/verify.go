package reshard

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Checksum is an order-independent digest of a set of rows: their count
// and the sum (mod 2^64) of hashtextextended(ROW(columns)::text, 0) over
// them. Both sides print rows with the same session settings (DateStyle,
// TimeZone, extra_float_digits, ...), so equal rows hash equally.
type Checksum struct {
	Rows int64  `json:"rows"`
	Sum  uint64 `json:"sum"`
}

func (c *Checksum) add(h uint64) {
	c.Rows++
	c.Sum += h
}

// pair names a moved set.
type pair struct{ table, from, to string }

// sums collects checksums per moved set from concurrent streams.
type sums struct {
	mu       sync.Mutex
	src, dst map[pair]Checksum
}

func (s *sums) merge(into map[pair]Checksum, part map[pair]Checksum) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range part {
		c := into[k]
		c.Rows += v.Rows
		c.Sum += v.Sum
		into[k] = c
	}
}

// Verify compares, for every moved (table, from, to) set, the rows that
// move on the source with their copies on the target (row count and
// checksum), and every copied reference table with its source, reading the
// primaries. It returns a *VerifyError (wrapping ErrVerify) listing every
// mismatch. Cutover runs it with writes paused; run alone while writes
// flow, it reports the sets that changed since they were last applied.
func (r *Resharder) Verify(ctx context.Context) ([]Verified, error) {
	release, err := r.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	return r.verify(ctx)
}

// stream is one checksum scan: a table on one shard, as source or target.
type stream struct {
	tp     *TablePlan
	shard  string
	source bool
	ref    *RefCopy
	side   bool // ref: true for the From side
}

func (r *Resharder) verify(ctx context.Context) ([]Verified, error) {
	s := &sums{src: map[pair]Checksum{}, dst: map[pair]Checksum{}}
	var streams []stream
	for _, tp := range r.plan.Tables {
		for _, sp := range tp.Sources {
			streams = append(streams, stream{tp: tp, shard: sp.Shard, source: true})
		}
		for _, t := range tp.Targets {
			streams = append(streams, stream{tp: tp, shard: t})
		}
	}
	for i := range r.plan.References {
		rc := &r.plan.References[i]
		streams = append(streams, stream{ref: rc, shard: rc.From, side: true}, stream{ref: rc, shard: rc.To})
	}
	err := parallel(ctx, r.cfg.Parallel, streams, func(ctx context.Context, st stream) error {
		c, err := connect(ctx, r.primary(st.shard))
		if err != nil {
			return err
		}
		defer closeConn(c)
		if st.ref != nil {
			sum, err := r.refChecksum(ctx, c, st.ref.Table)
			if err != nil {
				return fmt.Errorf("reshard: verify %s on %s: %w", st.ref.Table, st.shard, err)
			}
			into := s.dst
			if st.side {
				into = s.src
			}
			s.merge(into, map[pair]Checksum{{st.ref.Table, st.ref.From, st.ref.To}: sum})
			return nil
		}
		part, err := r.tableChecksums(ctx, c, st)
		if err != nil {
			return fmt.Errorf("reshard: verify %s on %s: %w", st.tp.Name, st.shard, err)
		}
		into := s.dst
		if st.source {
			into = s.src
		}
		s.merge(into, part)
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := map[pair]bool{}
	for k := range s.src {
		keys[k] = true
	}
	for k := range s.dst {
		keys[k] = true
	}
	sorted := make([]pair, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.SortFunc(sorted, func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.table, b.table), cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to))
	})
	var verified []Verified
	var bad []Mismatch
	for _, k := range sorted {
		if s.src[k] != s.dst[k] {
			bad = append(bad, Mismatch{Table: k.table, From: k.from, To: k.to, Source: s.src[k], Target: s.dst[k]})
			continue
		}
		verified = append(verified, Verified{Table: k.table, From: k.from, To: k.to, Sum: s.src[k]})
	}
	if len(bad) > 0 {
		for _, m := range bad {
			r.log.Error("verification mismatch", zap.String("set", m.String()))
		}
		return nil, &VerifyError{Mismatches: bad}
	}
	r.log.Info("verified", zap.Int("sets", len(verified)))
	return verified, nil
}

// rowHash is the SQL expression hashing a row of cols.
func rowHash(cols []column) string {
	return "hashtextextended(ROW(" + columnList(cols) + ")::text, 0)"
}

// tableChecksums streams (key, row hash) of a table on one shard and sums
// the moving rows per set: on a source the rows that leave it, on a target
// the rows that arrived from one of the table's sources.
func (r *Resharder) tableChecksums(ctx context.Context, c *pgx.Conn, st stream) (map[pair]Checksum, error) {
	tp := st.tp
	pred := tp.TargetPredicate[st.shard]
	if st.source {
		for _, sp := range tp.Sources {
			if sp.Shard == st.shard {
				pred = sp.Predicate
			}
		}
	}
	where, err := rangeWhere(tp, nil, nil, pred)
	if err != nil {
		return nil, err
	}
	q := fmt.Sprintf("COPY (SELECT %s, %s FROM %s%s) TO STDOUT (FORMAT binary)",
		quoteIdent(tp.Column), rowHash(r.cols[tp.Name]), quoteTable(tp.Name), where)
	isSource := make([]bool, r.opts.Old.Shards())
	for _, sp := range tp.Sources {
		isSource[tp.oldIndex[sp.Shard]] = true
	}
	self := tp.oldIndex[st.shard]
	if !st.source {
		self = tp.newIndex[st.shard]
	}
	out := map[pair]Checksum{}
	// Per-index accumulators avoid a map operation per row.
	acc := make([]Checksum, max(r.opts.Old.Shards(), r.opts.New.Shards()))
	scan := newTupleScanner(func(_ []byte, f [][]byte) error {
		if len(f) != 2 || f[0] == nil || len(f[1]) != 8 {
			return fmt.Errorf("%w: unexpected checksum row", ErrBackend)
		}
		k, err := tp.Type.DecodeBinary(f[0])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBackend, err)
		}
		from, to, moved := tp.route(k)
		if !moved || from < 0 || to < 0 {
			return nil
		}
		h := binary.BigEndian.Uint64(f[1])
		switch {
		case st.source && from == self:
			acc[to].add(h)
		case !st.source && to == self && isSource[from]:
			acc[from].add(h)
		}
		return nil
	})
	if _, err := c.PgConn().CopyTo(ctx, scan, q); err != nil {
		return nil, err
	}
	if err := scan.finish(); err != nil {
		return nil, err
	}
	for i, sum := range acc {
		if sum.Rows == 0 {
			continue
		}
		if st.source {
			out[pair{tp.Name, st.shard, r.opts.New.ShardName(i)}] = sum
		} else {
			out[pair{tp.Name, r.opts.Old.ShardName(i), st.shard}] = sum
		}
	}
	return out, nil
}

// refChecksum sums a whole reference table.
func (r *Resharder) refChecksum(ctx context.Context, c *pgx.Conn, table string) (Checksum, error) {
	var sum Checksum
	q := fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT (FORMAT binary)", rowHash(r.cols[table]), quoteTable(table))
	scan := newTupleScanner(func(_ []byte, f [][]byte) error {
		if len(f) != 1 || len(f[0]) != 8 {
			return fmt.Errorf("%w: unexpected checksum row", ErrBackend)
		}
		sum.add(binary.BigEndian.Uint64(f[0]))
		return nil
	})
	if _, err := c.PgConn().CopyTo(ctx, scan, q); err != nil {
		return sum, err
	}
	return sum, scan.finish()
}
