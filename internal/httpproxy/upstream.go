package httpproxy

import (
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/health"
)

// backend is one web server as the engine sees it: the balancer's view
// (health, load, latency, shared by every config generation) plus the
// connection pool and counters. A backend whose address and client settings
// survive a reload is reused as is.
type backend struct {
	b        *balancer.Backend
	upstream string
	stickyID []byte // cookie value naming this backend (sticky_cookie)
	client   *fasthttp.HostClient
	dial     *dialer
	settings clientSettings

	// Counters exported by the metrics collector (no locks on the hot path).
	responses [6]atomic.Uint64 // by status class 1xx..5xx; [0] = no response (error)
	retries   atomic.Uint64
}

// clientSettings are the upstream settings baked into a HostClient; when
// they change on reload the backend gets a new client (its health and
// latency history stay).
type clientSettings struct {
	connect, response, idle, wait time.Duration
	maxConns                      int
}

func settingsOf(u *UpstreamConfig) clientSettings {
	return clientSettings{u.ConnectTimeout, u.ResponseTimeout, u.IdleConnTimeout, u.MaxConnWait, u.MaxConns}
}

func newClient(addr string, s clientSettings, d *dialer) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                          addr,
		DialTimeout:                   d.DialTimeout,
		MaxConns:                      s.maxConns,
		MaxConnWaitTimeout:            s.wait,
		MaxIdleConnDuration:           s.idle,
		MaxIdemponentCallAttempts:     1, // the engine retries, on another backend
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		StreamResponseBody:            true,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
	}
}

// upstream is one named cluster within a config generation. It is
// immutable once published, except through the atomics of its parts.
type upstream struct {
	name     string
	cfg      *UpstreamConfig
	bal      *balancer.Balancer
	backends []*backend
	byBal    map[*balancer.Backend]*backend
	hashKey  balancer.HashKey
	hasHash  bool
	sticky   bool      // sticky_cookie: (re)issue the cookie naming the backend
	retryOn  [100]bool // retryOn[s-500] for 5xx statuses that warrant a retry
	budget   *retryBudget
	latency  observer
	monitor  *health.Monitor
}

// observer is the part of a Prometheus histogram the hot path uses.
type observer interface{ Observe(float64) }

func (u *upstream) backendOf(b *balancer.Backend) *backend { return u.byBal[b] }

func (u *upstream) retryableStatus(s int) bool {
	return s >= 500 && s < 600 && u.retryOn[s-500]
}
