package pgproxy

import (
	"errors"
	"net"
	"time"
)

// clientCheckInterval is how long a session waits on a server before it
// checks whether its client is still connected (like PostgreSQL's
// client_connection_check_interval).
const clientCheckInterval = time.Second

// clientConn is the client socket as the session reads it: alive can check
// for a closed connection while the session waits on a server, keeping any
// bytes it read for the next Read.
type clientConn struct {
	net.Conn
	peeked []byte
}

func (c *clientConn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// alive reports whether the client connection is still open, waiting at
// most a millisecond.
func (c *clientConn) alive() bool {
	if len(c.peeked) > 1<<20 {
		return true // the client is busy sending; plenty buffered already
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [4096]byte
	n, err := c.Conn.Read(b[:])
	_ = c.Conn.SetReadDeadline(time.Time{})
	c.peeked = append(c.peeked, b[:n]...)
	if err == nil {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
