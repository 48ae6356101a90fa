package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/internal/httpcache"
	"github.com/tiergate/tiergate/internal/static"
	"github.com/tiergate/tiergate/router/httproute"
)

// Engine is the edge: listeners, the current config generation and the
// backends that outlive generations. Reload swaps the generation
// atomically; requests in flight finish on the one they started with.
type Engine struct {
	log     *zap.Logger
	access  *accessLog
	metrics *metrics

	gen atomic.Pointer[generation]

	mu       sync.Mutex          // serialises Reload; never taken on the request path
	backends map[string]*backend // key: upstream name + "/" + address
	monitors map[string]*monitorEntry
	caches   map[string]*cacheEntry  // by route name: survive reloads with unchanged settings
	statics  map[string]*staticEntry // by route name
	// backendIndex is a copy of backends for lock-free lookups by health
	// listeners (which may run on the request path).
	backendIndex atomic.Pointer[map[string]*backend]
	bg           context.Context // lives until Close: health monitors run on it
	bgCancel     context.CancelFunc
	servers      []*fasthttp.Server
	lns          []net.Listener
	draining     bool
}

// generation is one loaded config, immutable once published.
type generation struct {
	cfg       *Config
	routes    *httproute.Table
	upstreams []*upstream // in cfg.Upstreams order (route indexes point here)
	trusted   httproute.TrustedProxies
	caches    []*httpcache.Cache // by route index; nil for routes without a cache
	statics   []*static.Handler  // by route index; nil for non-static routes
}

// New builds an engine for cfg; reg receives its metrics.
func New(cfg *Config, log *zap.Logger, reg prometheus.Registerer) (*Engine, error) {
	e := &Engine{
		log:      log,
		backends: map[string]*backend{},
		monitors: map[string]*monitorEntry{},
		caches:   map[string]*cacheEntry{},
		statics:  map[string]*staticEntry{},
	}
	e.bg, e.bgCancel = context.WithCancel(context.Background())
	e.backendIndex.Store(&map[string]*backend{})
	e.metrics = newMetrics(e, reg)
	g, err := e.build(cfg)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.access, err = newAccessLog(cfg.AccessLog, log)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.gen.Store(g)
	return e, nil
}

// build turns a validated config into a generation, reusing the backends
// (and their health and load state) of the current one where the upstream
// name and address match.
func (e *Engine) build(cfg *Config) (*generation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := cfg.UpstreamNames()
	routes := cfg.Routes
	if len(routes) == 0 {
		routes = []httproute.RouteConfig{{Name: "default", Upstream: names[0]}}
		routes[0].SetDefaults()
	}
	table, err := httproute.Compile(routes, names)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	trusted, err := httproute.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	g := &generation{cfg: cfg, routes: table, trusted: trusted}
	seen := map[string]bool{}
	for i := range cfg.Upstreams {
		uc := &cfg.Upstreams[i]
		bal, err := balancer.New(uc.Balancer, balancer.Options{})
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", uc.Name, err)
		}
		up := &upstream{
			name:    uc.Name,
			cfg:     uc,
			bal:     bal,
			byBal:   map[*balancer.Backend]*backend{},
			budget:  newRetryBudget(uc.Retry.BudgetRatio, uc.Retry.BudgetMinPerSecond, nil),
			latency: e.metrics.upstreamLatency(uc.Name),
		}
		if uc.Balancer.HashKey != "" {
			up.hashKey, _ = balancer.ParseHashKey(uc.Balancer.HashKey)
			up.hasHash = true
			up.sticky = uc.Balancer.Policy == balancer.StickyCookie
		}
		for _, s := range uc.Retry.OnStatus {
			up.retryOn[s-500] = true
		}
		settings := settingsOf(uc)
		members := make([]*balancer.Backend, 0, len(uc.Backends))
		for _, bc := range uc.Backends {
			key := uc.Name + "/" + bc.Address
			seen[key] = true
			be := e.backends[key]
			if be == nil {
				be = &backend{b: &balancer.Backend{ID: bc.Address, Address: bc.Address}, upstream: uc.Name, stickyID: []byte(balancer.StickyID(bc.Address))}
				e.backends[key] = be
			}
			if be.client == nil || be.settings != settings {
				be.dial = newDialer(settings.connect, settings.response)
				be.client = newClient(bc.Address, settings, be.dial)
				be.settings = settings
			}
			be.b.Weight = *bc.Weight
			be.b.Zone = bc.Zone
			be.b.SetDraining(*bc.Weight == 0)
			up.backends = append(up.backends, be)
			up.byBal[be.b] = be
			members = append(members, be.b)
		}
		bal.Update(members)
		g.upstreams = append(g.upstreams, up)
	}
	idx := make(map[string]*backend, len(e.backends))
	for key, be := range e.backends {
		if !seen[key] {
			// Removed: in-flight requests still hold it; its idle pooled
			// connections close after IdleConnTimeout.
			delete(e.backends, key)
			continue
		}
		idx[key] = be
	}
	e.backendIndex.Store(&idx)
	for i, up := range g.upstreams {
		m, err := e.monitorFor(&cfg.Upstreams[i], up.backends)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: health: %w", up.name, err)
		}
		up.monitor = m
	}
	for name, ent := range e.monitors {
		if !slices.Contains(names, name) {
			ent.stop()
			delete(e.monitors, name)
		}
	}
	if err := e.buildRouteServices(g); err != nil {
		return nil, err
	}
	return g, nil
}

// Close stops the health monitors. Serve calls it after draining.
func (e *Engine) Close() {
	e.bgCancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, ent := range e.monitors {
		ent.stop()
		delete(e.monitors, name)
	}
	for name, c := range e.caches {
		c.cache.Close()
		delete(e.caches, name)
	}
	for name, s := range e.statics {
		_ = s.h.Close()
		delete(e.statics, name)
	}
}

// Reload validates nothing itself (the loader did) and swaps in cfg. On
// error the old generation stays.
func (e *Engine) Reload(cfg *Config) error {
	g, err := e.build(cfg)
	if err != nil {
		return err
	}
	old := e.gen.Swap(g)
	if err := e.access.reconfigure(cfg.AccessLog); err != nil {
		e.log.Warn("access log settings not applied", zap.Error(err))
	}
	if !sameListeners(old.cfg.Listeners, cfg.Listeners) {
		e.log.Warn("listener changes need a restart; keeping the current listeners")
	}
	e.log.Info("config reloaded", zap.String("summary", cfg.Summary()))
	return nil
}

func sameListeners(a, b []ListenerConfig) bool {
	return reflect.DeepEqual(a, b)
}

// Config returns the config in use.
func (e *Engine) Config() *Config { return e.gen.Load().cfg }

// Listen binds every configured listener (so a caller can learn the bound
// addresses, e.g. with port 0 in tests) without serving yet.
func (e *Engine) Listen() ([]net.Listener, error) {
	cfg := e.gen.Load().cfg
	var lns []net.Listener
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err == nil {
			ln, err = wrapTLS(ln, l)
		}
		if err != nil {
			for _, o := range lns {
				_ = o.Close()
			}
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Serve serves on lns (one per configured listener, in order) until ctx is
// cancelled, then drains: listeners close, responses carry
// "Connection: close", and in-flight requests get DrainTimeout to finish.
func (e *Engine) Serve(ctx context.Context, lns []net.Listener) error {
	cfg := e.gen.Load().cfg
	if len(lns) != len(cfg.Listeners) {
		return fmt.Errorf("httpproxy: %d listeners for %d configured", len(lns), len(cfg.Listeners))
	}
	errc := make(chan error, len(lns))
	e.mu.Lock()
	for i, lc := range cfg.Listeners {
		srv := e.newServer(lc)
		e.servers = append(e.servers, srv)
		e.lns = append(e.lns, lns[i])
		go func() { errc <- srv.Serve(lns[i]) }()
		e.log.Info("listening", zap.String("listener", lc.Name), zap.String("addr", lns[i].Addr().String()))
	}
	e.mu.Unlock()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	e.drain(cfg.DrainTimeout)
	e.Close()
	return serveErr
}

func (e *Engine) newServer(lc ListenerConfig) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       e.handle,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: true,
		StreamRequestBody:             true,
		MaxRequestBodySize:            int(lc.MaxRequestBody),
		ReadBufferSize:                int(lc.MaxHeaderBytes),
		ReadTimeout:                   lc.ReadTimeout,
		IdleTimeout:                   lc.IdleTimeout,
		ReduceMemoryUsage:             lc.ReduceMemoryUsage,
		CloseOnShutdown:               true,
		TCPKeepalive:                  true,
		Logger:                        zap.NewStdLog(e.log.Named("fasthttp")),
	}
}

// drain stops accepting and waits up to timeout for in-flight requests.
func (e *Engine) drain(timeout time.Duration) {
	e.mu.Lock()
	servers := e.servers
	e.draining = true
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				e.log.Warn("shutdown", zap.Error(err))
			}
		}()
	}
	wg.Wait()
	e.access.close()
	e.log.Info("drained")
}
