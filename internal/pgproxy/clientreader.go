package pgproxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// smallReadSize is the per-client buffer an idle client's next message is
// read into. Most units (a simple query, an extended batch of a few
// messages) fit; bigger input moves to a pooled buffer that goes back to
// the pool once it is drained, so an idle client holds no large buffer.
const smallReadSize = 512

// bigBufSize is the size of the pooled buffers; a message larger than it
// gets a buffer of its own size.
const bigBufSize = 8 << 10

var bigBufs = sync.Pool{New: func() any { b := make([]byte, bigBufSize); return &b }}

// clientReader reads a client's messages after its startup packet (the
// role pgproto3.Backend plays, without a buffer per connection). A message
// is valid until the next receive.
type clientReader struct {
	r        io.Reader
	maxBody  int
	authType uint32

	small      *[smallReadSize]byte // from smallBufs; nil while released (parked)
	big        *[]byte              // pooled, while bytes are buffered in it
	b          []byte               // small[:] or *big (or a one-off buffer for a huge message)
	start, end int                  // unread bytes are b[start:end]
	msgs       *frontendMessages    // from messagePool; nil while released
}

// frontendMessages are the decoded messages a reader hands out, reused
// like pgproto3.Backend's.
type frontendMessages struct {
	query        pgproto3.Query
	parse        pgproto3.Parse
	bind         pgproto3.Bind
	describe     pgproto3.Describe
	execute      pgproto3.Execute
	sync         pgproto3.Sync
	flush        pgproto3.Flush
	close        pgproto3.Close
	terminate    pgproto3.Terminate
	copyData     pgproto3.CopyData
	copyDone     pgproto3.CopyDone
	copyFail     pgproto3.CopyFail
	functionCall pgproto3.FunctionCall
	password     pgproto3.PasswordMessage
	saslInitial  pgproto3.SASLInitialResponse
	saslResponse pgproto3.SASLResponse
}

var (
	smallBufs   = sync.Pool{New: func() any { return new([smallReadSize]byte) }}
	messagePool = sync.Pool{New: func() any { return new(frontendMessages) }}
)

func newClientReader(r io.Reader, maxBody int) *clientReader {
	return &clientReader{r: r, maxBody: maxBody}
}

// release gives the reader's buffers and messages back to their pools; it
// must hold no unread bytes, and the last message is no longer valid. The
// next receive takes them again. A parked session's reader holds nothing.
func (c *clientReader) release() {
	if c.start != c.end {
		return
	}
	c.putBig()
	if c.small != nil {
		smallBufs.Put(c.small)
		c.small = nil
	}
	if c.msgs != nil {
		*c.msgs = frontendMessages{}
		messagePool.Put(c.msgs)
		c.msgs = nil
	}
	c.b, c.start, c.end = nil, 0, 0
}

// setAuthType says how to read the next password ('p') message, as
// pgproto3.Backend.SetAuthType does.
func (c *clientReader) setAuthType(t uint32) error {
	switch t {
	case pgproto3.AuthTypeCleartextPassword, pgproto3.AuthTypeMD5Password, pgproto3.AuthTypeSASL, pgproto3.AuthTypeSASLContinue, pgproto3.AuthTypeSASLFinal, pgproto3.AuthTypeOk:
		c.authType = t
		return nil
	}
	return fmt.Errorf("%w: authentication type %d", errUnsupported, t)
}

// receive returns the next message. I/O errors are returned as they are
// (io.ErrUnexpectedEOF for a message cut short); malformed messages wrap
// errProtocol.
func (c *clientReader) receive() (pgproto3.FrontendMessage, error) {
	if c.small == nil {
		c.small = smallBufs.Get().(*[smallReadSize]byte)
		c.b, c.start, c.end = c.small[:], 0, 0
	}
	if c.msgs == nil {
		c.msgs = messagePool.Get().(*frontendMessages)
	}
	c.releaseIfDrained()
	if err := c.fill(5); err != nil {
		return nil, err
	}
	typ := c.b[c.start]
	n := int(binary.BigEndian.Uint32(c.b[c.start+1:]))
	if n < 4 {
		return nil, fmt.Errorf("%w: invalid message length %d", errProtocol, n)
	}
	if n-4 > c.maxBody {
		return nil, fmt.Errorf("%w: message of %d bytes exceeds max_message_size %d", errProtocol, n-4, c.maxBody)
	}
	if err := c.fill(1 + n); err != nil {
		return nil, err
	}
	body := c.b[c.start+5 : c.start+1+n]
	c.start += 1 + n
	msg, err := c.message(typ)
	if err != nil {
		return nil, err
	}
	if err := msg.Decode(body); err != nil {
		return nil, fmt.Errorf("%w: %v", errProtocol, err)
	}
	return msg, nil
}

func (c *clientReader) message(typ byte) (pgproto3.FrontendMessage, error) {
	m := c.msgs
	switch typ {
	case 'Q':
		return &m.query, nil
	case 'P':
		return &m.parse, nil
	case 'B':
		return &m.bind, nil
	case 'D':
		return &m.describe, nil
	case 'E':
		return &m.execute, nil
	case 'S':
		return &m.sync, nil
	case 'H':
		return &m.flush, nil
	case 'C':
		return &m.close, nil
	case 'X':
		return &m.terminate, nil
	case 'd':
		return &m.copyData, nil
	case 'c':
		return &m.copyDone, nil
	case 'f':
		return &m.copyFail, nil
	case 'F':
		return &m.functionCall, nil
	case 'p':
		switch c.authType {
		case pgproto3.AuthTypeSASL:
			return &m.saslInitial, nil
		case pgproto3.AuthTypeSASLContinue:
			return &m.saslResponse, nil
		case pgproto3.AuthTypeCleartextPassword, pgproto3.AuthTypeMD5Password:
			return &m.password, nil
		}
		return nil, fmt.Errorf("%w: unexpected password message", errProtocol)
	}
	return nil, fmt.Errorf("%w: unknown message type %q", errProtocol, typ)
}

// fill reads until at least n bytes are buffered.
func (c *clientReader) fill(n int) error {
	for c.end-c.start < n {
		if len(c.b)-c.start < n {
			c.makeRoom(n)
		}
		m, err := c.r.Read(c.b[c.end:])
		c.end += m
		if err != nil {
			if c.end-c.start >= n {
				return nil // the error comes again on the next read
			}
			if err == io.EOF && c.end > c.start {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// makeRoom moves the unread bytes to the front of a buffer that holds n.
func (c *clientReader) makeRoom(n int) {
	unread := c.b[c.start:c.end]
	switch {
	case n <= len(c.b):
		copy(c.b, unread)
	default:
		var next []byte
		if n <= bigBufSize && c.big == nil {
			c.big = bigBufs.Get().(*[]byte)
			next = *c.big
		} else {
			next = make([]byte, max(n, 2*len(c.b)))
			c.putBig()
		}
		copy(next, unread)
		c.b = next
	}
	c.start, c.end = 0, len(unread)
}

// buffered is the number of bytes read but not yet consumed.
func (c *clientReader) buffered() int { return c.end - c.start }

// releaseIfDrained gives a pooled or one-off buffer back once every byte
// in it was consumed, so an idle client keeps only its small buffer.
func (c *clientReader) releaseIfDrained() {
	if c.start != c.end || &c.b[0] == &c.small[0] {
		return
	}
	c.putBig()
	c.b, c.start, c.end = c.small[:], 0, 0
}

func (c *clientReader) putBig() {
	if c.big != nil {
		bigBufs.Put(c.big)
		c.big = nil
	}
}
