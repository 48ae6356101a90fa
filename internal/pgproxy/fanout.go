package pgproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/router/sqlroute"
)

// The fan-out executor runs one statement on several shards at once: a
// read whose rows are merged (merge.go), or a write to several shards (a
// reference table, a multi-row INSERT split per shard, an UPDATE or DELETE
// without the shard key). Every shard gets its own server connection (the
// transaction's, or one checked out for the unit: a replica for reads, as
// the read/write split says), the statement is sent to all of them, their
// answers are read in parallel and buffered, and the client gets one
// answer in the order its messages asked for. A shard's error aborts the
// statement; the client sees that error with the shard's name in front.

// shardResult is what one shard answered.
type shardResult struct {
	shard    int
	sc       *serverConn
	n        *node
	fresh    bool // checked out for this unit (released after it)
	wire     []byte
	stmtDesc bool                           // the first description answers a Describe of the client's statement
	params   *pgproto3.ParameterDescription // the client's statement's parameters
	descs    []*pgproto3.RowDescription     // RowDescriptions (nil entries: NoData), in order
	rows     [][][]byte                     // DataRow values (copied)
	tag      []byte                         // CommandComplete (the last one)
	tags     [][]byte                       // every CommandComplete of a multi-statement query
	copyOut  *pgproto3.CopyOutResponse      // COPY ... TO STDOUT
	copyData []byte                         // its data
	empty    bool                           // EmptyQueryResponse
	errResp  *pgproto3.ErrorResponse        // the first error
	notices  []*pgproto3.NoticeResponse     // notices to relay
	ioErr    error                          // the connection failed
	tooBig   bool                           // the result exceeded max_fanout_bytes: rows dropped
}

// fanout is one multi-shard statement of a unit.
type fanout struct {
	sdb   *shardedDB
	route *sqlroute.ShardRoute
	item  int            // the executing batch item ('Q' or 'B')
	bind  pgproto3.Bind  // the client's Bind (extended protocol)
	stmt  *preparedStmt  // its statement
	descS bool           // the batch describes the statement (Describe 'S')
	descP bool           // ... or the portal
	res   []*shardResult // one per target shard
	txid  string         // two-phase transaction id (writes with two_phase_commit)
	bytes atomic.Int64   // result bytes held so far, against max_fanout_bytes
	limit int64
}

// runFanout runs the batch whose one statement needs several shards.
func (s *session) runFanout(ctx context.Context, sdb *shardedDB, u *unitRoute, flushOnly bool) error {
	if flushOnly {
		return s.shardFail(fmt.Errorf("%w: a statement across shards needs a Sync, not a Flush", errUnsupported), flushOnly)
	}
	if u.multi.Copy != nil {
		return s.runCopySplit(ctx, sdb, u)
	}
	f := &fanout{sdb: sdb, route: u.multi, item: u.item, limit: int64(sdb.cfg.MaxFanoutBytes)}
	it := &s.batch.items[u.item]
	if it.kind == 'B' {
		if err := f.bind.Decode(s.batch.buf[it.start+5 : it.end]); err != nil {
			return fmt.Errorf("%w: %v", errProtocol, err)
		}
		f.stmt = it.stmt
		if f.stmt == nil {
			f.stmt = it.un
		}
		for _, o := range s.batch.items {
			switch {
			case o.kind == 'D' && s.batch.buf[o.start+5] == 'S':
				if (o.stmt != nil && o.stmt != f.stmt) || (o.stmt == nil && !(o.unnamed && f.stmt == o.un)) {
					return s.shardFail(fmt.Errorf("%w: a batch that describes another statement than the one it runs across shards", errUnsupported), false)
				}
				f.descS = true
			case o.kind == 'D':
				f.descP = true
			case o.kind == 'E':
				var e pgproto3.Execute
				if err := e.Decode(s.batch.buf[o.start+5 : o.end]); err == nil && e.MaxRows != 0 {
					return s.shardFail(fmt.Errorf("%w: Execute with a row limit (a portal fetched in parts) across shards", errUnsupported), false)
				}
			}
		}
	}
	write := u.write || f.route.Write
	if write {
		sdb.stats.multiWrites.Add(1)
	} else {
		sdb.stats.fanouts.Add(1)
	}
	sh := s.sh
	inTx := sh.txOpen || sh.mask != 0
	if write && inTx {
		targets := uint64(0)
		for _, k := range f.route.Shards {
			targets |= 1 << uint(k)
		}
		if bits.OnesCount64(targets|sh.wrote) > 1 && !sdb.cfg.TwoPhaseCommit {
			sdb.stats.refused.Add(1)
			return s.shardFail(fmt.Errorf("%w: this statement writes to %d shards", errMultiShardTx, bits.OnesCount64(targets)), false)
		}
	}
	start := time.Now()
	for _, k := range f.route.Shards {
		sdb.shards[k].stats.shardStatements.Add(1)
	}
	if err := s.fanoutConns(ctx, f, write, inTx); err != nil {
		s.releaseFanout(f)
		return s.shardFail(err, false)
	}
	twoPC := write && !inTx && sdb.cfg.TwoPhaseCommit && len(f.res) > 1
	for i, r := range f.res {
		r.stmtDesc = f.descS && i == 0
		r.wire = s.fanoutWire(f, r, twoPC)
		if err := r.sc.write(r.wire); err != nil {
			r.ioErr = err
		}
	}
	conns := make([]*serverConn, 0, len(f.res))
	for _, r := range f.res {
		conns = append(conns, r.sc)
	}
	s.fanout.Store(&conns)
	var wg sync.WaitGroup
	for _, r := range f.res {
		if r.ioErr != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.srv.recoverLog("fan-out reader")
			r.read(twoPC, f.route.CopyOut != nil, f)
		}()
	}
	wg.Wait()
	s.endFanoutCancel(conns)
	if write && inTx {
		for _, r := range f.res {
			sh.wrote |= 1 << uint(r.shard)
		}
	}
	for _, r := range f.res {
		if r.ioErr != nil {
			r.sc.broken = true
		}
		if cl := sdb.shards[r.shard]; cl != nil {
			if r.n.role == roleReplica {
				cl.stats.replicaQueries.Add(1)
			} else {
				cl.stats.primaryQueries.Add(1)
			}
			s.srv.metrics.query(cl.name, r.n.role == roleReplica, time.Since(start))
		}
	}
	err := s.answerFanout(ctx, f, twoPC)
	s.releaseFanout(f)
	return err
}

// fanoutConns gets a connection on every target shard.
func (s *session) fanoutConns(ctx context.Context, f *fanout, write, inTx bool) error {
	rt := s.rt()
	sh := s.sh
	for _, k := range f.route.Shards {
		r := &shardResult{shard: k}
		f.res = append(f.res, r)
		switch {
		case sh.conns[k] != nil:
			r.sc, r.n = sh.conns[k], sh.nodes[k]
		case inTx:
			if err := s.attachShardTx(ctx, f.sdb, k); err != nil {
				return fmt.Errorf("shard %s: %w", f.sdb.shardName(k), err)
			}
			r.sc, r.n = sh.conns[k], sh.nodes[k]
		default:
			cl := f.sdb.shards[k]
			s.minLSN = sh.minLSN[k]
			n, err := s.pickNode(rt, cl, !write && s.wantsReplica(rt, s.batch.class), nil)
			s.pick.Done(nil, 0)
			s.pick = balancer.PickResult{}
			if err != nil {
				return fmt.Errorf("shard %s: %w", f.sdb.shardName(k), err)
			}
			s.state.Store(stateWaiting)
			sc, err := s.checkout(ctx, rt, n)
			if err != nil {
				return fmt.Errorf("shard %s: %w", f.sdb.shardName(k), err)
			}
			r.sc, r.n, r.fresh = sc, n, true
		}
	}
	s.state.Store(stateActive)
	return nil
}

// releaseFanout returns the connections checked out for the unit.
func (s *session) releaseFanout(f *fanout) {
	for _, r := range f.res {
		if r.fresh && r.sc != nil {
			r.sc.client.Store(0)
			r.sc.pool.release(r.sc)
			r.sc = nil
		}
	}
}

// fanoutWire encodes what one shard is sent.
func (s *session) fanoutWire(f *fanout, r *shardResult, twoPC bool) []byte {
	var w []byte
	sql := ""
	var params []int // ShardInsert parameter numbers
	for _, ins := range f.route.Inserts {
		if ins.Shard == r.shard {
			sql, params = ins.SQL, ins.Params
		}
	}
	if sql == "" && f.route.Merge != nil {
		sql = f.route.Merge.SQL
	}
	if twoPC {
		w, _ = (&pgproto3.Query{String: "BEGIN"}).Encode(w)
	}
	it := s.batch.items[f.item]
	if it.kind == 'Q' {
		if sql == "" {
			sql = it.sql
		}
		w, _ = (&pgproto3.Query{String: sql}).Encode(w)
	} else {
		st := f.stmt
		if sql == "" {
			sql = st.query
		}
		oids := st.oids
		b := pgproto3.Bind{ParameterFormatCodes: f.bind.ParameterFormatCodes, Parameters: f.bind.Parameters, ResultFormatCodes: f.bind.ResultFormatCodes}
		if params != nil {
			oids = nil
			if len(st.oids) > 0 {
				oids = make([]uint32, len(params))
			}
			b.Parameters = make([][]byte, len(params))
			if len(f.bind.ParameterFormatCodes) > 1 {
				b.ParameterFormatCodes = make([]int16, len(params))
			}
			for i, p := range params {
				b.Parameters[i] = f.bind.Parameters[p-1]
				if oids != nil && p-1 < len(st.oids) {
					oids[i] = st.oids[p-1]
				}
				if len(f.bind.ParameterFormatCodes) > 1 {
					b.ParameterFormatCodes[i] = f.bind.ParameterFormatCodes[p-1]
				}
			}
		}
		if m := f.route.Merge; m != nil && m.Visible >= 0 && len(b.ResultFormatCodes) > 1 {
			// Hidden columns (avg's count) come back as text.
			codes := make([]int16, len(b.ResultFormatCodes), len(b.ResultFormatCodes)+len(m.AvgCount))
			copy(codes, b.ResultFormatCodes)
			for range m.AvgCount {
				codes = append(codes, 0)
			}
			b.ResultFormatCodes = codes
		}
		if r.stmtDesc {
			w, _ = (&pgproto3.Parse{Query: st.query, ParameterOIDs: st.oids}).Encode(w)
			w, _ = (&pgproto3.Describe{ObjectType: 'S'}).Encode(w)
		}
		w, _ = (&pgproto3.Parse{Query: sql, ParameterOIDs: oids}).Encode(w)
		w, _ = b.Encode(w)
		w, _ = (&pgproto3.Describe{ObjectType: 'P'}).Encode(w)
		w, _ = (&pgproto3.Execute{}).Encode(w)
		w, _ = (&pgproto3.Sync{}).Encode(w)
		r.sc.unnamedTag = 0 // the unnamed statement is replaced
	}
	if twoPC {
		w, _ = (&pgproto3.Query{String: "PREPARE TRANSACTION " + quoteLiteral(f.gid(s, r.shard))}).Encode(w)
	}
	return w
}

// read reads a shard's answers up to the last ReadyForQuery; copyOut
// accepts a COPY ... TO STDOUT's data.
func (r *shardResult) read(twoPC, copyOut bool, f *fanout) {
	sc := r.sc
	want := 1
	if twoPC {
		want = 3 // BEGIN, the statement, PREPARE TRANSACTION
	}
	seen := 0
	for seen < want {
		msg, err := sc.receive()
		if err != nil {
			r.ioErr = err
			return
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			sc.txStatus = m.TxStatus
			seen++
		case *pgproto3.DataRow:
			if r.tooBig || f.over(m.Values, nil) {
				r.tooBig, r.rows = true, nil
				continue
			}
			r.rows = append(r.rows, copyValues(m.Values))
		case *pgproto3.RowDescription:
			r.descs = append(r.descs, copyRowDesc(m))
		case *pgproto3.NoData:
			r.descs = append(r.descs, nil)
		case *pgproto3.ParameterDescription:
			r.params = &pgproto3.ParameterDescription{ParameterOIDs: append([]uint32(nil), m.ParameterOIDs...)}
		case *pgproto3.CommandComplete:
			if twoPC && seen != 1 {
				continue // BEGIN, PREPARE TRANSACTION
			}
			r.tag = append([]byte(nil), m.CommandTag...)
			r.tags = append(r.tags, r.tag)
		case *pgproto3.EmptyQueryResponse:
			r.empty = true
		case *pgproto3.ErrorResponse:
			if r.errResp == nil {
				e := *m
				r.errResp = &e
			}
		case *pgproto3.NoticeResponse:
			n := *m
			r.notices = append(r.notices, &n)
		case *pgproto3.ParameterStatus:
			sc.params[m.Name] = m.Value
		case *pgproto3.ParseComplete, *pgproto3.BindComplete, *pgproto3.CloseComplete, *pgproto3.PortalSuspended:
		case *pgproto3.CopyOutResponse:
			if !copyOut {
				r.ioErr = fmt.Errorf("%w: COPY in a statement across shards", errUnsupported)
				sc.broken = true
				return
			}
			r.copyOut = &pgproto3.CopyOutResponse{OverallFormat: m.OverallFormat, ColumnFormatCodes: append([]uint16(nil), m.ColumnFormatCodes...)}
		case *pgproto3.CopyData:
			if r.tooBig || f.over(nil, m.Data) {
				r.tooBig, r.copyData = true, nil
				continue
			}
			r.copyData = append(r.copyData, m.Data...)
		case *pgproto3.CopyDone:
		case *pgproto3.CopyInResponse:
			r.ioErr = fmt.Errorf("%w: COPY in a statement across shards", errUnsupported)
			sc.broken = true
			return
		default:
			r.ioErr = unexpected(m)
			sc.broken = true
			return
		}
	}
}

func copyValues(vals [][]byte) [][]byte {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if v == nil {
			continue
		}
		start := len(buf)
		buf = append(buf, v...)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

func copyRowDesc(m *pgproto3.RowDescription) *pgproto3.RowDescription {
	out := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(m.Fields))}
	for i, f := range m.Fields {
		f.Name = append([]byte(nil), f.Name...)
		out.Fields[i] = f
	}
	return out
}

// answerFanout sends the client the answers of a multi-shard statement.
func (s *session) answerFanout(ctx context.Context, f *fanout, twoPC bool) error {
	var ioErr error
	for _, r := range f.res {
		if r.ioErr != nil {
			ioErr = fmt.Errorf("shard %s: %w", f.sdb.shardName(r.shard), r.ioErr)
			break
		}
	}
	if ioErr != nil {
		if twoPC {
			s.abortTwoPhase(f)
		}
		if errors.Is(ioErr, errUnsupported) {
			return s.shardFail(ioErr, false)
		}
		return &serverError{node: "fan-out", err: ioErr}
	}
	for _, r := range f.res {
		for _, n := range r.notices {
			s.send(n)
		}
	}
	for _, r := range f.res {
		if r.tooBig && r.errResp == nil {
			if twoPC {
				s.abortTwoPhase(f)
			}
			f.sdb.stats.refused.Add(1)
			return s.shardFail(&errServerResponse{code: sqlstateProgramLimit, msg: fmt.Sprintf(
				"the result from %d shards exceeds max_fanout_bytes (%d bytes): add the shard key or a LIMIT", len(f.res), f.limit)}, false)
		}
	}
	var failed *shardResult
	for _, r := range f.res {
		if r.errResp != nil {
			failed = r
			break
		}
	}
	if failed == nil {
		if err := checkDescs(f); err != nil {
			failed = &shardResult{shard: f.res[0].shard, errResp: errorResponse(sqlstateDatatypeMismatch, "%v", err)}
		}
	}
	if twoPC {
		if failed != nil {
			s.abortTwoPhase(f)
		} else if err := s.finishTwoPhase(ctx, f); err != nil {
			return s.shardFail(err, false)
		}
	}
	if failed != nil {
		e := *failed.errResp
		e.Message = "shard " + f.sdb.shardName(failed.shard) + ": " + e.Message
		s.srv.metrics.error(e.Code)
		if s.sh.txOpen || s.sh.mask != 0 {
			s.sh.failed = true
		}
		s.send(&e)
		s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		return s.flush()
	}
	desc, rows, err := s.mergeFanout(f)
	if err != nil {
		if s.sh.txOpen || s.sh.mask != 0 {
			s.sh.failed = true
		}
		f.sdb.stats.refused.Add(1)
		s.send(asQueryError(shardError(err)))
		s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		return s.flush()
	}
	tag := fanoutTag(f, len(rows))
	it := s.batch.items[f.item]
	if it.kind == 'Q' {
		if f.route.CopyOut != nil {
			if err := s.sendCopyOut(f); err != nil {
				return err
			}
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
			return s.flush()
		}
		if desc != nil {
			s.send(desc)
		}
		if err := s.sendRows(rows); err != nil {
			return err
		}
		if f.route.Replicated && len(f.res[0].tags) > 1 {
			// A script run alike on every shard: its statements' tags.
			for _, t := range f.res[0].tags[:len(f.res[0].tags)-1] {
				s.send(&pgproto3.CommandComplete{CommandTag: t})
			}
		}
		s.sendTag(f, tag)
		s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		return s.flush()
	}
	for _, o := range s.batch.items {
		switch o.kind {
		case 'P':
			s.send(synthParseComplete)
		case 'B':
			s.send(&pgproto3.BindComplete{})
		case 'D':
			if s.batch.buf[o.start+5] == 'S' {
				r0 := f.res[0]
				if r0.params != nil {
					s.send(r0.params)
				} else {
					s.send(&pgproto3.ParameterDescription{})
				}
				if len(r0.descs) > 0 && r0.descs[0] != nil {
					s.send(r0.descs[0])
				} else {
					s.send(&pgproto3.NoData{})
				}
				continue
			}
			if desc != nil {
				s.send(desc)
			} else {
				s.send(&pgproto3.NoData{})
			}
		case 'E':
			if f.route.CopyOut != nil {
				if err := s.sendCopyOut(f); err != nil {
					return err
				}
				continue
			}
			if err := s.sendRows(rows); err != nil {
				return err
			}
			s.sendTag(f, tag)
		case 'C':
			s.send(synthCloseComplete)
		case 'S':
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		}
	}
	return s.flush()
}

func (s *session) sendTag(f *fanout, tag []byte) {
	for _, r := range f.res {
		if r.empty && r.tag == nil {
			s.send(&pgproto3.EmptyQueryResponse{})
			return
		}
	}
	s.send(&pgproto3.CommandComplete{CommandTag: tag})
}

// sendRows relays merged rows, flushing as the buffer grows.
func (s *session) sendRows(rows [][][]byte) error {
	for _, row := range rows {
		s.send(&pgproto3.DataRow{Values: row})
		if len(s.out) > clientFlushSize {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// portalDesc returns a shard's RowDescription of the statement's result.
func (r *shardResult) portalDesc() *pgproto3.RowDescription {
	i := 0
	if r.stmtDesc {
		i = 1
	}
	if i < len(r.descs) {
		return r.descs[i]
	}
	return nil
}

// checkDescs verifies that every shard describes the same columns.
func checkDescs(f *fanout) error {
	first := f.res[0].portalDesc()
	for _, r := range f.res[1:] {
		d := r.portalDesc()
		if (first == nil) != (d == nil) {
			return fmt.Errorf("shards %s and %s return different results (one has rows, one has none)", f.sdb.shardName(f.res[0].shard), f.sdb.shardName(r.shard))
		}
		if first == nil {
			continue
		}
		if len(d.Fields) != len(first.Fields) {
			return fmt.Errorf("shards %s and %s return %d and %d columns", f.sdb.shardName(f.res[0].shard), f.sdb.shardName(r.shard), len(first.Fields), len(d.Fields))
		}
		for i := range d.Fields {
			a, b := first.Fields[i], d.Fields[i]
			if a.DataTypeOID != b.DataTypeOID || !bytes.Equal(a.Name, b.Name) || a.Format != b.Format {
				return fmt.Errorf("shards %s and %s describe column %d differently (%s type %d, %s type %d)",
					f.sdb.shardName(f.res[0].shard), f.sdb.shardName(r.shard), i+1, a.Name, a.DataTypeOID, b.Name, b.DataTypeOID)
			}
		}
		for _, row := range r.rows {
			if len(row) != len(d.Fields) {
				return fmt.Errorf("shard %s returned a row of %d values for %d columns", f.sdb.shardName(r.shard), len(row), len(d.Fields))
			}
		}
	}
	return nil
}

// fanoutTag combines the shards' command tags: row counts are summed,
// a merged SELECT reports the rows returned.
func fanoutTag(f *fanout, rows int) []byte {
	first := f.res[0].tag
	verb, n, ok := splitTag(first)
	if !ok {
		return first
	}
	if verb == "SELECT" {
		return []byte("SELECT " + strconv.Itoa(rows))
	}
	if f.route.Replicated {
		return first // the same write on every shard: one logical change
	}
	total := n
	for _, r := range f.res[1:] {
		v, m, ok := splitTag(r.tag)
		if !ok || v != verb {
			return first
		}
		total += m
	}
	return []byte(verb + " " + strconv.FormatInt(total, 10))
}

// splitTag splits "INSERT 0 5" into ("INSERT 0", 5).
func splitTag(tag []byte) (string, int64, bool) {
	i := bytes.LastIndexByte(tag, ' ')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(string(tag[i+1:]), 10, 64)
	if err != nil {
		return "", 0, false
	}
	return string(tag[:i]), n, true
}

// sendCopyOut relays the shards' COPY ... TO STDOUT data as one stream:
// the first shard's CopyOutResponse, every shard's data (a CSV or text
// header only from the first, a binary header only from the first and the
// trailer only from the last), CopyDone and the summed count.
func (s *session) sendCopyOut(f *fanout) error {
	co := f.route.CopyOut
	first := f.res[0]
	if first.copyOut == nil {
		return s.shardFail(fmt.Errorf("%w: shard %s did not start the COPY", errUnsupported, f.sdb.shardName(first.shard)), false)
	}
	s.send(first.copyOut)
	var total int64
	for i, r := range f.res {
		data := r.copyData
		switch {
		case co.Format == "binary":
			if i > 0 && len(data) >= 19 {
				data = data[19+int(binary.BigEndian.Uint32(data[15:])):]
			}
			if i < len(f.res)-1 && len(data) >= 2 && data[len(data)-2] == 0xff && data[len(data)-1] == 0xff {
				data = data[:len(data)-2]
			}
		case co.Header && i > 0:
			if j := bytes.IndexByte(data, '\n'); j >= 0 {
				data = data[j+1:]
			}
		}
		for len(data) > 0 {
			n := min(len(data), 64<<10)
			s.send(&pgproto3.CopyData{Data: data[:n]})
			data = data[n:]
			if len(s.out) > clientFlushSize {
				if err := s.flush(); err != nil {
					return err
				}
			}
		}
		if _, n, ok := splitTag(r.tag); ok {
			total += n
		}
	}
	s.send(&pgproto3.CopyDone{})
	s.send(&pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(total, 10))})
	return nil
}

// cancelFanout forwards a CancelRequest to every shard of the client's
// running fan-out.
func (srv *Server) cancelFanout(s *session, list *[]*serverConn) {
	for _, sc := range *list {
		sc.cancelRefs.Add(1)
		if s.fanout.Load() == list {
			if err := sendCancel(sc.pool.node.addr, sc.pid, sc.key); err != nil {
				srv.log.Info("cancel request failed", zap.String("node", sc.pool.node.addr), zap.Error(err))
			}
		}
		sc.cancelRefs.Add(-1)
	}
}

// endFanoutCancel stops CancelRequests reaching the fan-out's connections
// and waits for one being delivered.
func (s *session) endFanoutCancel(conns []*serverConn) {
	s.fanout.Store(nil)
	for _, sc := range conns {
		for sc.cancelRefs.Load() > 0 {
			time.Sleep(time.Millisecond) // a cancel for this connection is being delivered
		}
	}
}

// over counts a row's (or COPY data's) bytes against max_fanout_bytes and
// reports whether the limit is passed.
func (f *fanout) over(vals [][]byte, data []byte) bool {
	if f == nil || f.limit <= 0 {
		return false
	}
	n := int64(len(data))
	for _, v := range vals {
		n += int64(len(v)) + 24
	}
	return f.bytes.Add(n) > f.limit
}
