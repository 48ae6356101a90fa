package querycache

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTestCache returns a cache on clk (nil: the real clock), closed when
// the test ends.
func newTestCache(tb testing.TB, cfg Config, clk *fakeClock) *Cache {
	tb.Helper()
	var opts Options
	if clk != nil {
		opts.Now = clk.Now
	}
	c, err := New(cfg, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// put runs Begin and Put for one result, as a session does after a miss.
func put(d *DB, hash uint64, key, body string, tables []string, ttl time.Duration) bool {
	var t Ticket
	d.Begin(&t, tables)
	return d.Put(&t, hash, []byte(key), []byte(body), ttl)
}

// get returns the body for (hash, key) as a string.
func get(d *DB, hash uint64, key string) (string, bool) {
	b, ok := d.Get(hash, []byte(key))
	return string(b), ok
}

// fieldPaths returns the field paths of a config validation error.
func fieldPaths(err error) []string {
	var es config.Errors
	if !errors.As(err, &es) {
		var fe *config.FieldError
		if errors.As(err, &fe) {
			return []string{fe.Path}
		}
		return nil
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Path
	}
	return out
}

// encodeMsg builds a peer message from the format documented in
// broadcast.go, independently of Cache.encode.
func encodeMsg(version byte, origin, seq uint64, ops ...remoteOp) []byte {
	b := []byte{version}
	b = binary.LittleEndian.AppendUint64(b, origin)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, o := range ops {
		b = binary.AppendUvarint(b, uint64(len(o.db)))
		b = append(b, o.db...)
		if o.all {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(len(o.tables)))
		for _, t := range o.tables {
			b = binary.AppendUvarint(b, uint64(len(t)))
			b = append(b, t...)
		}
	}
	return b
}
