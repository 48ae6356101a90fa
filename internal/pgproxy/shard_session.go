package pgproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tiergate/tiergate/router/sqlroute"
)

// A session on a sharded database routes each unit of work (a simple
// query, or an extended batch up to Sync) by its statements' shard keys:
// a unit that stays on one shard runs there through the same machinery as
// an unsharded database (read/write split, retries, pooling, statement
// re-preparing), a unit whose one statement needs several shards goes to
// the fan-out executor (fanout.go).
//
// Transactions: a BEGIN on its own is answered by the proxy and started on
// each shard the transaction reaches (with the same BEGIN text), so a
// transaction holds one server connection per shard it touched. A
// transaction that writes to a second shard is refused unless
// two_phase_commit is on; COMMIT then prepares every written shard and
// commits them with COMMIT PREPARED (twophase.go). COMMIT and ROLLBACK with
// several shards attached are run by the proxy on each of them.

var (
	// errTxAborted: a statement after the proxy failed one in the same
	// transaction (SQLSTATE 25P02, as PostgreSQL reports it).
	errTxAborted = errors.New("current transaction is aborted, commands ignored until end of transaction block")
	// errMultiShardTx: a transaction wrote to a second shard without
	// two_phase_commit (SQLSTATE 0A000).
	errMultiShardTx = errors.New("a transaction that writes to several shards needs two_phase_commit")
	// errMultiShardBatch: one batch names several shards (0A000).
	errMultiShardBatch = errors.New("one batch of statements spans several shards; send them separately or in a transaction")
)

// SQLSTATEs of sharding errors.
const (
	sqlstateDatatypeMismatch = "42804"
	sqlstateInFailedTx       = "25P02"
	sqlstateProgramLimit     = "54000"
)

// shardError gives a sharding error its SQLSTATE (as an errServerResponse,
// which clientError reports as is); other errors are returned unchanged.
func shardError(err error) error {
	code := ""
	switch {
	case errors.Is(err, errTxAborted):
		code = sqlstateInFailedTx
	case errors.Is(err, sqlroute.ErrCrossShard), errors.Is(err, sqlroute.ErrShardKeyUpdate),
		errors.Is(err, errMultiShardTx), errors.Is(err, errMultiShardBatch), errors.Is(err, errUnmergeable):
		code = sqlstateFeatureNotSupported
	case errors.Is(err, sqlroute.ErrShardKey):
		code = sqlstateInvalidParameter
	default:
		return err
	}
	return &errServerResponse{code: code, msg: err.Error()}
}

// shardSession is a session's state on a sharded database; the session
// goroutine owns it.
type shardSession struct {
	conns  [sqlroute.MaxRouterShards]*serverConn // attached connection per shard
	nodes  [sqlroute.MaxRouterShards]*node
	minLSN [sqlroute.MaxRouterShards]uint64 // read-your-writes floor per shard
	mask   uint64                           // shards with an attached connection
	txW    uint64                           // shards with a committed-to-be write since attach (read-your-writes)

	txOpen   bool   // an explicit transaction is open
	beginSQL string // the BEGIN that starts it on each shard it reaches
	readOnly bool   // ... it is READ ONLY
	failed   bool   // the proxy failed a statement of the transaction
	wrote    uint64 // shards the transaction wrote to

	savepoints []savepoint // the transaction's savepoints, oldest first

	shard, key           string // SET tiergate.shard / tiergate.shard_key
	localShard, localKey string // SET LOCAL values
	local                bool   // SET LOCAL values are in force

	midBatch bool // the last unit ended with Flush: the batch goes on on cur
	cur      int

	params  [][]byte // scratch for a Bind's parameters
	formats []int16
	qdec    sqlroute.Decision // the decision of the batch's simple query (handleQuery's)
}

func newShardSession() *shardSession { return &shardSession{} }

// setting returns the value of tiergate.shard or tiergate.shard_key.
func (sh *shardSession) setting(name string) string {
	if name == sqlroute.SettingShard {
		return sh.shardHint()
	}
	return sh.keyHint()
}

func (sh *shardSession) shardHint() string {
	if sh.local {
		return sh.localShard
	}
	return sh.shard
}

func (sh *shardSession) keyHint() string {
	if sh.local {
		return sh.localKey
	}
	return sh.key
}

// set applies SET [LOCAL] / RESET of tiergate.shard or tiergate.shard_key.
// Setting one clears the other (they are two ways to name a shard).
func (sh *shardSession) set(s *session, ps sqlroute.ProxySetting) error {
	rt := s.rt()
	sdb := rt.sharded[s.dbName]
	if sdb == nil {
		return errUnknownDatabase
	}
	if ps.Name == sqlroute.SettingShard && ps.Value != "" {
		if _, ok := sdb.smap.ShardIndex(ps.Value); !ok {
			return fmt.Errorf("tiergate.shard: shard %q does not exist (shards: 0..%d or their names)", ps.Value, sdb.smap.Shards()-1)
		}
	}
	shard, key := sh.shardHint(), sh.keyHint()
	if ps.Name == sqlroute.SettingShard {
		shard, key = ps.Value, ""
	} else {
		shard, key = "", ps.Value
	}
	if ps.Local {
		if !sh.txOpen {
			return nil // like PostgreSQL: SET LOCAL outside a transaction has no effect
		}
		sh.local, sh.localShard, sh.localKey = true, shard, key
		return nil
	}
	sh.shard, sh.key = shard, key
	if sh.local {
		sh.localShard, sh.localKey = shard, key
	}
	return nil
}

// idle reports whether nothing is attached and no transaction is open.
func (sh *shardSession) idle() bool { return sh.mask == 0 && !sh.txOpen }

// txStatus is the transaction status the client sees.
func (sh *shardSession) txStatus() byte {
	if sh.failed {
		return 'E'
	}
	st := byte('I')
	if sh.txOpen {
		st = 'T'
	}
	for m := sh.mask; m != 0; m &= m - 1 {
		switch sh.conns[bits.TrailingZeros64(m)].txStatus {
		case 'E':
			return 'E'
		case 'T':
			st = 'T'
		}
	}
	return st
}

// endTx forgets the transaction.
func (sh *shardSession) endTx() {
	sh.txOpen, sh.beginSQL, sh.readOnly, sh.failed, sh.wrote = false, "", false, false, 0
	sh.savepoints = sh.savepoints[:0]
	sh.local, sh.localShard, sh.localKey = false, "", ""
}

// unitRoute is where a unit of work goes.
type unitRoute struct {
	shard int                  // the one shard, -1 for any
	multi *sqlroute.ShardRoute // the unit's one statement needs several shards
	item  int                  // the batch item of that statement
	execs int                  // statements executed ('Q' and 'B' items)
	kind  sqlroute.Kind        // the statement's kind when the unit runs one single statement
	sql   string               // ... and its text
	write bool
}

// routeUnit routes every statement of the batch and combines them.
func (s *session) routeUnit(sdb *shardedDB) (unitRoute, error) {
	u := unitRoute{shard: -1, kind: sqlroute.KindUnknown}
	sh := s.sh
	args := sqlroute.ShardArgs{Shard: sh.shardHint(), Key: sh.keyHint()}
	for i := range s.batch.items {
		it := &s.batch.items[i]
		var sql string
		var d sqlroute.Decision
		a := args
		switch it.kind {
		case 'Q':
			sql, d = it.sql, sh.qdec
		case 'B':
			st := it.stmt
			if st == nil && it.unnamed {
				st = it.un
			}
			u.execs++
			if st == nil || st.query == "" {
				continue // an unknown statement: the server will say so
			}
			var err error
			sh.params, sh.formats, err = bindParams(s.batch.buf[it.start+5:it.end], sh.params[:0], sh.formats[:0])
			if err != nil {
				return u, err
			}
			sql, d = st.query, st.dec
			a.Params, a.Formats, a.Bound = sh.params, sh.formats, true
		case 'F':
			u.execs++
			u.write = true
			continue
		default:
			continue
		}
		if it.kind == 'Q' {
			u.execs++
		}
		if len(d.Kinds) == 1 {
			u.kind, u.sql = d.Kind, sql
		} else {
			u.kind = sqlroute.KindUnknown
		}
		r, err := sdb.router.Route(sql, &d, &a)
		if err != nil {
			return u, err
		}
		u.write = u.write || r.Write
		switch {
		case r.Multi() || r.Inserts != nil || r.Copy != nil:
			if u.multi != nil || u.shard >= 0 {
				return u, errMultiShardBatch
			}
			rr := r
			u.multi, u.item = &rr, i
		case r.Any:
		case u.multi != nil:
			return u, errMultiShardBatch
		case u.shard < 0:
			u.shard = r.Shard
			if len(r.Shards) == 1 {
				u.shard = r.Shards[0]
			}
		case u.shard != r.Shard:
			return u, errMultiShardBatch
		}
	}
	if u.execs != 1 {
		u.kind, u.sql = sqlroute.KindUnknown, ""
	}
	if u.multi != nil && u.execs != 1 {
		return u, errMultiShardBatch
	}
	return u, nil
}

// runSharded runs the batch of a session on a sharded database.
func (s *session) runSharded(ctx context.Context, flushOnly bool) error {
	rt := s.rt()
	sdb := rt.sharded[s.dbName]
	if sdb == nil {
		return s.failUnit(errUnknownDatabase, flushOnly)
	}
	sh := s.sh
	class := s.batch.class
	if sh.midBatch && s.server != nil {
		return s.runOnShard(ctx, sdb, sh.cur, class, flushOnly)
	}
	if sh.mask == 0 && (class.write || class.begin || sh.txOpen) {
		// Writes wait while the proxy is paused for writes (resharding);
		// the map may have changed meanwhile. A transaction already on a
		// shard finishes (PAUSE waits for it).
		deadline := time.Now().Add(rt.cfg.Pool.QueryWaitTimeout)
		if err := s.srv.writes.enter(ctx, deadline, s.cancelWait); err != nil {
			return s.shardFail(err, flushOnly)
		}
		defer s.srv.writes.exit()
		if rt = s.rt(); rt.sharded[s.dbName] != nil {
			sdb = rt.sharded[s.dbName]
		}
	}
	u, err := s.routeUnit(sdb)
	switch {
	case err != nil:
		sdb.stats.refused.Add(1)
		return s.shardFail(err, flushOnly)
	case sh.failed && u.execs > 0 && u.kind != sqlroute.KindRollback && u.kind != sqlroute.KindCommit && u.kind != sqlroute.KindRollbackTo:
		return s.shardFail(errTxAborted, flushOnly)
	case (sh.txOpen || sh.mask != 0) && (u.kind == sqlroute.KindSavepoint || u.kind == sqlroute.KindRelease || u.kind == sqlroute.KindRollbackTo):
		return s.shardSavepoint(sdb, &u, flushOnly)
	case u.kind == sqlroute.KindBegin && sh.mask == 0:
		sh.txOpen, sh.beginSQL, sh.readOnly = true, u.sql, class.readOnly
		return s.answerLocal("BEGIN", flushOnly)
	case (u.kind == sqlroute.KindCommit || u.kind == sqlroute.KindRollback) && (sh.failed || bits.OnesCount64(sh.mask) != 1):
		return s.endShardTx(ctx, sdb, u.kind == sqlroute.KindCommit, flushOnly)
	case u.multi != nil:
		return s.runFanout(ctx, sdb, &u, flushOnly)
	}
	k := u.shard
	switch {
	case k >= 0:
	case u.execs == 0:
		k = s.describeShard(sdb)
	default:
		k = s.anyShard(sdb, u.write || class.write)
	}
	return s.runOnShard(ctx, sdb, k, class, flushOnly)
}

// describeShard picks the shard for a unit that runs no statement (Parse,
// Describe: a driver preparing a statement), which any shard answers
// alike: an attached one, else the next in turn whose primary looks
// usable, so preparing does not wait for one shard's failover.
func (s *session) describeShard(sdb *shardedDB) int {
	if m := s.sh.mask; m != 0 {
		return bits.TrailingZeros64(m)
	}
	n := len(sdb.shards)
	start := int(sdb.rr.Add(1) % uint32(n))
	for i := range n {
		if k := (start + i) % n; sdb.shards[k].primary.usable() {
			return k
		}
	}
	return start
}

// anyShard picks the shard for a unit any shard can run: one already
// attached, else shard 0 for writes (so they land in one place) and the
// next in turn for reads.
func (s *session) anyShard(sdb *shardedDB, write bool) int {
	if m := s.sh.mask; m != 0 {
		return bits.TrailingZeros64(m)
	}
	if write {
		return 0
	}
	return int(sdb.rr.Add(1) % uint32(len(sdb.shards)))
}

// runOnShard runs the batch on shard k.
func (s *session) runOnShard(ctx context.Context, sdb *shardedDB, k int, class stmtClass, flushOnly bool) error {
	sh := s.sh
	cl := sdb.shards[k]
	inTx := sh.txOpen || sh.mask != 0
	if class.write && inTx && sh.wrote&^(1<<uint(k)) != 0 && !sdb.cfg.TwoPhaseCommit {
		sdb.stats.refused.Add(1)
		return s.shardFail(fmt.Errorf("%w: it already wrote to shard %s and now writes to shard %s", errMultiShardTx,
			sdb.shardName(bits.TrailingZeros64(sh.wrote)), sdb.shardName(k)), flushOnly)
	}
	cl.stats.shardStatements.Add(1)
	s.minLSN = sh.minLSN[k]
	defer func() { sh.minLSN[k] = max(sh.minLSN[k], s.minLSN) }()
	start := time.Now()
	// On an error the session ends; close releases what is attached.
	switch {
	case sh.conns[k] != nil:
		s.useShardConn(k, cl)
		s.state.Store(stateActive)
		if err := s.exchange(s.server); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
	case inTx:
		if err := s.attachShardTx(ctx, sdb, k); err != nil {
			return s.shardFail(err, flushOnly)
		}
		s.state.Store(stateActive)
		if err := s.exchange(s.server); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
	default:
		err := s.runFresh(ctx, cl, class, flushOnly)
		if s.server != nil {
			sh.conns[k], sh.nodes[k] = s.server, s.srvNode
			sh.mask |= 1 << uint(k)
			sh.cur = k
		}
		if err != nil || s.server == nil {
			return err // nil: failed before reaching a server, reported
		}
	}
	s.observe(class, start)
	s.afterShardUnit(sdb, k, class, flushOnly)
	return nil
}

// useShardConn makes the connection attached for shard k the current one.
func (s *session) useShardConn(k int, cl *cluster) {
	sh := s.sh
	s.server, s.srvNode, s.cl = sh.conns[k], sh.nodes[k], cl
	s.active.Store(s.server)
	sh.cur = k
}

// attachShardTx checks out a connection on shard k for the open
// transaction and starts the transaction there.
func (s *session) attachShardTx(ctx context.Context, sdb *shardedDB, k int) error {
	sh := s.sh
	rt := s.rt()
	cl := sdb.shards[k]
	n, err := s.srv.primaryFor(cl)
	if err != nil {
		return err
	}
	if sh.readOnly && rt.cfg.Routing.split() {
		if r, res := cl.pickReplica(sh.minLSN[k], nil); r != nil {
			res.Done(nil, 0)
			n = r
		}
	}
	if !n.usable() {
		return fmt.Errorf("%w: shard %s: %s is down", ErrNoNode, sdb.shardName(k), n.addr)
	}
	s.state.Store(stateWaiting)
	sc, err := s.checkout(ctx, rt, n)
	if err != nil {
		return err
	}
	begin := sh.beginSQL
	if begin == "" {
		begin = "BEGIN"
	}
	if _, err := sc.exec(begin, rt.cfg.Pool.ConnectTimeout); err != nil {
		sc.broken = sc.broken || !isServerResponse(err)
		sc.client.Store(0)
		sc.pool.release(sc)
		return err
	}
	// The transaction's savepoints, so that ROLLBACK TO undoes this
	// shard's part too.
	for _, sp := range sh.savepoints {
		if _, err := sc.exec(sp.sql, rt.cfg.Pool.ConnectTimeout); err != nil {
			_, _ = sc.exec("ROLLBACK", rt.cfg.Pool.ConnectTimeout)
			sc.client.Store(0)
			sc.pool.release(sc)
			return err
		}
	}
	sh.conns[k], sh.nodes[k] = sc, n
	sh.mask |= 1 << uint(k)
	s.attach(sc, n)
	s.cl = cl
	sh.cur = k
	return nil
}

func isServerResponse(err error) bool {
	var re *errServerResponse
	return errors.As(err, &re)
}

// afterShardUnit updates the session once a unit's answers are relayed
// from shard k: pooling flags, the transaction, releasing connections.
func (s *session) afterShardUnit(sdb *shardedDB, k int, class stmtClass, flushOnly bool) {
	sh := s.sh
	sc := s.server
	if class.clearsPrepared {
		clear(sc.prepared)
		sc.unnamedTag = 0
	}
	if class.session {
		sc.dirty = true
	}
	if class.pin {
		s.pinned = true
	}
	if class.listen {
		s.listening = true
	}
	if class.write {
		sh.wrote |= 1 << uint(k)
		if sh.nodes[k] != nil && sh.nodes[k].role == rolePrimary {
			sh.txW |= 1 << uint(k)
		}
	}
	if flushOnly || s.skip || sc.needSync {
		sh.midBatch, sh.cur = true, k
		return
	}
	sh.midBatch = false
	if sc.txStatus != 'I' && !sh.txOpen {
		sh.txOpen = true // the unit opened a transaction itself
	}
	if sh.txOpen && sh.allIdle() {
		sh.endTx() // the transaction ended on its only shard
	}
	if !sh.txOpen {
		sh.wrote = 0
		if !s.pinned {
			s.releaseShards()
		}
	}
}

// allIdle reports whether every attached connection is outside a
// transaction.
func (sh *shardSession) allIdle() bool {
	for m := sh.mask; m != 0; m &= m - 1 {
		if sh.conns[bits.TrailingZeros64(m)].txStatus != 'I' {
			return false
		}
	}
	return true
}

// releaseShards returns every attached connection to its pool
// (read-your-writes bookkeeping and reset as for one connection).
func (s *session) releaseShards() {
	sh := s.sh
	rt := s.rt()
	for m := sh.mask; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		s.server, s.srvNode = sh.conns[k], sh.nodes[k]
		s.active.Store(s.server)
		s.minLSN = sh.minLSN[k]
		s.txWrote = sh.txW&(1<<uint(k)) != 0
		if cl := rt.clusters[s.srvNode.db]; cl != nil {
			s.cl = cl
		}
		s.releaseServer()
		sh.minLSN[k] = s.minLSN
		sh.conns[k], sh.nodes[k] = nil, nil
	}
	sh.mask, sh.txW = 0, 0
	s.txWrote = false
}

// closeShards ends the session's connections: open transactions are
// rolled back, session state reset, connections returned.
func (s *session) closeShards() {
	sh := s.sh
	for m := sh.mask; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		s.server, s.srvNode = sh.conns[k], sh.nodes[k]
		s.active.Store(s.server)
		s.sh = nil // close() below acts on s.server alone
		s.close()
		s.sh = sh
		sh.conns[k], sh.nodes[k] = nil, nil
	}
	sh.mask = 0
}

// shardFail reports err for the unit without running it; in an open
// transaction the transaction is failed, as a server error would.
func (s *session) shardFail(err error, flushOnly bool) error {
	err = shardError(err)
	s.srv.metrics.error(clientError(err).Code)
	if s.sh.txOpen || s.sh.mask != 0 {
		s.sh.failed = true
	}
	s.send(asQueryError(err))
	if flushOnly {
		s.skip = true
	} else {
		s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
	}
	return s.flush()
}

// answerLocal answers a batch the proxy runs itself (BEGIN, or COMMIT/
// ROLLBACK across shards) as a server would, tagging its statement tag.
func (s *session) answerLocal(tag string, flushOnly bool) error {
	for _, it := range s.batch.items {
		switch it.kind {
		case 'P':
			s.send(synthParseComplete)
		case 'B':
			s.send(&pgproto3.BindComplete{})
		case 'D':
			if s.batch.buf[it.start+5] == 'S' {
				s.send(&pgproto3.ParameterDescription{})
			}
			s.send(&pgproto3.NoData{})
		case 'E':
			s.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		case 'C':
			s.send(synthCloseComplete)
		case 'S':
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		case 'Q':
			s.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		}
	}
	if flushOnly {
		// The Sync comes later; the proxy has nothing pending for it.
		s.sh.midBatch = false
	}
	return s.flush()
}

// endShardTx ends a transaction that is on no shard or on several: the
// proxy commits (two-phase when several shards were written) or rolls
// back each shard and answers the client.
func (s *session) endShardTx(ctx context.Context, sdb *shardedDB, commit bool, flushOnly bool) error {
	sh := s.sh
	rt := s.rt()
	timeout := rt.cfg.Pool.ConnectTimeout
	for m := sh.mask; m != 0; m &= m - 1 {
		if sh.conns[bits.TrailingZeros64(m)].txStatus == 'E' {
			commit = false
		}
	}
	if sh.failed {
		commit = false
	}
	tag := "ROLLBACK"
	var err error
	switch {
	case commit && bits.OnesCount64(sh.wrote&sh.mask) > 1:
		err = s.commitTwoPhase(ctx, sdb)
		tag = "COMMIT"
	case commit:
		// Read-only shards first, the one written last, so a failure of
		// a read-only commit (there is none to fail) cannot strand it.
		order := make([]int, 0, bits.OnesCount64(sh.mask))
		for m := sh.mask &^ sh.wrote; m != 0; m &= m - 1 {
			order = append(order, bits.TrailingZeros64(m))
		}
		for m := sh.mask & sh.wrote; m != 0; m &= m - 1 {
			order = append(order, bits.TrailingZeros64(m))
		}
		for _, k := range order {
			sc := sh.conns[k]
			if err != nil {
				_, _ = sc.exec("ROLLBACK", timeout)
				continue
			}
			if _, e := sc.exec("COMMIT", timeout); e != nil {
				err = fmt.Errorf("shard %s: %w", sdb.shardName(k), e)
			}
		}
		tag = "COMMIT"
	default:
		for m := sh.mask; m != 0; m &= m - 1 {
			k := bits.TrailingZeros64(m)
			if _, e := sh.conns[k].exec("ROLLBACK", timeout); e != nil && err == nil {
				err = fmt.Errorf("shard %s: %w", sdb.shardName(k), e)
			}
		}
	}
	for m := sh.mask; m != 0; m &= m - 1 {
		if sc := sh.conns[bits.TrailingZeros64(m)]; sc.txStatus != 'I' {
			sc.broken = true
		}
	}
	sh.endTx()
	if !s.pinned {
		s.releaseShards()
	}
	if err != nil {
		s.srv.metrics.error(clientError(err).Code)
		s.send(asQueryError(err))
		if flushOnly {
			s.skip = true
		} else {
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		}
		return s.flush()
	}
	return s.answerLocal(tag, flushOnly)
}

// bindParams reads a Bind message body's parameter format codes and
// values (aliasing body) into the given slices, without decoding the rest.
func bindParams(body []byte, params [][]byte, formats []int16) ([][]byte, []int16, error) {
	bad := fmt.Errorf("%w: malformed Bind", errProtocol)
	for i := 0; i < 2; i++ { // portal and statement names
		j := bytes.IndexByte(body, 0)
		if j < 0 {
			return nil, nil, bad
		}
		body = body[j+1:]
	}
	if len(body) < 2 {
		return nil, nil, bad
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	if len(body) < 2*n+2 {
		return nil, nil, bad
	}
	for i := 0; i < n; i++ {
		formats = append(formats, int16(binary.BigEndian.Uint16(body[2*i:])))
	}
	body = body[2*n:]
	n = int(binary.BigEndian.Uint16(body))
	body = body[2:]
	for i := 0; i < n; i++ {
		if len(body) < 4 {
			return nil, nil, bad
		}
		l := int(int32(binary.BigEndian.Uint32(body)))
		body = body[4:]
		if l < 0 {
			params = append(params, nil)
			continue
		}
		if len(body) < l {
			return nil, nil, bad
		}
		params = append(params, body[:l:l])
		body = body[l:]
	}
	return params, formats, nil
}

// savepoint is a SAVEPOINT of a transaction on a sharded database.
type savepoint struct {
	name string
	sql  string
}

// shardSavepoint runs SAVEPOINT, RELEASE or ROLLBACK TO on every shard the
// transaction is on and remembers the savepoints, which a shard the
// transaction reaches later gets right after its BEGIN.
func (s *session) shardSavepoint(sdb *shardedDB, u *unitRoute, flushOnly bool) error {
	sh := s.sh
	timeout := s.rt().cfg.Pool.ConnectTimeout
	name := savepointName(u.sql)
	var err error
	for m := sh.mask; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		if _, e := sh.conns[k].exec(u.sql, timeout); e != nil && err == nil {
			err = e
			if !isServerResponse(e) {
				return &serverError{node: sh.conns[k].pool.node.addr, err: e}
			}
		}
	}
	if err != nil {
		s.srv.metrics.error(clientError(err).Code)
		s.send(asQueryError(err))
		if flushOnly {
			s.skip = true
		} else {
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		}
		return s.flush()
	}
	last := -1
	for i, sp := range sh.savepoints {
		if sp.name == name {
			last = i
		}
	}
	tag := "SAVEPOINT"
	switch u.kind {
	case sqlroute.KindSavepoint:
		sh.savepoints = append(sh.savepoints, savepoint{name: name, sql: u.sql})
	case sqlroute.KindRelease:
		tag = "RELEASE"
		if last >= 0 {
			sh.savepoints = sh.savepoints[:last]
		}
	case sqlroute.KindRollbackTo:
		tag = "ROLLBACK"
		if last >= 0 {
			sh.savepoints = sh.savepoints[:last+1]
		}
		sh.failed = false
	}
	return s.answerLocal(tag, flushOnly)
}

// savepointName returns the savepoint a SAVEPOINT, RELEASE or ROLLBACK TO
// statement names, as the server folds it.
func savepointName(sql string) string {
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(sql), "; \t\r\n"))
	if len(f) == 0 {
		return ""
	}
	n := f[len(f)-1]
	if len(n) >= 2 && n[0] == '"' && n[len(n)-1] == '"' {
		return strings.ReplaceAll(n[1:len(n)-1], `""`, `"`)
	}
	return strings.ToLower(n)
}
