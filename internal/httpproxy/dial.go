package httpproxy

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// DialError is a failure to connect to a backend: nothing was sent, so any
// request may be retried elsewhere.
type DialError struct{ Err error }

func (e *DialError) Error() string { return "dial backend: " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// SafeToRetry reports that the request never reached the backend.
func (e *DialError) SafeToRetry() bool { return true }

// dialer opens backend connections with a connect timeout and wraps them so
// every read carries an inactivity deadline: HostClient only sets one
// deadline per response, which would cut long downloads short (or, left
// unset, let a hung backend hold a request forever).
type dialer struct {
	connectTimeout time.Duration
	idle           atomic.Int64 // read inactivity timeout, ns
}

func newDialer(connect, idle time.Duration) *dialer {
	d := &dialer{connectTimeout: connect}
	d.idle.Store(int64(idle))
	return d
}

// DialTimeout matches fasthttp.DialFuncWithTimeout.
func (d *dialer) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > d.connectTimeout {
		timeout = d.connectTimeout
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, &DialError{Err: err}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &idleConn{Conn: c, idle: &d.idle}, nil
}

// idleConn applies the inactivity timeout on each Read, capped by the
// deadline the client set for the whole response.
type idleConn struct {
	net.Conn
	idle     *atomic.Int64
	deadline time.Time // set by SetReadDeadline/SetDeadline; zero = none
	uses     int       // responses read completely; > 0 means a reused keep-alive connection
}

func (c *idleConn) Read(p []byte) (int, error) {
	if idle := time.Duration(c.idle.Load()); idle > 0 {
		d := time.Now().Add(idle)
		if !c.deadline.IsZero() && c.deadline.Before(d) {
			d = c.deadline
		}
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.deadline = t
	return c.Conn.SetReadDeadline(t)
}

func (c *idleConn) SetDeadline(t time.Time) error {
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

// isTimeout reports a timeout error from the network or the client.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
