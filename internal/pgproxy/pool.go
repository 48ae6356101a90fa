package pgproxy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds the server connections of one (database, user, node). Checkout
// and release go through two channels (the idle connections and a
// semaphore of connection slots), so the request path takes no mutex of
// ours; the conns map, touched only when a connection opens or closes,
// exists for the console.
type pool struct {
	node     *node
	user     string // proxy user
	dbName   string // server database
	srvUser  string
	password string
	cfg      PoolConfig
	maxBody  int

	idle  chan *serverConn
	slots chan struct{}

	waiting  atomic.Int32
	active   atomic.Int32
	maxWait  atomic.Int64 // ns, longest wait since the last SHOW POOLS
	nextID   *atomic.Uint64
	closed   atomic.Bool
	onWait   func(time.Duration)
	onDialed func(*serverConn)

	// params are the reported parameters of its first connection.
	params atomic.Pointer[map[string]string]

	mu    sync.Mutex
	conns map[uint64]*serverConn
}

func newPool(n *node, user, dbName, srvUser, password string, cfg PoolConfig, maxBody int, ids *atomic.Uint64) *pool {
	return &pool{
		node: n, user: user, dbName: dbName, srvUser: srvUser, password: password, cfg: cfg, maxBody: maxBody,
		idle: make(chan *serverConn, cfg.Size), slots: make(chan struct{}, cfg.Size),
		nextID: ids, conns: map[uint64]*serverConn{},
	}
}

// sameSettings reports whether p can be kept across a reload to cfg.
func (p *pool) sameSettings(dbName, srvUser, password string, cfg PoolConfig, maxBody int) bool {
	return p.dbName == dbName && p.srvUser == srvUser && p.password == password && p.cfg == cfg && p.maxBody == maxBody
}

// acquire returns an idle connection or dials a new one, waiting at most
// until deadline for a free slot, or until cancel fires (the client sent a
// CancelRequest while queued). A dial error is a *serverError.
func (p *pool) acquire(ctx context.Context, deadline time.Time, cancel <-chan struct{}) (*serverConn, error) {
	for {
		select {
		case sc := <-p.idle:
			if p.usable(sc) {
				return p.lend(sc), nil
			}
			p.discard(sc)
			continue
		default:
		}
		break
	}
	start := time.Now()
	p.waiting.Add(1)
	var timer *time.Timer
	defer func() {
		p.waiting.Add(-1)
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case sc := <-p.idle:
			if !p.usable(sc) {
				p.discard(sc)
				continue
			}
			p.waited(start)
			return p.lend(sc), nil
		case p.slots <- struct{}{}:
			p.waited(start)
			sc, err := p.dial(ctx)
			if err != nil {
				<-p.slots
				return nil, err
			}
			return p.lend(sc), nil
		default:
		}
		if timer == nil {
			d := time.Until(deadline)
			if d <= 0 {
				return nil, ErrPoolTimeout
			}
			timer = time.NewTimer(d)
		}
		select {
		case sc := <-p.idle:
			if !p.usable(sc) {
				p.discard(sc)
				continue
			}
			p.waited(start)
			return p.lend(sc), nil
		case p.slots <- struct{}{}:
			p.waited(start)
			sc, err := p.dial(ctx)
			if err != nil {
				<-p.slots
				return nil, err
			}
			return p.lend(sc), nil
		case <-timer.C:
			return nil, ErrPoolTimeout
		case <-cancel:
			return nil, ErrCanceled
		case <-ctx.Done():
			return nil, ErrShutdown
		}
	}
}

func (p *pool) waited(start time.Time) {
	d := time.Since(start)
	for {
		cur := p.maxWait.Load()
		if int64(d) <= cur || p.maxWait.CompareAndSwap(cur, int64(d)) {
			break
		}
	}
	if p.onWait != nil {
		p.onWait(d)
	}
}

func (p *pool) lend(sc *serverConn) *serverConn {
	p.active.Add(1)
	return sc
}

// usable reports whether an idle connection may be lent out.
func (p *pool) usable(sc *serverConn) bool {
	if sc.broken || p.closed.Load() {
		return false
	}
	if p.cfg.ServerLifetime > 0 && time.Since(sc.created) > p.cfg.ServerLifetime {
		return false
	}
	return true
}

func (p *pool) dial(ctx context.Context) (*serverConn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	sc, err := dialServer(dctx, p.node.addr, p.dbName, p.srvUser, p.password, p.maxBody, nil)
	if err != nil {
		return nil, &serverError{node: p.node.addr, err: err}
	}
	sc.pool = p
	sc.id = p.nextID.Add(1)
	sc.lastUsed.Store(time.Now().UnixNano())
	p.mu.Lock()
	p.conns[sc.id] = sc
	p.mu.Unlock()
	if p.params.Load() == nil {
		m := make(map[string]string, len(sc.params))
		for k, v := range sc.params {
			m[k] = v
		}
		p.params.CompareAndSwap(nil, &m)
	}
	if p.onDialed != nil {
		p.onDialed(sc)
	}
	return sc, nil
}

// release returns a lent connection; broken, expired or orphaned ones are
// closed.
func (p *pool) release(sc *serverConn) {
	p.active.Add(-1)
	sc.client.Store(0)
	sc.lastUsed.Store(time.Now().UnixNano())
	if !p.usable(sc) || sc.txStatus != 'I' {
		p.discard(sc)
		return
	}
	select {
	case p.idle <- sc:
	default: // cannot happen (cap = slots), but never block
		p.discard(sc)
	}
}

// discard closes a connection and frees its slot.
func (p *pool) discard(sc *serverConn) {
	sc.close()
	p.mu.Lock()
	_, ok := p.conns[sc.id]
	delete(p.conns, sc.id)
	p.mu.Unlock()
	if ok {
		<-p.slots
	}
}

// maintain closes idle connections past their lifetime or idle timeout
// (keeping min_idle) and opens connections up to min_idle.
func (p *pool) maintain(ctx context.Context) {
	n := len(p.idle)
	now := time.Now()
	for i := 0; i < n; i++ {
		var sc *serverConn
		select {
		case sc = <-p.idle:
		default:
			i = n
			continue
		}
		idleFor := now.Sub(time.Unix(0, sc.lastUsed.Load()))
		expired := !p.usable(sc) ||
			(p.cfg.ServerIdleTimeout > 0 && idleFor > p.cfg.ServerIdleTimeout && len(p.idle) >= p.cfg.MinIdle)
		if expired {
			p.discard(sc)
			continue
		}
		select {
		case p.idle <- sc:
		default:
			p.discard(sc)
		}
	}
	for !p.closed.Load() && len(p.idle) < p.cfg.MinIdle && p.node.usable() {
		select {
		case p.slots <- struct{}{}:
		default:
			return
		}
		sc, err := p.dial(ctx)
		if err != nil {
			<-p.slots
			return
		}
		select {
		case p.idle <- sc:
		default:
			p.discard(sc)
		}
	}
}

// purgeIdle closes every idle connection (the node failed).
func (p *pool) purgeIdle() {
	for {
		select {
		case sc := <-p.idle:
			p.discard(sc)
		default:
			return
		}
	}
}

// close stops lending and closes idle connections; lent ones are closed
// when they come back.
func (p *pool) close() {
	p.closed.Store(true)
	p.purgeIdle()
}

// stats is a consistent-enough view for the console.
type poolStats struct {
	active, idle, total, waiting int
	maxWait                      time.Duration
}

func (p *pool) stats() poolStats {
	p.mu.Lock()
	total := len(p.conns)
	p.mu.Unlock()
	return poolStats{
		active: int(p.active.Load()), idle: len(p.idle), total: total,
		waiting: int(p.waiting.Load()), maxWait: time.Duration(p.maxWait.Load()),
	}
}

func (p *pool) snapshotConns() []*serverConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*serverConn, 0, len(p.conns))
	for _, sc := range p.conns {
		out = append(out, sc)
	}
	return out
}

func (p *pool) String() string {
	return fmt.Sprintf("%s@%s/%s", p.user, p.node.addr, p.dbName)
}
