package pgproxy

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// writeGate is the console's PAUSE WRITES: while it is closed, units of
// work that may write (and transactions not yet on a server) wait before
// they are routed, and Pause returns once none is in flight and no primary
// connection is lent out, so the caller (the resharder's cutover) sees no
// write in progress. Reads on replicas go on. Entering and leaving are two
// atomic operations; no lock is taken on the request path.
type writeGate struct {
	inflight atomic.Int64
	waiting  atomic.Int64 // units waiting for the gate (console, tests)
	paused   atomic.Pointer[chan struct{}]
}

// enter waits while writes are paused (until deadline, a cancel, or ctx
// ends), then counts the caller in flight until exit.
func (g *writeGate) enter(ctx context.Context, deadline time.Time, cancel <-chan struct{}) error {
	for {
		g.inflight.Add(1)
		ch := g.paused.Load()
		if ch == nil {
			return nil
		}
		g.inflight.Add(-1)
		if err := g.wait(ctx, *ch, deadline, cancel); err != nil {
			return err
		}
	}
}

func (g *writeGate) wait(ctx context.Context, ch chan struct{}, deadline time.Time, cancel <-chan struct{}) error {
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return ErrPoolTimeout
	case <-cancel:
		return ErrCanceled
	case <-ctx.Done():
		return ErrShutdown
	}
}

func (g *writeGate) exit() { g.inflight.Add(-1) }

// pause closes the gate and waits until nothing is in flight and busy
// reports no primary connection in use, or ctx ends (the gate stays
// closed; call resume).
func (g *writeGate) pause(ctx context.Context, busy func() int) error {
	ch := make(chan struct{})
	g.paused.CompareAndSwap(nil, &ch)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		n, b := g.inflight.Load(), busy()
		if n == 0 && b == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pause writes: %d write(s) in flight, %d primary connection(s) in use: %w", n, b, ctx.Err())
		case <-t.C:
		}
	}
}

// resume opens the gate.
func (g *writeGate) resume() {
	if ch := g.paused.Swap(nil); ch != nil {
		close(*ch)
	}
}

// isPaused reports whether writes are paused.
func (g *writeGate) isPaused() bool { return g.paused.Load() != nil }
