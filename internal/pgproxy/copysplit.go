package pgproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tiergate/tiergate/router/sqlroute"
	"github.com/tiergate/tiergate/shardmap"
)

// COPY ... FROM STDIN into a sharded table: the proxy starts the COPY on
// every shard's primary, answers the client's CopyInResponse itself, reads
// the client's rows (text, csv or binary format), sends each to the shard
// of its key column, and ends every shard's COPY when the client does.
// The count the client gets is the sum. With two_phase_commit the shards'
// parts commit atomically; without it each shard commits its rows on its
// own (a failure on one shard does not undo the others').

// errCopyData: the client's COPY data is malformed.
var errCopyData = errors.New("malformed COPY data")

// copySplitter splits COPY data into rows and rows by shard.
type copySplitter struct {
	split  *sqlroute.CopySplit
	buf    []byte   // input not yet split
	out    [][]byte // per shard: CopyData payload waiting to be sent
	rows   []int64  // per shard
	header bool     // the header (line or binary header) is handled
	ended  bool     // end marker (\.) or binary trailer seen
	field  []byte   // scratch
}

func newCopySplitter(split *sqlroute.CopySplit, shards int) *copySplitter {
	return &copySplitter{split: split, out: make([][]byte, shards), rows: make([]int64, shards)}
}

// feed adds client data and splits the complete rows in it.
func (c *copySplitter) feed(data []byte) error {
	if c.ended {
		return nil
	}
	c.buf = append(c.buf, data...)
	var n int
	var err error
	if c.split.Format == "binary" {
		n, err = c.splitBinary()
	} else {
		n, err = c.splitText(false)
	}
	c.buf = c.buf[:copy(c.buf, c.buf[n:])]
	return err
}

// finish splits what is left at CopyDone.
func (c *copySplitter) finish() error {
	if c.ended || len(c.buf) == 0 {
		return nil // a binary stream may end without its trailer (pgx sends none)
	}
	if c.split.Format == "binary" {
		return fmt.Errorf("%w: %d bytes of an incomplete binary tuple", errCopyData, len(c.buf))
	}
	_, err := c.splitText(true)
	return err
}

// toAll appends b to every shard's output.
func (c *copySplitter) toAll(b []byte) {
	for i := range c.out {
		c.out[i] = append(c.out[i], b...)
	}
}

func (c *copySplitter) route(key []byte, null bool, format int16, row []byte) error {
	t := c.split.Table
	if null {
		return fmt.Errorf("%w: a COPY row has a NULL %s", sqlroute.ErrShardKey, t.Column())
	}
	k, err := t.Type().Decode(key, format)
	if err != nil {
		return fmt.Errorf("%w: %w", sqlroute.ErrShardKey, err)
	}
	s, err := t.ShardFor(k)
	if err != nil {
		return fmt.Errorf("%w: %w", sqlroute.ErrShardKey, err)
	}
	c.out[s] = append(c.out[s], row...)
	c.rows[s]++
	return nil
}

// splitText splits text or csv rows; at the end (last) an unterminated
// last row counts too. It returns the bytes consumed.
func (c *copySplitter) splitText(last bool) (int, error) {
	sp := c.split
	csv := sp.Format == "csv"
	pos := 0
	for pos < len(c.buf) {
		end, ok := c.rowEnd(pos, csv)
		if !ok {
			if !last {
				return pos, nil
			}
			end = len(c.buf)
		}
		row := c.buf[pos:end]
		line := bytes.TrimRight(row, "\r\n")
		pos = end
		if !c.header && sp.Header {
			c.header = true
			c.toAll(row)
			continue
		}
		c.header = true
		if !csv && string(line) == `\.` {
			c.ended = true
			return len(c.buf), nil
		}
		if csv && string(line) == `\.` {
			c.ended = true
			return len(c.buf), nil
		}
		if len(row) > 0 && row[len(row)-1] != '\n' {
			row = append(append([]byte(nil), row...), '\n')
		}
		if c.split.Table == nil {
			c.toAll(row)
			c.rows[0]++
			continue
		}
		key, null, err := c.keyField(line, csv)
		if err != nil {
			return pos, err
		}
		if err := c.route(key, null, shardmap.TextFormat, row); err != nil {
			return pos, err
		}
	}
	return pos, nil
}

// rowEnd finds the end (after the newline) of the row starting at pos.
func (c *copySplitter) rowEnd(pos int, csv bool) (int, bool) {
	if !csv {
		i := bytes.IndexByte(c.buf[pos:], '\n')
		if i < 0 {
			return 0, false
		}
		return pos + i + 1, true
	}
	quote, esc := c.split.Quote, c.split.Escape
	in := false
	for i := pos; i < len(c.buf); i++ {
		b := c.buf[i]
		switch {
		case in && b == esc && esc != quote && i+1 < len(c.buf):
			i++
		case b == quote:
			if in && esc == quote && i+1 < len(c.buf) && c.buf[i+1] == quote {
				i++
				continue
			}
			in = !in
		case b == '\n' && !in:
			return i + 1, true
		}
	}
	return 0, false
}

// keyField returns the key column's value of a text or csv line.
func (c *copySplitter) keyField(line []byte, csv bool) ([]byte, bool, error) {
	sp := c.split
	col := 0
	i := 0
	for {
		start := i
		quoted := false
		c.field = c.field[:0]
		for i < len(line) && line[i] != sp.Delimiter {
			b := line[i]
			switch {
			case csv && b == sp.Quote:
				quoted = true
				i++
				for i < len(line) {
					if line[i] == sp.Escape && sp.Escape != sp.Quote && i+1 < len(line) {
						c.field = append(c.field, line[i+1])
						i += 2
						continue
					}
					if line[i] == sp.Quote {
						if sp.Escape == sp.Quote && i+1 < len(line) && line[i+1] == sp.Quote {
							c.field = append(c.field, sp.Quote)
							i += 2
							continue
						}
						i++
						break
					}
					c.field = append(c.field, line[i])
					i++
				}
				continue
			case !csv && b == '\\' && i+1 < len(line):
				c.field = append(c.field, unescapeCopy(line[i+1]))
				i += 2
				continue
			}
			c.field = append(c.field, b)
			i++
		}
		if col == sp.KeyCol {
			raw := line[start:i]
			null := string(raw) == sp.Null && !quoted
			return c.field, null, nil
		}
		if i >= len(line) {
			return nil, false, fmt.Errorf("%w: a row has %d columns, the key is column %d", errCopyData, col+1, sp.KeyCol+1)
		}
		i++ // the delimiter
		col++
	}
}

func unescapeCopy(b byte) byte {
	switch b {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'v':
		return '\v'
	}
	return b
}

var binaryCopySignature = []byte("PGCOPY\n\xff\r\n\x00")

// splitBinary splits binary tuples; it returns the bytes consumed.
func (c *copySplitter) splitBinary() (int, error) {
	pos := 0
	b := c.buf
	if !c.header {
		if len(b) < 19 {
			return 0, nil
		}
		if !bytes.Equal(b[:11], binaryCopySignature) {
			return 0, fmt.Errorf("%w: no binary COPY signature", errCopyData)
		}
		ext := int(binary.BigEndian.Uint32(b[15:]))
		if len(b) < 19+ext {
			return 0, nil
		}
		c.toAll(b[:19+ext])
		c.header = true
		pos = 19 + ext
	}
	for pos+2 <= len(b) {
		n := int(int16(binary.BigEndian.Uint16(b[pos:])))
		if n == -1 {
			c.toAll(b[pos : pos+2])
			c.ended = true
			return len(b), nil
		}
		keyCol := c.split.KeyCol
		p := pos + 2
		var key []byte
		null := false
		complete := true
		for f := 0; f < n; f++ {
			if p+4 > len(b) {
				complete = false
				break
			}
			l := int(int32(binary.BigEndian.Uint32(b[p:])))
			p += 4
			if l < 0 {
				if f == keyCol {
					null = true
				}
				continue
			}
			if p+l > len(b) {
				complete = false
				break
			}
			if f == keyCol {
				key = b[p : p+l]
			}
			p += l
		}
		if !complete {
			return pos, nil
		}
		if c.split.Table == nil {
			c.toAll(b[pos:p])
			c.rows[0]++
			pos = p
			continue
		}
		if n <= keyCol {
			return pos, fmt.Errorf("%w: a tuple has %d fields, the key is field %d", errCopyData, n, c.split.KeyCol+1)
		}
		if err := c.route(key, null, shardmap.BinaryFormat, b[pos:p]); err != nil {
			return pos, err
		}
		pos = p
	}
	return pos, nil
}

// runCopySplit runs COPY ... FROM STDIN into a sharded table.
func (s *session) runCopySplit(ctx context.Context, sdb *shardedDB, u *unitRoute) error {
	it := s.batch.items[u.item]
	if it.kind != 'Q' {
		return s.shardFail(fmt.Errorf("%w: COPY into a sharded table in the extended protocol", errUnsupported), false)
	}
	sh := s.sh
	inTx := sh.txOpen || sh.mask != 0
	if inTx && !sdb.cfg.TwoPhaseCommit && bits.OnesCount64(sh.wrote) > 0 && len(sdb.shards) > 1 {
		return s.shardFail(fmt.Errorf("%w: COPY writes to every shard", errMultiShardTx), false)
	}
	f := &fanout{sdb: sdb, route: u.multi, item: u.item}
	if err := s.fanoutConns(ctx, f, true, inTx); err != nil {
		s.releaseFanout(f)
		return s.shardFail(err, false)
	}
	defer s.releaseFanout(f)
	sdb.stats.multiWrites.Add(1)
	for _, r := range f.res {
		sdb.shards[r.shard].stats.shardStatements.Add(1)
	}
	timeout := s.rt().cfg.Pool.ConnectTimeout
	twoPC := !inTx && sdb.cfg.TwoPhaseCommit && len(f.res) > 1
	if twoPC {
		f.txid = newTwoPhaseID()
		for _, r := range f.res {
			if _, err := r.sc.exec("BEGIN", timeout); err != nil {
				s.abortCopy(f, false)
				return s.shardFail(fmt.Errorf("shard %s: %w", sdb.shardName(r.shard), err), false)
			}
		}
	}
	// Start the COPY everywhere.
	var first *pgproto3.CopyInResponse
	var startErr *shardResult
	for _, r := range f.res {
		w, _ := (&pgproto3.Query{String: it.sql}).Encode(nil)
		if err := r.sc.write(w); err != nil {
			return &serverError{node: r.sc.pool.node.addr, err: err}
		}
		resp, err := r.waitCopyIn()
		if err != nil {
			return &serverError{node: r.sc.pool.node.addr, err: err}
		}
		if resp == nil {
			startErr = r
			break
		}
		if first == nil {
			first = resp
		}
	}
	if startErr != nil {
		s.abortCopy(f, twoPC)
		return s.failFanout(f, startErr)
	}
	s.send(first)
	if err := s.flush(); err != nil {
		s.abortCopy(f, twoPC)
		return err
	}
	sp := newCopySplitter(u.multi.Copy, len(sdb.shards))
	var splitErr error
	var clientFail *pgproto3.CopyFail
	for done := false; !done; {
		msg, err := s.readClient()
		if err != nil {
			s.abortCopy(f, twoPC)
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if splitErr == nil {
				splitErr = sp.feed(m.Data)
			}
		case *pgproto3.CopyDone:
			if splitErr == nil {
				splitErr = sp.finish()
			}
			done = true
		case *pgproto3.CopyFail:
			cf := *m
			clientFail = &cf
			done = true
		case *pgproto3.Sync, *pgproto3.Flush:
		default:
			splitErr = fmt.Errorf("%w: unexpected %T during COPY", errProtocol, m)
			done = true
		}
		if splitErr == nil && !done {
			if err := s.sendCopyParts(f, sp, 64<<10); err != nil {
				return err
			}
		}
		if splitErr != nil {
			done = true
		}
	}
	if splitErr == nil && clientFail == nil {
		if err := s.sendCopyParts(f, sp, 0); err != nil {
			return err
		}
	}
	// End every shard's COPY and read the outcome.
	for _, r := range f.res {
		var w []byte
		switch {
		case clientFail != nil:
			w, _ = clientFail.Encode(nil)
		case splitErr != nil:
			w, _ = (&pgproto3.CopyFail{Message: splitErr.Error()}).Encode(nil)
		default:
			w, _ = (&pgproto3.CopyDone{}).Encode(nil)
		}
		if err := r.sc.write(w); err != nil {
			return &serverError{node: r.sc.pool.node.addr, err: err}
		}
	}
	var failed *shardResult
	var total int64
	for _, r := range f.res {
		r.read(false, false, nil)
		if r.ioErr != nil {
			return &serverError{node: r.sc.pool.node.addr, err: r.ioErr}
		}
		if r.errResp != nil && failed == nil {
			failed = r
		}
		if _, n, ok := splitTag(r.tag); ok && (total == 0 || !u.multi.Replicated) {
			total += n
		}
	}
	if splitErr != nil {
		s.abortCopy(f, twoPC)
		return s.shardFail(splitErr, false)
	}
	if clientFail != nil || failed != nil {
		s.abortCopy(f, twoPC)
		if failed == nil {
			failed = &shardResult{shard: f.res[0].shard, errResp: errorResponse("57014", "COPY from stdin failed: %s", clientFail.Message)}
			e := *failed.errResp
			s.send(&e)
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
			return s.flush()
		}
		return s.failFanout(f, failed)
	}
	if twoPC {
		for _, r := range f.res {
			if _, err := r.sc.exec("PREPARE TRANSACTION "+quoteLiteral(partGID(f.txid, r.shard)), timeout); err != nil {
				s.abortTwoPhase(f)
				return s.shardFail(fmt.Errorf("COPY rolled back: shard %s: %w", sdb.shardName(r.shard), err), false)
			}
		}
		if err := s.finishTwoPhase(ctx, f); err != nil {
			return s.shardFail(err, false)
		}
	}
	if inTx {
		for _, r := range f.res {
			sh.wrote |= 1 << uint(r.shard)
		}
	}
	s.send(&pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(total, 10))})
	s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
	return s.flush()
}

// waitCopyIn reads a shard's answer to the COPY statement: its
// CopyInResponse, or nil after an error (read up to ReadyForQuery).
func (r *shardResult) waitCopyIn() (*pgproto3.CopyInResponse, error) {
	for {
		msg, err := r.sc.receive()
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.CopyInResponse:
			return &pgproto3.CopyInResponse{OverallFormat: m.OverallFormat, ColumnFormatCodes: append([]uint16(nil), m.ColumnFormatCodes...)}, nil
		case *pgproto3.ErrorResponse:
			e := *m
			r.errResp = &e
		case *pgproto3.ReadyForQuery:
			r.sc.txStatus = m.TxStatus
			return nil, nil
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return nil, unexpected(m)
		}
	}
}

// sendCopyParts sends each shard the rows split for it, once more than
// min bytes are waiting (0: everything).
func (s *session) sendCopyParts(f *fanout, sp *copySplitter, min int) error {
	for _, r := range f.res {
		out := sp.out[r.shard]
		if len(out) == 0 || len(out) < min {
			continue
		}
		w, _ := (&pgproto3.CopyData{Data: out}).Encode(r.sc.wbuf[:0])
		if err := r.sc.write(w); err != nil {
			return &serverError{node: r.sc.pool.node.addr, err: err}
		}
		r.sc.wbuf = w[:0]
		sp.out[r.shard] = out[:0]
	}
	return nil
}

// abortCopy ends what a failed COPY left open on the shards.
func (s *session) abortCopy(f *fanout, twoPC bool) {
	timeout := s.rt().cfg.Pool.ConnectTimeout
	for _, r := range f.res {
		if r.sc == nil || r.sc.broken {
			continue
		}
		if twoPC && r.sc.txStatus != 'I' {
			_, _ = r.sc.exec("ROLLBACK", timeout)
		}
	}
	if s.sh.txOpen || s.sh.mask != 0 {
		s.sh.failed = true
	}
}

// failFanout reports a shard's error for a multi-shard statement.
func (s *session) failFanout(f *fanout, r *shardResult) error {
	e := *r.errResp
	e.Message = "shard " + f.sdb.shardName(r.shard) + ": " + e.Message
	s.srv.metrics.error(e.Code)
	if s.sh.txOpen || s.sh.mask != 0 {
		s.sh.failed = true
	}
	s.send(&e)
	s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
	return s.flush()
}
