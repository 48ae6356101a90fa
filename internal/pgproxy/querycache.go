package pgproxy

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tiergate/tiergate/internal/querycache"
	"github.com/tiergate/tiergate/router/sqlroute"
)

// The read-through query cache, seen from a session: a unit that is one
// read-only statement outside a transaction is looked up by (database,
// user, settings, statement, parameters, protocol shape); a hit is answered
// without a server; a miss runs as usual while the bytes relayed to the
// client are captured and stored. Writes collect the tables they change
// and invalidate them (here and, through the broadcaster, on the peers)
// when their transaction ends, before the client sees the ReadyForQuery.

// cacheUnit is the unit being answered or captured.
type cacheUnit struct {
	db     *querycache.DB
	hash   uint64
	ttl    time.Duration
	parse  bool               // extended: the unit starts with a Parse (answer ParseComplete)
	bind   bool               // extended: answer BindComplete before the rows
	active bool               // capturing this unit's output
	flight *querycache.Flight // this unit runs a miss others wait for
	mark   int                // start of the unit's output still in s.out
	buf    []byte
	tooBig bool
}

// Wire bytes of the fixed-size answers a hit sends itself.
var (
	wireParseComplete = []byte{'1', 0, 0, 0, 4}
	wireBindComplete  = []byte{'2', 0, 0, 0, 4}
	wireReadyIdle     = []byte{'Z', 0, 0, 0, 5, 'I'}
)

// cacheLookup answers the batch from the cache when it can. On a miss of a
// cacheable unit it arms the capture (finished by cacheStore). It reports
// whether the unit was answered.
func (s *session) cacheLookup(rt *runtime) (bool, error) {
	s.cu.active = false
	qc := s.srv.qcache.Load()
	if qc == nil || s.sessionMode || s.pinned || s.server != nil || s.route == routePrimary {
		return false, nil
	}
	if s.sh != nil && (!s.sh.idle() || s.sh.shardHint() != "" || s.sh.keyHint() != "") {
		return false, nil
	}
	pol := rt.cachePolicies[s.dbName]
	if pol == nil {
		return false, nil
	}
	class, sql, ok := s.cacheShape()
	if !ok || !class.cacheable || (class.hint && !class.replica) {
		// A /* tiergate: primary */ read wants the freshest data.
		return false, nil
	}
	q := querycache.Query{Tables: class.tablesRead, Digest: class.digest, UserFunction: class.userFunc,
		Hint: class.cacheHint, NoCache: class.noCache}
	if q.Hint {
		q.HintTTL, _ = sqlroute.CacheHintTTL(sql)
	}
	ttl, ok := pol.TTL(q)
	if !ok {
		return false, nil
	}
	s.buildCacheKey()
	db := qc.DB(s.dbName)
	cu := &s.cu
	cu.db, cu.hash, cu.ttl = db, s.ckey.Hash(), ttl
	if body, hit := db.Get(cu.hash, s.ckey.Raw()); hit {
		return true, s.answerCached(body)
	}
	if wait := qc.Config().Coalesce(); wait > 0 {
		// Another session may be running this very query: wait for its
		// result rather than run it again.
		f, leader := db.Join(cu.hash)
		if leader {
			cu.flight = f
		} else {
			t := time.NewTimer(wait)
			select {
			case <-f.Done():
			case <-t.C:
			}
			t.Stop()
			if body, hit := db.Get(cu.hash, s.ckey.Raw()); hit {
				db.CountCoalesced()
				return true, s.answerCached(body)
			}
		}
	}
	db.Begin(&s.cticket, class.tablesRead)
	cu.active, cu.mark, cu.buf, cu.tooBig = true, len(s.out), cu.buf[:0], false
	return false, nil
}

// answerCached answers the unit with a cached body.
func (s *session) answerCached(body []byte) error {
	if s.cu.parse {
		s.out = append(s.out, wireParseComplete...)
	}
	if s.cu.bind {
		s.out = append(s.out, wireBindComplete...)
	}
	s.out = append(s.out, body...)
	s.out = append(s.out, wireReadyIdle...)
	return s.flush()
}

// finishFlight wakes the sessions waiting for this unit's result (after
// it was stored, or not).
func (s *session) finishFlight() {
	if f := s.cu.flight; f != nil {
		s.cu.flight = nil
		s.cu.db.Finish(s.cu.hash, f)
	}
}

// cacheShape recognises a cacheable unit: one simple Query, or an
// extended Parse? Bind Describe(portal)? Execute Sync on the unnamed
// portal fetching all rows. It returns the statement's class and text and
// records the shape in s.cu; the key material goes to s.ckey.
func (s *session) cacheShape() (stmtClass, string, bool) {
	b := &s.batch
	items := b.items
	s.ckey.Reset()
	cu := &s.cu
	cu.parse, cu.bind = false, false
	if len(items) == 1 && items[0].kind == 'Q' {
		if b.execs != 1 {
			return stmtClass{}, "", false
		}
		s.ckey.Byte('Q')
		s.ckey.String(items[0].sql)
		return b.first, items[0].sql, true
	}
	i := 0
	var parsed *preparedStmt
	if i < len(items) && items[i].kind == 'P' {
		parsed = items[i].stmt
		cu.parse = true
		i++
	}
	if i >= len(items) || items[i].kind != 'B' {
		return stmtClass{}, "", false
	}
	bi := items[i]
	bind := b.buf[bi.start:bi.end]
	if len(bind) < 7 || bind[5] != 0 { // a named portal
		return stmtClass{}, "", false
	}
	st := bi.stmt
	if st == nil && bi.unnamed {
		st = bi.un
	}
	if st == nil || (parsed != nil && parsed != st) {
		return stmtClass{}, "", false
	}
	cu.bind = true
	i++
	describe := false
	if i < len(items) && items[i].kind == 'D' {
		d := b.buf[items[i].start:items[i].end]
		if len(d) != 7 || d[5] != 'P' || d[6] != 0 {
			return stmtClass{}, "", false
		}
		describe = true
		i++
	}
	if i+2 != len(items) || items[i].kind != 'E' || items[i+1].kind != 'S' {
		return stmtClass{}, "", false
	}
	e := b.buf[items[i].start:items[i].end]
	if len(e) != 10 || e[5] != 0 || binary.BigEndian.Uint32(e[6:]) != 0 {
		return stmtClass{}, "", false
	}
	s.ckey.Byte('X')
	if describe {
		s.ckey.Byte('D')
	}
	if st.proxyName != "" {
		// A named statement's proxy name is the digest of its text and
		// parameter types: it names the statement on every server already.
		s.ckey.String(st.proxyName)
	} else {
		s.ckey.Bytes(st.parse)
	}
	s.ckey.Bytes(bind)
	return st.class, st.query, true
}

// buildCacheKey prefixes the key material with what else a result depends
// on: database, user and the client's settings.
func (s *session) buildCacheKey() {
	s.ckey.String(s.dbName)
	s.ckey.String(s.user)
	s.ckey.Uint64(s.settingsHash())
}

// settingsHash combines the client's parameters (order-independent), but
// application_name, which does not change results.
func (s *session) settingsHash() uint64 {
	var sum uint64
	var d xxhash.Digest
	for k, v := range s.want {
		if k == "application_name" {
			continue
		}
		d.Reset()
		_, _ = d.WriteString(k)
		_, _ = d.WriteString("\x00")
		_, _ = d.WriteString(v)
		sum += d.Sum64()
	}
	return sum
}

// captureOut keeps the unit's output that is about to be flushed.
func (s *session) captureOut() {
	cu := &s.cu
	if !cu.active || cu.tooBig {
		return
	}
	out := s.out[cu.mark:]
	if int64(len(cu.buf)+len(out)) > int64(s.srv.qcacheMaxEntry()) {
		cu.tooBig = true
		cu.buf = cu.buf[:0]
		return
	}
	cu.buf = append(cu.buf, out...)
	cu.mark = 0
}

// cacheStore stores the captured answer of a successful unit.
func (s *session) cacheStore() {
	cu := &s.cu
	if !cu.active {
		return
	}
	cu.active = false
	if len(s.out) > cu.mark {
		s.captureOut()
	}
	if cu.tooBig {
		cu.db.Put(&s.cticket, cu.hash, s.ckey.Raw(), nil, 0) // counted as skipped
	} else if body, ok := cachedBody(cu.buf, cu.parse, cu.bind); ok {
		cu.db.Put(&s.cticket, cu.hash, s.ckey.Raw(), body, cu.ttl)
	}
	if cap(cu.buf) > 256<<10 {
		cu.buf = nil
	}
}

// cachedBody finds the storable part of a unit's answer: after the
// expected ParseComplete/BindComplete, RowDescription? DataRow*
// CommandComplete, followed only by ReadyForQuery 'I'. Anything else
// (errors, notices, parameter changes, an open transaction) is not cached.
func cachedBody(out []byte, parse, bind bool) ([]byte, bool) {
	i := 0
	next := func() (byte, int, bool) { // type and end of the message at i
		if len(out)-i < 5 {
			return 0, 0, false
		}
		n := int(binary.BigEndian.Uint32(out[i+1:]))
		if n < 4 || len(out)-i-1 < n {
			return 0, 0, false
		}
		return out[i], i + 1 + n, true
	}
	for _, want := range [...]struct {
		on  bool
		typ byte
	}{{parse, '1'}, {bind, '2'}} {
		if !want.on {
			continue
		}
		t, end, ok := next()
		if !ok || t != want.typ {
			return nil, false
		}
		i = end
	}
	start := i
	for {
		t, end, ok := next()
		if !ok {
			return nil, false
		}
		switch t {
		case 'T', 'D':
			i = end
			continue
		case 'C':
			body := out[start:end]
			i = end
			t, end, ok := next()
			if !ok || t != 'Z' || end != len(out) || out[end-1] != 'I' {
				return nil, false
			}
			return body, true
		}
		return nil, false
	}
}

// noteWrites records the tables the batch about to run writes; they are
// invalidated when its transaction ends.
func (s *session) noteWrites() {
	b := &s.batch
	if len(b.written) == 0 && !b.invalAll {
		return
	}
	if s.srv.qcache.Load() == nil {
		return
	}
	s.invTables = append(s.invTables, b.written...)
	s.invAll = s.invAll || b.invalAll
	if len(s.invTables) > 256 {
		s.invAll = true
		s.invTables = s.invTables[:0]
	}
}

// invalidateIfIdle invalidates the noted tables when the output about to
// reach the client ends a transaction (ReadyForQuery 'I'), so no client
// can see a commit and then an older cached result.
func (s *session) invalidateIfIdle() {
	n := len(s.out)
	if n >= 6 && s.out[n-6] == 'Z' && s.out[n-1] == 'I' {
		s.invalidateNoted()
	}
}

// invalidateNoted invalidates the noted tables here and on the peers.
func (s *session) invalidateNoted() {
	if len(s.invTables) == 0 && !s.invAll {
		return
	}
	qc := s.srv.qcache.Load()
	if qc != nil {
		db := qc.DB(s.dbName)
		if s.invAll {
			db.InvalidateAll()
		} else {
			db.Invalidate(s.invTables)
		}
		if bc := s.srv.qbroadcast.Load(); bc != nil {
			bc.Publish(s.dbName, s.invTables, s.invAll)
		}
	}
	s.invTables = s.invTables[:0]
	s.invAll = false
}
