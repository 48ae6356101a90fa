package pgproxy

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// syncedParams are the reported parameters every client gets its own value
// of: they are SET on a server connection at checkout when they differ.
var syncedParams = []string{"client_encoding", "DateStyle", "TimeZone", "IntervalStyle", "application_name"}

func isSynced(name string) bool {
	for _, p := range syncedParams {
		if p == name {
			return true
		}
	}
	return false
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// exchange sends the batch to sc (re-preparing statements it lacks) and
// relays the answers until the unit is complete.
func (s *session) exchange(sc *serverConn) error {
	wire := s.buildWire(sc)
	if err := sc.write(wire); err != nil {
		return &serverError{node: sc.pool.node.addr, err: err}
	}
	err := s.relay(sc)
	if errors.Is(err, errClientGone) {
		sc.broken = true
	}
	return err
}

func (s *session) push(p pending) { s.pend = append(s.pend, p) }

// buildWire encodes the batch for one server connection and fills the
// pending queue: named statements the connection already has are answered
// by the proxy; statements it lacks are prepared first (answers swallowed).
func (s *session) buildWire(sc *serverConn) []byte {
	s.pend = s.pend[:0]
	s.head = 0
	b := &s.batch
	// Fast path: nothing to rewrite per server.
	simple := true
	for i := range b.items {
		it := &b.items[i]
		if it.stmt != nil || it.unnamed || it.synth {
			simple = false
			break
		}
	}
	if simple {
		for i := range b.items {
			if k := b.items[i].kind; k == 'Q' {
				sc.unnamedTag = 0 // a simple query drops the unnamed statement
			}
			s.pushFor(b.items[i].kind)
		}
		return b.buf
	}
	w := sc.wbuf[:0]
	for i := range b.items {
		it := &b.items[i]
		raw := b.buf[it.start:it.end]
		switch it.kind {
		case 'P':
			st := it.stmt
			if st != nil && st.proxyName != "" {
				if _, ok := sc.prepared[st.proxyName]; ok {
					s.push(pending{kind: pSynth, synth: synthParseComplete})
					continue
				}
				sc.prepared[st.proxyName] = struct{}{}
				s.push(pending{kind: pParse, stmt: st})
			} else {
				if st != nil {
					sc.unnamedTag = st.tag
				}
				s.push(pending{kind: pParse})
			}
			w = append(w, raw...)
			continue
		case 'B', 'D':
			if st := it.stmt; st != nil {
				if _, ok := sc.prepared[st.proxyName]; !ok {
					w = append(w, st.parse...)
					s.push(pending{kind: pParse, swallow: true, stmt: st})
					sc.prepared[st.proxyName] = struct{}{}
				}
			} else if it.unnamed && it.un != nil && sc.unnamedTag != it.un.tag {
				w = append(w, it.un.parse...)
				s.push(pending{kind: pParse, swallow: true})
				sc.unnamedTag = it.un.tag
			}
		case 'Q':
			sc.unnamedTag = 0 // a simple query drops the unnamed statement
		case 'C':
			if it.synth {
				s.push(pending{kind: pSynth, synth: synthCloseComplete})
				continue
			}
		}
		w = append(w, raw...)
		s.pushFor(it.kind)
	}
	if cap(w) <= 1<<20 {
		sc.wbuf = w[:0] // reused by the next batch (w is written before that)
	}
	return w
}

func (s *session) pushFor(kind byte) {
	switch kind {
	case 'P':
		s.push(pending{kind: pParse})
	case 'B':
		s.push(pending{kind: pBind})
	case 'D':
		s.push(pending{kind: pDescribe})
	case 'E':
		s.push(pending{kind: pExecute})
	case 'C':
		s.push(pending{kind: pClose})
	case 'S':
		s.push(pending{kind: pSync})
	case 'Q', 'F':
		s.push(pending{kind: pQuery})
	}
}

// emitSynth answers the proxy-answered entries at the head of the queue.
func (s *session) emitSynth() {
	for s.head < len(s.pend) && s.pend[s.head].kind == pSynth {
		s.send(s.pend[s.head].synth)
		s.head++
	}
}

// dropUntilSync forgets the answers a failed extended-protocol batch will
// not get (the server skips to the next Sync), and the statements those
// skipped Parses would have created. It reports whether a Sync is pending.
func (s *session) dropUntilSync(sc *serverConn) bool {
	for s.head < len(s.pend) && s.pend[s.head].kind != pSync {
		p := &s.pend[s.head]
		if p.kind == pParse && p.stmt != nil && p.stmt.proxyName != "" {
			delete(sc.prepared, p.stmt.proxyName)
		}
		s.head++
	}
	sc.unnamedTag = 0
	return s.head < len(s.pend)
}

func (s *session) serverErr(sc *serverConn, err error) error {
	sc.broken = true
	return &serverError{node: sc.pool.node.addr, err: err}
}

func unexpected(msg pgproto3.BackendMessage) error {
	return fmt.Errorf("%w: unexpected %T from server", errProtocol, msg)
}

// relay reads server answers and forwards them until every pending entry
// is answered.
func (s *session) relay(sc *serverConn) error {
	// A long wait on the server checks now and then that the client is
	// still there, so a vanished client does not hold a server forever.
	_ = sc.conn.SetReadDeadline(time.Now().Add(clientCheckInterval))
	defer func() { _ = sc.conn.SetReadDeadline(time.Time{}) }()
	for {
		s.emitSynth()
		if s.head >= len(s.pend) {
			return nil
		}
		msg, err := sc.receive()
		if err != nil {
			if isTimeout(err) && !sc.broken {
				if !s.cc.alive() {
					sc.broken = true
					return errClientGone
				}
				_ = sc.conn.SetReadDeadline(time.Now().Add(clientCheckInterval))
				continue
			}
			return s.serverErr(sc, err)
		}
		p := &s.pend[s.head]
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			s.send(m)
		case *pgproto3.CommandComplete:
			if p.kind == pExecute {
				s.head++
			}
			s.send(m)
		case *pgproto3.RowDescription:
			if p.kind == pDescribe {
				s.head++
			}
			s.send(m)
		case *pgproto3.ReadyForQuery:
			if p.kind != pSync && p.kind != pQuery {
				return s.serverErr(sc, unexpected(m))
			}
			s.head++
			sc.txStatus = m.TxStatus
			s.send(m)
		case *pgproto3.ParseComplete:
			if p.kind != pParse {
				return s.serverErr(sc, unexpected(m))
			}
			s.head++
			if !p.swallow {
				s.send(m)
			}
		case *pgproto3.BindComplete:
			if p.kind != pBind {
				return s.serverErr(sc, unexpected(m))
			}
			s.head++
			s.send(m)
		case *pgproto3.CloseComplete:
			if p.kind != pClose {
				return s.serverErr(sc, unexpected(m))
			}
			s.head++
			if !p.swallow {
				s.send(m)
			}
		case *pgproto3.NoData:
			if p.kind == pDescribe {
				s.head++
			}
			s.send(m)
		case *pgproto3.ParameterDescription:
			s.send(m)
		case *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
			if p.kind == pExecute {
				s.head++
			}
			s.send(m)
		case *pgproto3.ErrorResponse:
			s.srv.metrics.error(m.Code)
			if s.cl != nil {
				s.cl.stats.errors.Add(1)
			}
			s.send(m)
			if p.kind != pQuery && !s.dropUntilSync(sc) {
				// No Sync sent yet: the server now discards everything up
				// to the client's next Sync, and so does the session.
				s.skip = true
				sc.needSync = true
			}
		case *pgproto3.ParameterStatus:
			sc.params[m.Name] = m.Value
			if isSynced(m.Name) || s.want[m.Name] != "" {
				s.want[m.Name] = m.Value
				if m.Name == "application_name" {
					v := m.Value
					s.appName.Store(&v)
				}
			}
			s.send(m)
		case *pgproto3.NoticeResponse, *pgproto3.NotificationResponse, *pgproto3.FunctionCallResponse,
			*pgproto3.CopyOutResponse, *pgproto3.CopyData, *pgproto3.CopyDone:
			s.send(m)
		case *pgproto3.CopyInResponse:
			s.send(m)
			if err := s.flush(); err != nil {
				return err
			}
			if p.kind == pExecute {
				// The server ignores a Sync sent during COPY IN; the client
				// sends another after CopyDone.
				for i := s.head + 1; i < len(s.pend); i++ {
					if s.pend[i].kind == pSync {
						s.pend = append(s.pend[:i], s.pend[i+1:]...)
						break
					}
				}
			}
			if err := s.copyIn(sc); err != nil {
				return err
			}
		default:
			return s.serverErr(sc, unexpected(m))
		}
		if len(s.out) > clientFlushSize {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
}

// copyIn forwards the client's COPY data to the server until CopyDone or
// CopyFail.
func (s *session) copyIn(sc *serverConn) error {
	w := sc.wbuf[:0]
	defer func() { sc.wbuf = w[:0] }()
	for {
		msg, err := s.readClient()
		if err != nil {
			sc.broken = true
			return err
		}
		var done bool
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			w, _ = m.Encode(w)
		case *pgproto3.CopyDone, *pgproto3.CopyFail:
			w, _ = m.Encode(w)
			done = true
		case *pgproto3.Sync, *pgproto3.Flush:
			// Ignored by the server during COPY IN; keep them out of it.
		default:
			// Anything else aborts the COPY on the server with an error.
			w, _ = m.Encode(w)
			done = true
		}
		if done || len(w) > 64<<10 {
			if err := sc.write(w); err != nil {
				return s.serverErr(sc, err)
			}
			w = w[:0]
		}
		if done {
			return nil
		}
	}
}

// pump relays what a pinned, idle server connection sends on its own
// (NOTIFY, notices, parameter changes) while the session waits for its
// client.
type pump struct {
	sc   *serverConn
	done chan struct{}
	stop atomic.Bool
	err  error
}

func (s *session) startPump() {
	sc := s.server
	if sc == nil || !s.listening || sc.broken || sc.txStatus != 'I' {
		return
	}
	p := &pump{sc: sc, done: make(chan struct{})}
	s.pump = p
	go func() {
		defer close(p.done)
		defer func() {
			if r := recover(); r != nil {
				p.err = fmt.Errorf("pump panic: %v", r)
			}
		}()
		for {
			msg, err := sc.fe.Receive()
			if err != nil {
				if !p.stop.Load() {
					p.err = err
				}
				return
			}
			switch m := msg.(type) {
			case *pgproto3.NotificationResponse, *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
				if ps, ok := m.(*pgproto3.ParameterStatus); ok {
					sc.params[ps.Name] = ps.Value
				}
				buf, err := m.Encode(nil)
				if err == nil {
					_, _ = s.conn.Write(buf)
				}
			case *pgproto3.ErrorResponse:
				buf, err := m.Encode(nil)
				if err == nil {
					_, _ = s.conn.Write(buf)
				}
				p.err = errors.New("server closed the connection: " + m.Message)
				return
			default:
				p.err = unexpected(m)
				return
			}
		}
	}()
}

// stopPump stops the pump and reports a server failure it saw.
func (s *session) stopPump() error {
	p := s.pump
	if p == nil {
		return nil
	}
	s.pump = nil
	p.stop.Store(true)
	_ = p.sc.conn.SetReadDeadline(time.Now())
	<-p.done
	_ = p.sc.conn.SetReadDeadline(time.Time{})
	if p.err != nil {
		p.sc.broken = true
		return s.serverLost()
	}
	return nil
}
