package pgproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/internal/querycache"
	"github.com/tiergate/tiergate/router/sqlroute"
)

// clientFlushSize is how much relayed output is buffered before it is
// written to the client mid-response.
const clientFlushSize = 32 << 10

// maxBatchBytes bounds the client messages held before a Sync: a bigger
// batch is sent with an injected Flush, so neither side's buffers fill up.
const maxBatchBytes = 256 << 10

// errClientGone: the client connection failed or closed.
var errClientGone = errors.New("client connection lost")

// Session states for the console.
const (
	stateIdle int32 = iota
	stateWaiting
	stateActive
	stateParked // idle, held by the parker without a goroutine
)

// errParked: the session is idle and may be handed to the parker.
var errParked = errors.New("session parked")

// session is one client connection after login. Its goroutine owns every
// field; other goroutines (cancel, console, shutdown) only touch the
// atomics and the client socket's deadline.
type session struct {
	srv         *Server
	log         *zap.Logger
	id          uint64
	conn        net.Conn
	cc          *clientConn   // conn, for reads
	rd          *clientReader // cc's messages
	out         []byte
	wrote       bool // bytes reached the client during the current unit
	secret      []byte
	user        string
	dbName      string
	addr        string
	connectedAt time.Time
	appName     atomic.Pointer[string]

	cl   *cluster
	want map[string]string // the parameters this client believes it has

	server      *serverConn
	srvNode     *node
	active      atomic.Pointer[serverConn] // for CancelRequest
	state       atomic.Int32
	pinned      bool
	listening   bool
	txWrote     bool
	sessionMode bool

	route   routeMode
	stmts   map[string]*preparedStmt
	unnamed *preparedStmt
	batch   batch
	pend    []pending
	head    int
	skip    bool // an error was reported mid-batch: drop messages until Sync

	minLSN   uint64    // read-your-writes floor (lsn mode)
	rywUntil time.Time // read-your-writes window (window mode)
	pump     *pump

	cancelWait chan struct{} // a CancelRequest for a unit still queued for a connection

	ctx  context.Context // the session's lifetime (Serve's background context)
	done func()          // called once when the session has ended

	// Parking idle clients (park_linux.go): the sweeper asks (parkReq and
	// a read deadline), the session agrees when it holds nothing
	// (canPark) or says no until its next unit (parkDenied).
	parkReq    atomic.Bool
	parkDenied atomic.Bool
	units      atomic.Uint64 // units run, for the sweeper
	sweepUnits uint64        // sweeper only: units when last seen
	sweepAt    time.Time     // sweeper only: when units last changed

	pick       balancer.PickResult // the balancer's pick for the attached replica
	attachedAt time.Time

	sh     *shardSession                 // state on a sharded database, nil otherwise
	fanout atomic.Pointer[[]*serverConn] // connections of a running fan-out (for CancelRequest)

	// Query cache (querycache.go).
	cu        cacheUnit         // the unit being answered or captured
	ckey      querycache.Key    // its key
	cticket   querycache.Ticket // the generations it read
	invTables []string          // tables written in the open transaction
	invAll    bool              // ... or unknown tables: the whole database
}

func (s *session) rt() *runtime { return s.srv.rt.Load() }

// classify returns sql's decision and what the session acts on.
func (s *session) classify(sql string) (sqlroute.Decision, stmtClass) {
	d, err := s.rt().classifier.Classify(sql)
	return d, classOf(d, err)
}

// send buffers one message for the client.
func (s *session) send(msg pgproto3.BackendMessage) {
	buf, err := msg.Encode(s.out)
	if err == nil {
		s.out = buf
	}
}

// flush writes buffered output to the client.
func (s *session) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	if s.cu.active {
		s.captureOut()
	}
	if len(s.invTables) > 0 || s.invAll {
		s.invalidateIfIdle()
	}
	_, err := s.conn.Write(s.out)
	if len(s.out) > 64<<10 {
		s.out = make([]byte, 0, 8<<10)
	} else {
		s.out = s.out[:0]
	}
	s.wrote = true
	if err != nil {
		return errClientGone
	}
	return nil
}

// readClient receives the next client message. While the proxy drains for
// shutdown, an idle client (no transaction open) is told so and closed.
func (s *session) readClient() (pgproto3.FrontendMessage, error) {
	for {
		msg, err := s.rd.receive()
		if err == nil {
			return msg, nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && s.parkReq.Swap(false) {
			_ = s.conn.SetReadDeadline(time.Time{})
			if s.canPark() {
				return nil, errParked
			}
			s.parkDenied.Store(true)
			continue
		}
		if errors.As(err, &ne) && ne.Timeout() && s.srv.draining.Load() {
			if s.canStop() {
				return nil, ErrShutdown
			}
			_ = s.conn.SetReadDeadline(time.Time{})
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || isEOF(err) || errors.Is(err, net.ErrClosed) {
			return nil, errClientGone
		}
		var ne2 net.Error
		if errors.As(err, &ne2) {
			return nil, errClientGone
		}
		if errors.Is(err, errProtocol) {
			return nil, err
		}
		return nil, errors.Join(errProtocol, err)
	}
}

// run is the session loop: it returns when the client leaves, breaks the
// protocol, or the proxy shuts down.
func (s *session) run(ctx context.Context) error {
	s.batch.reset()
	for {
		if s.srv.draining.Load() && s.canStop() {
			return ErrShutdown
		}
		s.startPump()
		msg, err := s.readClient()
		if perr := s.stopPump(); perr != nil && err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
		if s.skip {
			if _, ok := msg.(*pgproto3.Sync); ok {
				s.skip = false
				if s.server != nil && s.server.needSync {
					// The server skipped to this Sync too: let it answer.
					s.server.needSync = false
					s.batch.reset()
					err = s.batch.add('S', msg, batchItem{})
					if err == nil {
						err = s.runBatch(ctx, false)
					}
					if err != nil {
						return err
					}
					continue
				}
				s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
				if err := s.flush(); err != nil {
					return err
				}
			}
			continue
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			err = s.handleQuery(ctx, m)
		case *pgproto3.Parse:
			err = s.addParse(m)
		case *pgproto3.Bind:
			err = s.addBind(m)
		case *pgproto3.Describe:
			err = s.addDescribe(m)
		case *pgproto3.Execute:
			err = s.batch.add('E', m, batchItem{})
		case *pgproto3.Close:
			err = s.addClose(m)
		case *pgproto3.Sync:
			if err = s.batch.add('S', m, batchItem{}); err == nil {
				err = s.runBatch(ctx, false)
			}
		case *pgproto3.Flush:
			if err = s.batch.add('H', m, batchItem{}); err == nil {
				err = s.runBatch(ctx, true)
			}
		case *pgproto3.FunctionCall:
			if err = s.batch.add('F', m, batchItem{}); err == nil {
				s.batch.merge(stmtClass{write: true, invalidateAll: true})
				err = s.runBatch(ctx, false)
			}
		case *pgproto3.Terminate:
			return nil
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// Left over from a failed COPY: PostgreSQL ignores them too.
		default:
			return errProtocol
		}
		if err != nil {
			return err
		}
		if len(s.batch.buf) > maxBatchBytes {
			if err := s.batch.add('H', &pgproto3.Flush{}, batchItem{}); err != nil {
				return err
			}
			if err := s.runBatch(ctx, true); err != nil {
				return err
			}
		}
	}
}

// canStop reports whether the session may be closed for shutdown: no
// transaction is open (pinned or session-mode state is given up).
func (s *session) canStop() bool {
	if s.sh != nil {
		return s.sh.idle()
	}
	return s.server == nil || (s.server.txStatus == 'I' && !s.server.needSync)
}

func (s *session) txStatus() byte {
	if s.sh != nil {
		return s.sh.txStatus()
	}
	if s.server != nil {
		return s.server.txStatus
	}
	return 'I'
}

// handleQuery runs a simple query, answering tiergate.* settings itself.
func (s *session) handleQuery(ctx context.Context, q *pgproto3.Query) error {
	d, class := s.classify(q.String)
	if class.proxySet || class.proxyShow {
		if !s.batch.empty() {
			// A Query in the middle of an extended batch: run the batch
			// first (with a Flush), as the server would process it in order.
			if err := s.batch.add('H', &pgproto3.Flush{}, batchItem{}); err != nil {
				return err
			}
			if err := s.runBatch(ctx, true); err != nil {
				return err
			}
		}
		name := d.Setting.Name
		switch {
		case class.proxyErr != nil:
			s.send(errorResponse(sqlstateInvalidParameter, "%v", class.proxyErr))
		case name != sqlroute.SettingRoute && s.sh == nil:
			s.send(errorResponse(sqlstateInvalidParameter, "tiergate.%s applies to sharded databases only; %s is not sharded", name, s.dbName))
		case name != sqlroute.SettingRoute && class.proxyShow:
			s.sendSetting("tiergate."+name, s.sh.setting(name))
		case name != sqlroute.SettingRoute:
			if err := s.sh.set(s, d.Setting); err != nil {
				s.send(errorResponse(sqlstateInvalidParameter, "%v", err))
			} else {
				s.send(&pgproto3.CommandComplete{CommandTag: []byte("SET")})
			}
		case class.proxyShow:
			s.sendSetting("tiergate.route", s.route.String())
		default:
			if !class.local { // SET LOCAL: accepted, no effect (a transaction is pinned anyway)
				s.route = class.route
			}
			s.send(&pgproto3.CommandComplete{CommandTag: []byte("SET")})
		}
		s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus()})
		return s.flush()
	}
	if err := s.batch.add('Q', q, batchItem{sql: q.String}); err != nil {
		return err
	}
	if s.sh != nil {
		s.sh.qdec = d
	}
	s.batch.merge(class)
	return s.runBatch(ctx, false)
}

// sendSetting answers SHOW of a proxy-local setting.
func (s *session) sendSetting(name, value string) {
	s.send(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte(name), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}})
	s.send(&pgproto3.DataRow{Values: [][]byte{[]byte(value)}})
	s.send(&pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
}

func (s *session) addParse(m *pgproto3.Parse) error {
	d, class := s.classify(m.Query)
	s.batch.class.replica = s.batch.class.replica && class.replica
	if m.Name == "" {
		st := &preparedStmt{tag: s.srv.tags.Add(1), class: class, query: m.Query}
		if s.sh != nil {
			st.oids, st.dec = append([]uint32(nil), m.ParameterOIDs...), d
		}
		if err := s.batch.add('P', m, batchItem{}); err != nil {
			return err
		}
		it := &s.batch.items[len(s.batch.items)-1]
		st.parse = append([]byte(nil), s.batch.buf[it.start:it.end]...)
		it.stmt = st
		s.unnamed = st
		return nil
	}
	pn := proxyStmtName(m.Query, m.ParameterOIDs)
	raw, err := (&pgproto3.Parse{Name: pn, Query: m.Query, ParameterOIDs: m.ParameterOIDs}).Encode(nil)
	if err != nil {
		return err
	}
	st := &preparedStmt{proxyName: pn, parse: raw, class: class, query: m.Query}
	if s.sh != nil {
		st.oids, st.dec = append([]uint32(nil), m.ParameterOIDs...), d
	}
	if s.stmts == nil {
		s.stmts = map[string]*preparedStmt{}
	}
	s.stmts[m.Name] = st
	s.batch.addRaw('P', raw, batchItem{stmt: st})
	return nil
}

// lookupStmt resolves a client statement name; unknown names are sent as
// they are and the server reports them.
func (s *session) lookupStmt(name string) (st *preparedStmt, unnamed bool, class stmtClass) {
	if name == "" {
		if s.unnamed != nil {
			return nil, true, s.unnamed.class
		}
		return nil, false, stmtClass{write: true}
	}
	if st = s.stmts[name]; st != nil {
		return st, false, st.class
	}
	return nil, false, stmtClass{write: true}
}

func (s *session) addBind(m *pgproto3.Bind) error {
	st, unnamed, class := s.lookupStmt(m.PreparedStatement)
	if st != nil {
		m.PreparedStatement = st.proxyName
	}
	s.batch.merge(class)
	return s.batch.add('B', m, batchItem{stmt: st, unnamed: unnamed, un: s.unnamed})
}

func (s *session) addDescribe(m *pgproto3.Describe) error {
	if m.ObjectType != 'S' {
		return s.batch.add('D', m, batchItem{})
	}
	st, unnamed, _ := s.lookupStmt(m.Name)
	if st != nil {
		m.Name = st.proxyName
	}
	return s.batch.add('D', m, batchItem{stmt: st, unnamed: unnamed, un: s.unnamed})
}

func (s *session) addClose(m *pgproto3.Close) error {
	if m.ObjectType == 'S' {
		if m.Name == "" {
			s.unnamed = nil
		} else if _, ok := s.stmts[m.Name]; ok {
			// The statement stays prepared on the servers (others may share
			// it); the client just forgets it.
			delete(s.stmts, m.Name)
			s.batch.items = append(s.batch.items, batchItem{kind: 'C', synth: true})
			return nil
		}
	}
	return s.batch.add('C', m, batchItem{})
}

// runBatch routes the collected batch, sends it and relays the answers.
// flushOnly means it ended with Flush, not Sync.
func (s *session) runBatch(ctx context.Context, flushOnly bool) error {
	defer s.batch.reset()
	if s.server != nil && s.server.broken {
		return s.serverLost()
	}
	if s.server == nil && flushOnly && onlySynthOrFlush(s.batch.items) {
		// Nothing for a server to do (e.g. Close of a statement + Flush).
		for _, it := range s.batch.items {
			if it.kind == 'C' {
				s.send(synthCloseComplete)
			}
		}
		return s.flush()
	}
	if s.server == nil && !flushOnly && onlyNamedParses(s.batch.items) {
		// A Parse-only unit outside a transaction (libpq's PQprepare)
		// needs no server: the statement is prepared on whichever
		// connection first runs it (buildWire re-prepares). So a client
		// that prepares while other clients hold every connection is not
		// blocked behind them (pgbench -M prepared multiplexes clients on
		// a thread and would deadlock). A syntax error surfaces at the
		// statement's first Bind instead of here.
		for _, it := range s.batch.items {
			if it.kind == 'P' {
				s.send(synthParseComplete)
			}
		}
		s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		return s.flush()
	}
	select {
	case <-s.cancelWait: // stale: meant for an earlier unit
	default:
	}
	s.units.Add(1)
	if s.parkDenied.Load() {
		s.parkDenied.Store(false) // ask again once idle
	}
	rt := s.rt()
	s.noteWrites()
	if !flushOnly {
		defer s.finishFlight()
		if hit, err := s.cacheLookup(rt); hit || err != nil {
			return err
		}
	}
	err := s.runUnit(ctx, rt, flushOnly)
	if err == nil && s.cu.active {
		s.cacheStore()
	}
	s.cu.active = false
	if s.txStatus() == 'I' {
		if len(s.invTables) > 0 || s.invAll {
			s.invalidateNoted()
		}
		if s.server == nil {
			s.state.Store(stateIdle)
		}
	}
	return err
}

// runUnit sends the batch to a server (or the shards) and relays the
// answers.
func (s *session) runUnit(ctx context.Context, rt *runtime, flushOnly bool) error {
	if s.sh != nil {
		return s.runSharded(ctx, flushOnly)
	}
	class := s.batch.class
	start := time.Now()
	var err error
	if s.server == nil {
		cl := rt.clusters[s.dbName]
		if cl == nil {
			return s.failUnit(errUnknownDatabase, flushOnly)
		}
		err = s.runFresh(ctx, cl, class, flushOnly)
	} else {
		s.state.Store(stateActive)
		err = s.exchange(s.server)
		if err == nil {
			err = s.flush()
		}
	}
	if err != nil {
		return err
	}
	if s.server != nil {
		s.observe(class, start)
		s.afterUnit(class, flushOnly)
	}
	return nil
}

// onlyNamedParses reports a unit of named Parses ended by one Sync.
func onlyNamedParses(items []batchItem) bool {
	if len(items) < 2 || items[len(items)-1].kind != 'S' {
		return false
	}
	for _, it := range items[:len(items)-1] {
		if it.kind != 'P' || it.stmt == nil || it.stmt.proxyName == "" {
			return false
		}
	}
	return true
}

func onlySynthOrFlush(items []batchItem) bool {
	for _, it := range items {
		if !(it.kind == 'H' || (it.kind == 'C' && it.synth)) {
			return false
		}
	}
	return true
}

// runFresh checks a server connection out for a unit, retrying reads on
// another node when the chosen one fails before anything reached the
// client.
func (s *session) runFresh(ctx context.Context, cl *cluster, class stmtClass, flushOnly bool) error {
	rt := s.rt()
	s.cl = cl
	wantReplica := s.wantsReplica(rt, class)
	var exclude map[*node]bool
	retries := rt.cfg.Routing.ReadRetries
	for attempt := 0; ; attempt++ {
		n, err := s.pickNode(rt, cl, wantReplica, exclude)
		if err != nil {
			return s.failUnit(err, flushOnly)
		}
		s.state.Store(stateWaiting)
		sc, err := s.checkout(ctx, rt, n)
		if err != nil {
			s.pick.Done(err, 0)
			s.pick = balancer.PickResult{}
			var se *serverError
			if errors.As(err, &se) {
				n.markDown(err.Error(), rt.cfg.Health.Interval)
				if wantReplica && attempt < retries {
					exclude = addExclude(exclude, n)
					cl.stats.retries.Add(1)
					s.srv.metrics.retry()
					continue
				}
			}
			return s.failUnit(err, flushOnly)
		}
		s.attach(sc, n)
		s.state.Store(stateActive)
		mark := len(s.out)
		s.wrote = false
		err = s.exchange(sc)
		if err == nil {
			return s.flush()
		}
		var se *serverError
		if errors.As(err, &se) {
			// Its idle siblings are likely dead too (server restart).
			if p := n.pool(s.user); p != nil {
				p.purgeIdle()
			}
		}
		if errors.As(err, &se) && !s.wrote && wantReplica && attempt < retries {
			// Nothing of this unit reached the client: try another node.
			s.out = s.out[:mark]
			s.detach(false)
			n.markDown(err.Error(), rt.cfg.Health.Interval)
			exclude = addExclude(exclude, n)
			cl.stats.retries.Add(1)
			s.srv.metrics.retry()
			continue
		}
		return err
	}
}

func addExclude(m map[*node]bool, n *node) map[*node]bool {
	if m == nil {
		m = map[*node]bool{}
	}
	m[n] = true
	return m
}

// wantsReplica decides the role for a unit that starts without a server.
func (s *session) wantsReplica(rt *runtime, c stmtClass) bool {
	if !rt.cfg.Routing.split() || s.sessionMode {
		return false
	}
	if c.hint {
		return c.replica
	}
	switch s.route {
	case routePrimary:
		return false
	case routeReplica:
		return true
	}
	if c.begin {
		return c.readOnly
	}
	return c.replica && !c.pin && !c.session
}

// pickNode chooses the node for a unit.
func (s *session) pickNode(rt *runtime, cl *cluster, wantReplica bool, exclude map[*node]bool) (*node, error) {
	primary, perr := s.srv.primaryFor(cl)
	if !wantReplica {
		if perr != nil {
			return nil, perr
		}
		if exclude[primary] {
			return nil, ErrNoNode
		}
		return primary, nil
	}
	var floor uint64
	forced := s.route == routeReplica
	switch rt.cfg.Routing.ReadYourWrites {
	case RYWLSN:
		floor = s.minLSN
	case RYWWindow:
		if !forced && time.Now().Before(s.rywUntil) && perr == nil {
			cl.stats.rywPrimary.Add(1)
			return primary, nil
		}
	}
	if forced {
		floor = 0
	}
	if r, res := cl.pickReplica(floor, exclude); r != nil {
		s.pick = res
		return r, nil
	}
	if floor > 0 && cl.anyReplicaReadable() {
		cl.stats.rywPrimary.Add(1)
	} else {
		cl.stats.fallbacks.Add(1)
	}
	if !rt.cfg.Routing.fallback() || exclude[primary] {
		return nil, ErrNoNode
	}
	if perr != nil {
		// Reads fall back to the primary only when its fence is open:
		// during a failover it may be the old one.
		return nil, perr
	}
	return primary, nil
}

// checkout borrows a connection from n's pool and syncs its parameters.
func (s *session) checkout(ctx context.Context, rt *runtime, n *node) (*serverConn, error) {
	p := n.pool(s.user)
	if p == nil {
		return nil, ErrNoNode
	}
	deadline := time.Now().Add(rt.cfg.Pool.QueryWaitTimeout)
	if err := s.srv.waitResumed(ctx, deadline, s.cancelWait); err != nil {
		return nil, err
	}
	sc, err := p.acquire(ctx, deadline, s.cancelWait)
	if err != nil {
		if errors.Is(err, ErrPoolTimeout) {
			s.srv.metrics.poolTimeout()
		}
		return nil, err
	}
	sc.client.Store(s.id)
	if err := sc.syncParams(s.want, rt.cfg.Pool.ConnectTimeout); err != nil {
		p.release(sc)
		var re *errServerResponse
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, &serverError{node: n.addr, err: err}
	}
	return sc, nil
}

func (s *session) attach(sc *serverConn, n *node) {
	s.server, s.srvNode = sc, n
	s.attachedAt = time.Now()
	s.active.Store(sc)
}

// detach gives the server connection up: back to the pool when release is
// true and it is healthy, closed otherwise.
func (s *session) detach(release bool) {
	sc := s.server
	if sc == nil {
		return
	}
	s.server, s.srvNode = nil, nil
	s.active.Store(nil)
	var failed error
	if !release || sc.broken {
		failed = ErrServerConn
	}
	s.pick.Done(failed, time.Since(s.attachedAt))
	s.pick = balancer.PickResult{}
	for sc.cancelRefs.Load() > 0 {
		time.Sleep(time.Millisecond) // a cancel for this connection is being delivered
	}
	if !release {
		sc.broken = true
	}
	sc.pool.release(sc)
}

// failUnit reports err for the current unit without a server, keeping the
// protocol in step: after a Sync or Query comes ReadyForQuery; after a
// Flush the rest of the batch up to Sync is skipped.
func (s *session) failUnit(err error, flushOnly bool) error {
	s.srv.metrics.error(clientError(err).Code)
	if s.cl != nil {
		s.cl.stats.errors.Add(1)
	}
	s.send(asQueryError(err))
	if flushOnly {
		s.skip = true
	} else {
		s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	}
	return s.flush()
}

// serverLost tells the client its server connection died and ends the
// session (its transaction and session state are gone).
func (s *session) serverLost() error {
	s.detach(false)
	return &serverError{node: "", err: errors.New("server connection lost")}
}

// afterUnit updates pooling state once a unit's answers are relayed.
func (s *session) afterUnit(class stmtClass, flushOnly bool) {
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
	if class.write && s.srvNode != nil && s.srvNode.role == rolePrimary {
		s.txWrote = true
	}
	if flushOnly || s.skip || sc.needSync || sc.txStatus != 'I' || s.pinned || s.sessionMode {
		return
	}
	s.releaseServer()
}

// releaseServer ends a transaction-mode checkout: read-your-writes
// bookkeeping, reset when the client changed session state, back to the
// pool.
func (s *session) releaseServer() {
	sc, n := s.server, s.srvNode
	rt := s.rt()
	s.state.Store(stateIdle)
	if s.txWrote && !sc.broken {
		s.txWrote = false
		switch rt.cfg.Routing.ReadYourWrites {
		case RYWLSN:
			if len(n.db) > 0 && s.cl != nil && len(s.cl.replicas) > 0 {
				lsn, err := sc.currentLSN(rt.cfg.Pool.ConnectTimeout)
				if err != nil {
					sc.broken = true
				} else if lsn > s.minLSN {
					s.minLSN = lsn
				}
			}
		case RYWWindow:
			s.rywUntil = time.Now().Add(rt.cfg.Routing.RYWWindow)
		}
	}
	if sc.dirty && !sc.broken {
		if err := sc.reset(rt.cfg.Pool.ConnectTimeout); err != nil {
			sc.broken = true
		}
	}
	s.detach(!sc.broken)
}

// observe records per-unit metrics.
func (s *session) observe(class stmtClass, start time.Time) {
	if s.cl == nil || s.srvNode == nil {
		return
	}
	replica := s.srvNode.role == roleReplica
	if replica {
		s.cl.stats.replicaQueries.Add(1)
	} else {
		s.cl.stats.primaryQueries.Add(1)
	}
	s.srv.metrics.query(s.dbName, replica, time.Since(start))
}

// close ends the session: an open transaction is rolled back, session
// state is reset, the server connection goes back to the pool.
func (s *session) close() {
	s.invalidateNoted() // a transaction cut short: harmless, and safe
	if s.sh != nil {
		s.closeShards()
		return
	}
	sc := s.server
	if sc == nil {
		return
	}
	rt := s.rt()
	if sc.needSync {
		sc.broken = true // cheaper to drop than to resynchronise
	}
	if !sc.broken && sc.txStatus != 'I' {
		if _, err := sc.exec("ROLLBACK", rt.cfg.Pool.ConnectTimeout); err != nil || sc.txStatus != 'I' {
			sc.broken = true
		}
	}
	if s.pinned || s.sessionMode {
		sc.dirty = true
	}
	if sc.dirty && !sc.broken {
		if err := sc.reset(rt.cfg.Pool.ConnectTimeout); err != nil {
			sc.broken = true
		}
	}
	s.detach(!sc.broken)
}
