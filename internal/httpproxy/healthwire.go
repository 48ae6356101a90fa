package httpproxy

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/health"
)

// monitorEntry is one upstream's health monitor. It outlives config
// generations: a reload with the same health settings updates its targets
// (keeping the state of unchanged addresses); different settings replace it.
type monitorEntry struct {
	m      *health.Monitor
	cfg    health.Config
	cancel context.CancelFunc
	done   chan struct{}
}

// monitorFor returns the upstream's monitor for cfg, creating or replacing
// it as needed, with its targets set to backends. Called with e.mu held.
func (e *Engine) monitorFor(uc *UpstreamConfig, backends []*backend) (*health.Monitor, error) {
	ent := e.monitors[uc.Name]
	if ent != nil && !reflect.DeepEqual(ent.cfg, uc.Health) {
		ent.stop()
		ent = nil
	}
	if ent == nil {
		name := uc.Name
		m, err := health.NewMonitor(uc.Health, health.Options{
			Logger:   e.log.Named("health").With(zap.String("upstream", name)),
			Listener: health.ListenerFunc(func(c health.Change) { e.healthChanged(name, c) }),
		})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(e.bg)
		ent = &monitorEntry{m: m, cfg: uc.Health, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(ent.done)
			_ = m.Run(ctx)
		}()
		e.monitors[uc.Name] = ent
		// A new monitor decides afresh: with active checks that start
		// unhealthy, a backend takes no traffic until its first pass.
		if uc.Health.Active != nil {
			healthy := uc.Health.Active.Initial == health.InitialHealthy
			for _, be := range backends {
				be.b.SetHealthy(healthy, time.Now())
			}
		} else {
			for _, be := range backends {
				be.b.SetHealthy(true, time.Now())
			}
		}
	}
	targets := make([]health.Target, len(backends))
	for i, be := range backends {
		targets[i] = health.Target{ID: be.b.ID, Address: be.b.Address}
	}
	if err := ent.m.Update(targets); err != nil {
		return nil, err
	}
	return ent.m, nil
}

func (ent *monitorEntry) stop() {
	ent.cancel()
	<-ent.done
}

// healthChanged applies a monitor's verdict to the balancer's view of the
// backend. It runs on checker goroutines and, for ejections, on the request
// path: lock-free lookups only.
func (e *Engine) healthChanged(upstream string, c health.Change) {
	be := (*e.backendIndex.Load())[upstream+"/"+c.ID]
	if be == nil {
		return
	}
	switch c.Kind {
	case health.Up:
		be.b.SetHealthy(true, c.At)
	case health.Down:
		be.b.SetHealthy(false, c.At)
	case health.Ejected:
		be.b.Eject(c.Until)
	case health.Returned:
		be.b.Eject(time.Time{})
	}
	if ce := e.log.Check(zap.InfoLevel, "backend health changed"); ce != nil {
		ce.Write(zap.String("upstream", upstream), zap.String("backend", c.ID), zap.Stringer("change", c.Kind), zap.String("reason", c.Reason))
	}
}

// passive reports an attempt's outcome to the upstream's outlier detector.
func (e *Engine) passive(up *upstream, be *backend, status int, err error) {
	if up.monitor == nil {
		return
	}
	var o health.Outcome
	switch {
	case err == nil:
		o = health.StatusOutcome(status)
	case isTimeout(err) || errors.Is(err, fasthttp.ErrTimeout):
		o = health.Timeout
	default:
		o = health.ConnectError
	}
	up.monitor.Report(be.b.ID, o)
}
