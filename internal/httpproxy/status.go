package httpproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tiergate/tiergate/internal/httpcache"
)

// Status is the JSON document served at the admin listener's /status.
type Status struct {
	Upstreams []UpstreamStatus `json:"upstreams"`
	// Caches holds each caching route's counters, by route name.
	Caches map[string]httpcache.Stats `json:"caches,omitempty"`
}

// UpstreamStatus describes one upstream and its backends.
type UpstreamStatus struct {
	Name     string          `json:"name"`
	Policy   string          `json:"policy"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one backend's live state.
type BackendStatus struct {
	Address      string     `json:"address"`
	Zone         string     `json:"zone,omitempty"`
	Weight       int        `json:"weight"`
	Healthy      bool       `json:"healthy"`
	Available    bool       `json:"available"`
	Draining     bool       `json:"draining,omitempty"`
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	InFlight     int64      `json:"in_flight"`
	EWMAMillis   float64    `json:"ewma_ms"`
	Responses    [6]uint64  `json:"responses"` // error, 1xx..5xx
	Retries      uint64     `json:"retries"`
}

// Status returns the live state of every upstream.
func (e *Engine) Status() Status {
	g := e.gen.Load()
	now := time.Now()
	var s Status
	for _, up := range g.upstreams {
		us := UpstreamStatus{Name: up.name, Policy: up.bal.Policy()}
		for _, be := range up.backends {
			bs := BackendStatus{
				Address:    be.b.Address,
				Zone:       be.b.Zone,
				Weight:     be.b.Weight,
				Healthy:    be.b.Healthy(),
				Available:  be.b.Available(now),
				Draining:   be.b.Draining(),
				InFlight:   be.b.InFlight(),
				EWMAMillis: float64(be.b.Latency()) / float64(time.Millisecond),
				Retries:    be.retries.Load(),
			}
			if t := be.b.EjectedUntil(); t.After(now) {
				bs.EjectedUntil = &t
			}
			for i := range bs.Responses {
				bs.Responses[i] = be.responses[i].Load()
			}
			us.Backends = append(us.Backends, bs)
		}
		s.Upstreams = append(s.Upstreams, us)
	}
	if cs := e.CacheStats(); len(cs) > 0 {
		s.Caches = cs
	}
	return s
}

// StatusHandler serves Status as JSON.
func (e *Engine) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e.Status())
	})
}

// Ready reports nil when the edge should receive traffic, per cfg.Ready.
func (e *Engine) Ready() error {
	g := e.gen.Load()
	if g.cfg.Ready == "always" {
		return nil
	}
	now := time.Now()
	var down []string
	for _, up := range g.upstreams {
		ok := false
		for _, be := range up.backends {
			if be.b.Available(now) {
				ok = true
				break
			}
		}
		if !ok {
			down = append(down, up.name)
		}
	}
	switch {
	case len(down) == 0:
		return nil
	case g.cfg.Ready == "any_upstream" && len(down) < len(g.upstreams):
		return nil
	}
	return errors.New(fmt.Sprint("no healthy backend in upstream(s) ", down))
}
