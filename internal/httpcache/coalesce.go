package httpcache

import (
	"sync"
	"sync/atomic"
	"time"
)

// flight is one origin fetch for a key that other requests may wait for:
// a miss, a revalidation or a background refresh. Its leader ends it
// exactly once (Store, Tee's end, or Result.Release); waiters then look the
// key up again.
type flight struct {
	done  chan struct{}
	start time.Time
	ended atomic.Bool
}

// coalescer tracks the flights in progress, one per key. A flight older
// than timeout counts as abandoned: the next request takes over, so a
// leader that never ends its flight cannot stall a key for long.
type coalescer struct {
	m       sync.Map // key string -> *flight
	timeout time.Duration
	waiting atomic.Int64 // requests blocked in wait right now
}

// join makes the caller the leader of a new flight for key, or returns the
// flight already in progress to wait for.
func (co *coalescer) join(key string, now time.Time) (f *flight, leader bool) {
	var nf *flight
	for {
		v, ok := co.m.Load(key)
		if ok {
			f := v.(*flight)
			if now.Sub(f.start) <= co.timeout {
				return f, false
			}
			co.m.CompareAndDelete(key, f)
			continue
		}
		if nf == nil {
			nf = &flight{done: make(chan struct{}), start: now}
		}
		if _, loaded := co.m.LoadOrStore(key, nf); !loaded {
			return nf, true
		}
	}
}

// lead makes the caller the leader of a new flight for key when none is in
// progress (a background refresh), or returns nil.
func (co *coalescer) lead(key string, now time.Time) *flight {
	f, leader := co.join(key, now)
	if !leader {
		return nil
	}
	return f
}

// end finishes f and wakes its waiters; later calls do nothing.
func (co *coalescer) end(key string, f *flight) {
	if f == nil || !f.ended.CompareAndSwap(false, true) {
		return
	}
	co.m.CompareAndDelete(key, f)
	close(f.done)
}

// wait blocks until f ends or timeout passes; it reports whether f ended.
func (co *coalescer) wait(f *flight, timeout time.Duration) bool {
	select {
	case <-f.done:
		return true
	default:
	}
	co.waiting.Add(1)
	defer co.waiting.Add(-1)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
		return false
	}
}
