package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errPoolClosed is returned by acquire after close.
var errPoolClosed = errors.New("connection pool closed")

// pingAfterIdle is how long a connection may sit idle before it is pinged on
// checkout; a server restart or a dbproxy failover breaks idle connections.
const pingAfterIdle = time.Second

// connPool is a small bounded pool of pgx connections. (pgxpool would do, but
// it pulls in a module this repository does not carry; the app needs little:
// a cap, reuse, and dropping broken connections.)
//
// Connections are opened lazily, at most max at a time. A connection goes back
// to the pool only if it is open, idle and outside a transaction; anything else
// is closed, so a broken server never poisons later requests.
type connPool struct {
	cfg   *pgx.ConnConfig
	slots chan struct{} // one token per open connection
	idle  chan idleConn // capacity max, so release never blocks
	done  chan struct{} // closed by close
	once  sync.Once
	now   func() time.Time
}

type idleConn struct {
	conn  *pgx.Conn
	since time.Time
}

// newConnPool parses dsn and returns a pool of at most maxConns connections.
// It does not connect.
func newConnPool(dsn string, maxConns int) (*connPool, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database DSN: %w", err)
	}
	if maxConns < 1 {
		return nil, fmt.Errorf("pool size %d: must be at least 1", maxConns)
	}
	return &connPool{
		cfg:   cfg,
		slots: make(chan struct{}, maxConns),
		idle:  make(chan idleConn, maxConns),
		done:  make(chan struct{}),
		now:   time.Now,
	}, nil
}

// acquire returns an idle connection (pinged first when it has been idle a
// while) or opens a new one, waiting for a free slot until ctx ends.
func (p *connPool) acquire(ctx context.Context) (*pgx.Conn, error) {
	for {
		select {
		case <-p.done:
			return nil, errPoolClosed
		default:
		}
		select {
		case ic := <-p.idle:
			if c, ok := p.revive(ctx, ic); ok {
				return c, nil
			}
			continue
		default:
		}
		select {
		case ic := <-p.idle:
			if c, ok := p.revive(ctx, ic); ok {
				return c, nil
			}
		case p.slots <- struct{}{}:
			c, err := pgx.ConnectConfig(ctx, p.cfg)
			if err != nil {
				<-p.slots
				return nil, err
			}
			return c, nil
		case <-p.done:
			return nil, errPoolClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// revive checks an idle connection before handing it out; a dead one is
// closed and its slot freed.
func (p *connPool) revive(ctx context.Context, ic idleConn) (*pgx.Conn, bool) {
	if p.now().Sub(ic.since) < pingAfterIdle {
		return ic.conn, true
	}
	if err := ic.conn.Ping(ctx); err == nil {
		return ic.conn, true
	}
	p.discard(ic.conn)
	return nil, false
}

// release returns c to the pool, or closes it when it is broken, busy or
// inside a transaction.
func (p *connPool) release(c *pgx.Conn) {
	pc := c.PgConn()
	if c.IsClosed() || pc.IsBusy() || pc.TxStatus() != 'I' {
		p.discard(c)
		return
	}
	select {
	case <-p.done:
		p.discard(c)
	default:
		p.idle <- idleConn{conn: c, since: p.now()}
	}
}

func (p *connPool) discard(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
	<-p.slots
}

// close closes the idle connections and makes acquire fail; connections in
// use are closed when released.
func (p *connPool) close() {
	p.once.Do(func() { close(p.done) })
	for {
		select {
		case ic := <-p.idle:
			p.discard(ic.conn)
		default:
			return
		}
	}
}

// with runs fn on a pooled connection. When fn fails because the connection
// broke before anything reached the server (a stale connection after a
// restart), it runs fn once more on a fresh connection.
func (p *connPool) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		p.release(c)
		if err == nil || attempt > 0 || !pgconn.SafeToRetry(err) || ctx.Err() != nil {
			return err
		}
	}
}
