package pgproxy

import (
	"context"
	"net"
	"runtime/debug"
	"time"

	"github.com/tiergate/tiergate/internal/querycache"
)

// canPark reports whether the session holds nothing but its client
// socket: no server connection or transaction, no pinned state, no
// buffered input, no unfinished batch, plain TCP.
func (s *session) canPark() bool {
	if s.server != nil || s.pinned || s.listening || s.sessionMode || s.pump != nil || s.skip ||
		!s.batch.empty() || len(s.cc.peeked) > 0 || s.rd.buffered() > 0 || s.cu.active {
		return false
	}
	if s.sh != nil && !s.sh.idle() {
		return false
	}
	_, plain := s.conn.(*net.TCPConn)
	return plain
}

// shrinkForPark drops the buffers a parked session does not need; they
// grow again when it resumes.
func (s *session) shrinkForPark() {
	s.rd.release()
	s.out = nil
	s.batch.buf, s.batch.items, s.batch.written = nil, nil, nil
	s.pend = nil
	s.cu.buf = nil
	s.ckey = querycache.Key{}
	s.cticket = querycache.Ticket{}
	s.invTables = nil
}

// parkLoop asks sessions idle for park_idle_clients_after to park, every
// quarter of that time, until ctx ends.
func (srv *Server) parkLoop(ctx context.Context) {
	if srv.parker == nil {
		return
	}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		srv.parker.run(ctx)
	}()
	var freedAt time.Time
	freedCount, lastCount := 0, 0
	for {
		after := srv.rt.Load().cfg.ParkIdleClientsAfter
		tick := max(after/4, 50*time.Millisecond)
		if after <= 0 {
			tick = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		if after > 0 && !srv.draining.Load() {
			srv.sweepIdle(after)
		}
		// When many clients went idle, hand their goroutine stacks back to
		// the OS now rather than at the runtime's leisure (at most every
		// 10s; a forced GC with 10,000 sessions takes milliseconds).
		// Wait until parking has settled (no change since the last tick),
		// so that a wave of clients is freed in one go.
		n := srv.parker.count()
		freedCount = min(freedCount, n)
		if n == lastCount && n-freedCount >= freeAfterParked && time.Since(freedAt) > 10*time.Second {
			debug.FreeOSMemory()
			freedAt, freedCount = time.Now(), n
		}
		lastCount = n
	}
}

// freeAfterParked is how many newly parked clients make parkLoop return
// memory to the OS.
const freeAfterParked = 1000

// sweepIdle asks every client session that ran no unit for at least after
// and is idle to park: it sets parkReq and wakes the session's read.
func (srv *Server) sweepIdle(after time.Duration) {
	now := time.Now()
	srv.forEachSession(func(s *session) {
		if s.dbName == ConsoleDatabase || s.state.Load() != stateIdle || s.parkDenied.Load() {
			return
		}
		if u := s.units.Load(); u != s.sweepUnits || s.sweepAt.IsZero() {
			s.sweepUnits, s.sweepAt = u, now
			return
		}
		if now.Sub(s.sweepAt) < after {
			return
		}
		s.parkReq.Store(true)
		_ = s.conn.SetReadDeadline(now)
	})
}
