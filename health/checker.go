package health

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// checker runs the active checks of one target. Its loop goroutine is the
// only writer of state; readers load the immutable *ActiveStatus.
type checker struct {
	target Target
	id     string
	probe  Probe
	cfg    *CheckConfig // shared, read-only
	opts   *Options     // shared, read-only
	log    *zap.Logger

	state atomic.Pointer[ActiveStatus]
	// first is true until the first check result has been applied; only the
	// loop goroutine touches it.
	first bool

	cancel context.CancelFunc // set by start; guarded by Manager.mu

	// notifyMu orders listener calls against stop: once stop returns, no
	// call starts.
	notifyMu sync.Mutex
	stopped  bool
}

func newChecker(t Target, probe Probe, cfg *CheckConfig, opts *Options) *checker {
	c := &checker{
		target: t,
		id:     t.id(),
		probe:  probe,
		cfg:    cfg,
		opts:   opts,
		log:    opts.Logger.With(zap.String("target", t.id()), zap.String("address", t.Address)),
		first:  true,
	}
	c.state.Store(&ActiveStatus{
		Healthy: cfg.Initial == InitialHealthy,
		Since:   opts.Clock.Now(),
	})
	return c
}

// start launches the loop under ctx; done runs when the goroutine exits.
// Called with Manager.mu held.
func (c *checker) start(ctx context.Context, done func()) {
	ctx, c.cancel = context.WithCancel(ctx)
	go func() {
		defer done()
		defer c.closeProbe()
		c.loop(ctx)
	}()
}

// stop cancels the loop and blocks listener calls from now on; it waits
// only for a listener call already running, never for a probe. Called with
// Manager.mu held.
func (c *checker) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.notifyMu.Lock()
	c.stopped = true
	c.notifyMu.Unlock()
}

func (c *checker) closeProbe() {
	if cl, ok := c.probe.(io.Closer); ok {
		if err := cl.Close(); err != nil {
			c.log.Debug("closing probe", zap.Error(err))
		}
	}
}

// loop checks the target until ctx is done. A panic in a probe is recovered
// by runProbe and counted as a failure; a panic anywhere else in the loop is
// logged and the loop goes on at the next interval.
func (c *checker) loop(ctx context.Context) {
	t := time.NewTimer(c.firstDelay())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.safeCheck(ctx)
		t.Reset(c.nextDelay())
	}
}

func (c *checker) safeCheck(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("health check loop panicked", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	c.checkOnce(ctx)
}

// firstDelay spreads the first checks of many targets over a jitter-sized
// window, so a reload does not probe every backend at the same instant.
func (c *checker) firstDelay() time.Duration {
	return time.Duration(c.opts.Rand() * c.cfg.jitter() * float64(c.cfg.Interval))
}

// nextDelay is the interval for the current verdict ± jitter.
func (c *checker) nextDelay() time.Duration {
	base := c.cfg.Interval
	if !c.state.Load().Healthy {
		base = c.cfg.UnhealthyInterval
	}
	f := 1 + c.cfg.jitter()*(2*c.opts.Rand()-1)
	return time.Duration(float64(base) * f)
}

// checkOnce runs one probe with the timeout and applies the result. A check
// cut short by ctx being cancelled (the target was removed or the manager
// stopped) is discarded.
func (c *checker) checkOnce(ctx context.Context) {
	start := c.opts.Clock.Now()
	began := time.Now()
	pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	res, err := c.runProbe(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	c.apply(start, time.Since(began), res, err)
}

func (c *checker) runProbe(ctx context.Context) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("health probe panicked", zap.Any("panic", r), zap.Stack("stack"))
			res, err = Result{}, fmt.Errorf("%w: %v", ErrProbePanic, r)
		}
	}()
	res, err = c.probe.Check(ctx)
	if err != nil && ctx.Err() == context.DeadlineExceeded && !isTimeout(err) {
		err = fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return res, err
}

// apply folds one result into the state (rise/fall) and reports a change.
func (c *checker) apply(at time.Time, took time.Duration, res Result, err error) {
	old := c.state.Load()
	st := *old
	st.Checks++
	st.LastCheck = at
	st.LastDuration = took
	first := c.first
	c.first = false

	var reason string
	if err == nil {
		st.Passes++
		st.Fails = 0
		st.LastResult = res.Detail
		st.LastError = ""
		if !st.Healthy && (first || st.Passes >= c.cfg.Rise) {
			st.Healthy = true
			if first {
				reason = "first check passed"
			} else {
				reason = fmt.Sprintf("%d consecutive passes", st.Passes)
			}
		}
	} else {
		st.Fails++
		st.Passes = 0
		st.LastError = err.Error()
		if st.Healthy && (first || st.Fails >= c.cfg.Fall) {
			st.Healthy = false
			if first {
				reason = "first check failed: " + st.LastError
			} else {
				reason = fmt.Sprintf("%d consecutive failures: %s", st.Fails, st.LastError)
			}
		}
		if ce := c.log.Check(zap.DebugLevel, "health check failed"); ce != nil {
			ce.Write(zap.Int("fails", st.Fails), zap.Error(err))
		}
	}
	changed := st.Healthy != old.Healthy
	if changed {
		st.Since = at
	}
	c.state.Store(&st)
	if !changed {
		return
	}
	kind := Down
	if st.Healthy {
		kind = Up
		c.log.Info("target is up", zap.String("reason", reason))
	} else {
		c.log.Warn("target is down", zap.String("reason", reason))
	}
	c.notify(Change{ID: c.id, Kind: kind, At: at, Reason: reason})
}

func (c *checker) notify(ch Change) {
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	if c.stopped {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("health listener panicked", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	c.opts.Listener.HealthChanged(ch)
}
