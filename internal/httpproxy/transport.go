package httpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// maxBufferedResponse is the largest response body (with a known length)
// read into memory; larger, chunked or unknown-length bodies are streamed.
// Buffering small bodies frees the backend connection at once and costs no
// allocation, where a stream costs a few per response.
const maxBufferedResponse = 64 << 10

// ErrStaleConn means a pooled keep-alive connection turned out closed
// before any response byte arrived: the backend most likely never processed
// the request.
var ErrStaleConn = errors.New("backend closed a keep-alive connection before responding")

// errSent wraps failures after (part of) the request was written, so the
// caller knows a non-idempotent request must not be retried.
type sentError struct{ err error }

func (e *sentError) Error() string { return e.err.Error() }
func (e *sentError) Unwrap() error { return e.err }

// roundTrip sends req over a pooled connection of be and reads the response
// head into resp. A small body is buffered and the connection released at
// once (nil conn); otherwise resp.BodyStream reads the body from the
// connection, and the caller must call conn.finish after closing it. The
// HostClient serves only as a connection pool, so the engine controls the
// timeouts and knows exactly whether the request was sent.
func roundTrip(be *backend, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (*heldConn, error) {
	hc := be.client
	var wait time.Duration
	if !deadline.IsZero() {
		wait = time.Until(deadline)
		if wait <= 0 {
			return nil, fasthttp.ErrTimeout
		}
	}
	cc, err := hc.AcquireConn(wait, false)
	if err != nil {
		return nil, err // DialError, ErrNoFreeConns or a timeout: nothing sent
	}
	conn := cc.Conn()
	ic, _ := conn.(*idleConn)
	reused := ic != nil && ic.uses > 0
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)

	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		if reused && !req.IsBodyStream() {
			return nil, fmt.Errorf("%w: %v", ErrStaleConn, err)
		}
		return nil, &sentError{err}
	}

	br := hc.AcquireReader(conn)
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	if err := readResponseHead(br, resp); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		if reused && isEOF(err) && !req.IsBodyStream() {
			return nil, fmt.Errorf("%w: %v", ErrStaleConn, err)
		}
		return nil, &sentError{err}
	}
	keep := !resp.ConnectionClose()
	sc := resp.Header.StatusCode()
	if sc == 204 || sc == 304 || sc < 200 {
		resp.SkipBody = true // these never carry a body, whatever the headers say
	}
	if cl := resp.Header.ContentLength(); resp.SkipBody || (cl >= 0 && cl <= maxBufferedResponse) {
		if !resp.SkipBody {
			if err := resp.ReadBody(br, maxBufferedResponse); err != nil {
				hc.ReleaseReader(br)
				hc.CloseConn(cc)
				return nil, &sentError{err}
			}
		}
		hc.ReleaseReader(br)
		if keep {
			if ic != nil {
				ic.uses++
			}
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
		return nil, nil
	}
	resp.StreamBody = true
	if err := resp.ReadBody(br, 0); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return nil, &sentError{err}
	}
	// Streaming: one closure per large response, amortised over its body.
	return &heldConn{keep: keep, finish: func(reuse bool) {
		hc.ReleaseReader(br)
		if reuse {
			if ic != nil {
				ic.uses++
			}
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
	}}, nil
}

// heldConn is a backend connection still carrying a streamed body.
type heldConn struct {
	keep   bool // the backend allows reuse
	finish func(reuse bool)
}

// readResponseHead reads the response head, skipping 1xx interim responses
// (other than 101, which the tunnel handles).
func readResponseHead(br *bufio.Reader, resp *fasthttp.Response) error {
	for range 8 {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		sc := resp.Header.StatusCode()
		if sc >= 200 || sc == 101 {
			return nil
		}
		resp.Header.Reset()
	}
	return errors.New("too many interim responses")
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, syscall.ECONNRESET)
}
