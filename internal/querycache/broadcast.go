package querycache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// Peer messages. An invalidation message is
//
//	version(1) origin(8) seq(8) ndb(uvarint) { db(str) all(1) ntables(uvarint) { table(str) }* }*
//
// with str = uvarint length + bytes, all = 0 or 1, and each table a
// TableKey (receivers use it as is, without parsing it again). Each batch
// is sent twice (at once and resendDelay later) to survive a lost
// datagram; receivers apply a (origin, seq) once.
const (
	msgVersion  = 1
	resendDelay = 100 * time.Millisecond
	// maxPendingTables: beyond this many distinct tables in one batch a
	// database is invalidated whole instead.
	maxPendingTables = 256
)

// ErrBadMessage: a peer message could not be decoded.
var ErrBadMessage = errors.New("querycache: malformed invalidation message")

// Sender delivers a message to every peer proxy, best effort, without
// blocking for long. *cluster.Node's topic sender implements it.
type Sender interface {
	SendToPeers(payload []byte)
}

// Broadcaster collects this proxy's invalidations and sends them to the
// peers in batches.
type Broadcaster struct {
	c     *Cache
	send  Sender
	delay time.Duration

	mu      sync.Mutex
	pending map[string]*pendingDB
	wake    chan struct{}
}

type pendingDB struct {
	all    bool
	tables map[string]struct{}
}

// NewBroadcaster returns a broadcaster for c's invalidations over s.
func NewBroadcaster(c *Cache, s Sender) *Broadcaster {
	return &Broadcaster{c: c, send: s, delay: c.cfg.BroadcastDelay, pending: map[string]*pendingDB{}, wake: make(chan struct{}, 1)}
}

// Publish queues an invalidation of tables (or of the whole database) for
// the peers. It does not block.
func (b *Broadcaster) Publish(db string, tables []string, all bool) {
	b.mu.Lock()
	p := b.pending[db]
	if p == nil {
		p = &pendingDB{tables: map[string]struct{}{}}
		b.pending[db] = p
	}
	if all {
		p.all = true
	}
	if !p.all {
		for _, t := range tables {
			p.tables[TableKey(t)] = struct{}{}
		}
		if len(p.tables) > maxPendingTables {
			p.all = true
		}
	}
	if p.all {
		clear(p.tables)
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run sends queued invalidations until ctx ends.
func (b *Broadcaster) Run(ctx context.Context) {
	var last []byte
	resend := time.NewTimer(time.Hour)
	resend.Stop()
	defer resend.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-resend.C:
			if last != nil {
				b.send.SendToPeers(last)
				last = nil
			}
		case <-b.wake:
			if b.delay > 0 {
				t := time.NewTimer(b.delay)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			b.mu.Lock()
			batch := b.pending
			b.pending = map[string]*pendingDB{}
			b.mu.Unlock()
			if len(batch) == 0 {
				continue
			}
			if last != nil {
				b.send.SendToPeers(last) // the previous batch's second copy, early
			}
			last = b.c.encode(batch)
			b.send.SendToPeers(last)
			resend.Reset(resendDelay)
		}
	}
}

func (c *Cache) encode(batch map[string]*pendingDB) []byte {
	buf := make([]byte, 0, 64)
	buf = append(buf, msgVersion)
	buf = binary.LittleEndian.AppendUint64(buf, c.origin)
	buf = binary.LittleEndian.AppendUint64(buf, c.seq.Add(1))
	buf = binary.AppendUvarint(buf, uint64(len(batch)))
	for db, p := range batch {
		buf = appendStr(buf, db)
		if p.all {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		buf = binary.AppendUvarint(buf, uint64(len(p.tables)))
		for t := range p.tables {
			buf = appendStr(buf, t)
		}
	}
	return buf
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// ApplyRemote applies a peer's invalidation message. Messages from this
// cache itself and repeats are ignored. Only databases this proxy has
// cached something for (or looked something up in) are touched.
func (c *Cache) ApplyRemote(msg []byte) error {
	m, err := decodeMessage(msg)
	if err != nil || m.version != msgVersion {
		return err // a newer peer's format: ignore rather than misread
	}
	if m.origin == c.origin || !c.seen.first(m.origin, m.seq) {
		return nil
	}
	for _, o := range m.ops {
		d := c.lookupDB(o.db)
		if d == nil {
			continue
		}
		if o.all {
			d.invalidateAll(true)
		} else {
			d.invalidate(o.tables, true) // already table keys
		}
	}
	return nil
}

// message is a decoded invalidation message.
type message struct {
	version     byte
	origin, seq uint64
	ops         []remoteOp
}

// remoteOp is one database's part of a message: all, or table keys.
type remoteOp struct {
	db     string
	all    bool
	tables []string
}

// decodeMessage parses msg. A message of another version is returned with
// only its version set and no error.
func decodeMessage(msg []byte) (message, error) {
	r := reader{b: msg}
	m := message{version: r.byte()}
	if r.err != nil {
		return message{}, ErrBadMessage
	}
	if m.version != msgVersion {
		return m, nil
	}
	m.origin, m.seq = r.u64(), r.u64()
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return message{}, ErrBadMessage
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		o := remoteOp{db: r.str()}
		switch r.byte() {
		case 0:
		case 1:
			o.all = true
		default:
			r.err = ErrBadMessage
		}
		nt := r.uvarint()
		if r.err != nil || nt > uint64(len(r.b)) {
			return message{}, ErrBadMessage
		}
		if nt > 0 {
			o.tables = make([]string, 0, nt)
		}
		for j := uint64(0); j < nt && r.err == nil; j++ {
			o.tables = append(o.tables, r.str())
		}
		m.ops = append(m.ops, o)
	}
	if r.err != nil || len(r.b) != 0 {
		return message{}, ErrBadMessage
	}
	return m, nil
}

// reader decodes a message; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.err = ErrBadMessage
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.err = ErrBadMessage
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrBadMessage
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = ErrBadMessage
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// seenWindows remembers, per origin, which recent sequence numbers were
// applied (a sliding window of 64).
type seenWindows struct {
	mu sync.Mutex
	m  map[uint64]*window
}

type window struct {
	top  uint64
	bits uint64 // bit i: top-i seen
}

// first reports whether (origin, seq) is seen for the first time, and
// records it. Very old numbers (beyond the window) count as seen.
func (s *seenWindows) first(origin, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint64]*window{}
	}
	w := s.m[origin]
	if w == nil {
		if len(s.m) > 1024 {
			clear(s.m) // restarted peers leave old origins behind
		}
		s.m[origin] = &window{top: seq, bits: 1}
		return true
	}
	switch {
	case seq > w.top:
		shift := seq - w.top
		if shift >= 64 {
			w.bits = 0
		} else {
			w.bits <<= shift
		}
		w.bits |= 1
		w.top = seq
		return true
	case w.top-seq >= 64:
		return false
	default:
		bit := uint64(1) << (w.top - seq)
		if w.bits&bit != 0 {
			return false
		}
		w.bits |= bit
		return true
	}
}

func randomOrigin() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
