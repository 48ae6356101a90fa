package httpproxy

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/health"
	"github.com/tiergate/tiergate/internal/admin"
	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/internal/logging"
	"github.com/tiergate/tiergate/router/httproute"
)

// Config is the whole edge config file (configs/edge.yaml).
type Config struct {
	Log       logging.Config   `yaml:"log"`
	Admin     admin.Config     `yaml:"admin"`
	AccessLog AccessLogConfig  `yaml:"access_log"`
	Listeners []ListenerConfig `yaml:"listeners"`
	// TrustedProxies lists the CIDRs whose X-Forwarded-For/-Proto/-Host
	// the edge believes; from anyone else they are replaced. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// DrainTimeout bounds how long SIGTERM waits for in-flight requests
	// after the listeners stop accepting. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Ready says when /readyz reports ready: "all_upstreams" (every
	// upstream has a healthy backend; default), "any_upstream" or "always".
	Ready     string                  `yaml:"ready"`
	Upstreams []UpstreamConfig        `yaml:"upstreams"`
	Routes    []httproute.RouteConfig `yaml:"routes"`

	trusted []netip.Prefix
	baseDir string // directory of the config file: relative paths resolve against it
}

// ListenerConfig is one HTTP listener.
type ListenerConfig struct {
	// Name identifies the listener in logs and metrics. Required, unique.
	Name string `yaml:"name"`
	// Address is host:port to bind. Required.
	Address string `yaml:"address"`
	// ReadTimeout bounds reading a request's headers (and a buffered
	// body). Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes keep-alive client connections idle this long.
	// Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes is the largest request head accepted; larger gets
	// 431. It is also the per-connection read buffer, so it sets most of
	// the memory an idle keep-alive connection costs. Default 8KiB (nginx's
	// large_client_header_buffers size; raise it for big cookies).
	MaxHeaderBytes config.ByteSize `yaml:"max_header_bytes"`
	// MaxRequestBody is the largest request body accepted (413 above).
	// Bodies are streamed, not buffered, so this is a policy limit.
	// Default 1GiB.
	MaxRequestBody config.ByteSize `yaml:"max_request_body"`
	// ReduceMemoryUsage releases per-connection buffers of idle keep-alive
	// connections (less RSS with many idle clients, a little more CPU).
	// Default false.
	ReduceMemoryUsage bool `yaml:"reduce_memory_usage"`
	// TLS serves HTTPS when set: one or more certificates, chosen by SNI.
	TLS *TLSConfig `yaml:"tls"`
}

// TLSConfig is a listener's certificates. The certificate whose names
// match the client's SNI is served; the first one otherwise.
type TLSConfig struct {
	Certificates []CertConfig `yaml:"certificates"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// CertConfig is one PEM certificate chain and its key.
type CertConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// UpstreamConfig is a named cluster of backends.
type UpstreamConfig struct {
	// Name is how routes refer to the upstream. Required, unique.
	Name     string          `yaml:"name"`
	Backends []BackendConfig `yaml:"backends"`
	// Balancer chooses the policy (round_robin by default), hash key and
	// slow start. Its panic_mode is set from the upstream's PanicMode.
	Balancer balancer.Config `yaml:"balancer"`
	// PanicMode sends traffic to every backend when none is healthy, rather
	// than failing every request (when all are down, the health checks are
	// the likelier culprit). Default true.
	PanicMode *bool `yaml:"panic_mode"`

	// ConnectTimeout bounds dialing a backend. Default 2s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseTimeout is the longest the edge waits for the backend to
	// say something, for the response head and between body reads (like
	// HAProxy's "timeout server"). Default 30s.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// Timeout bounds a whole attempt, response body included. Default 0:
	// none (long downloads and streams run as long as bytes flow).
	Timeout time.Duration `yaml:"timeout"`
	// MaxConns caps connections per backend. Default 1024.
	MaxConns int `yaml:"max_conns"`
	// MaxConnWait is how long a request waits for a free connection when
	// MaxConns is reached, instead of failing at once. Default 1s.
	MaxConnWait time.Duration `yaml:"max_conn_wait"`
	// IdleConnTimeout closes pooled connections idle this long; keep it
	// below the backends' own keep-alive timeout. Default 9s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`

	Retry RetryConfig `yaml:"retry"`
	// Health configures active checks (health.active; absent means none, so
	// backends count as healthy until passive checks eject them) and
	// passive outlier detection (health.passive; on by default).
	Health health.Config `yaml:"health"`
}

// BackendConfig is one web server.
type BackendConfig struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// Weight is the relative share of requests. Default 1; 0 sends none.
	Weight *int `yaml:"weight"`
	// Zone is a free-form label shown in status and metrics.
	Zone string `yaml:"zone"`
}

// RetryConfig says when a failed attempt is tried again on another backend.
type RetryConfig struct {
	// Attempts is the most retries per request after the first attempt.
	// Default 2; 0 disables retries.
	Attempts *int `yaml:"attempts"`
	// MaxReplayBody is the largest request body kept to replay on a retry;
	// requests with larger (or unknown-length) bodies are not retried once
	// any of it was sent. Default 64KiB.
	MaxReplayBody config.ByteSize `yaml:"max_replay_body"`
	// OnStatus lists response statuses that count as failures worth a
	// retry for idempotent requests. Default [502, 503, 504].
	OnStatus []int `yaml:"on_status"`
	// BudgetRatio caps retries at this fraction of requests. Default 0.2.
	BudgetRatio float64 `yaml:"budget_ratio"`
	// BudgetMinPerSecond always allows this many retries per second, so a
	// quiet upstream can still retry. Default 10.
	BudgetMinPerSecond int `yaml:"budget_min_per_second"`
}

// LoadConfig reads, defaults and validates an edge config file.
func LoadConfig(path string) (*Config, error) {
	c := Config{baseDir: filepath.Dir(path)}
	if err := config.Load(path, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills in every section's defaults.
func (c *Config) SetDefaults() {
	c.Log.SetDefaults()
	c.Admin.SetDefaults()
	c.AccessLog.SetDefaults()
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Ready == "" {
		c.Ready = "all_upstreams"
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		setDur(&l.ReadTimeout, 30*time.Second)
		setDur(&l.IdleTimeout, 60*time.Second)
		if l.MaxHeaderBytes == 0 {
			l.MaxHeaderBytes = 8 << 10
		}
		if l.MaxRequestBody == 0 {
			l.MaxRequestBody = 1 << 30
		}
	}
	for i := range c.Upstreams {
		c.Upstreams[i].setDefaults()
	}
	for i := range c.Routes {
		c.Routes[i].SetDefaults()
		if st := c.Routes[i].Static; st != nil && st.Root != "" && !filepath.IsAbs(st.Root) && c.baseDir != "" {
			st.Root = filepath.Join(c.baseDir, st.Root)
		}
	}
}

func (u *UpstreamConfig) setDefaults() {
	for j := range u.Backends {
		if u.Backends[j].Weight == nil {
			one := 1
			u.Backends[j].Weight = &one
		}
	}
	if u.PanicMode == nil {
		on := true
		u.PanicMode = &on
	}
	u.Balancer.PanicMode = *u.PanicMode
	u.Balancer.SetDefaults()
	setDur(&u.ConnectTimeout, 2*time.Second)
	setDur(&u.ResponseTimeout, 30*time.Second)
	setDur(&u.MaxConnWait, time.Second)
	setDur(&u.IdleConnTimeout, 9*time.Second)
	if u.MaxConns == 0 {
		u.MaxConns = 1024
	}
	r := &u.Retry
	if r.Attempts == nil {
		two := 2
		r.Attempts = &two
	}
	if r.MaxReplayBody == 0 {
		r.MaxReplayBody = 64 << 10
	}
	if r.OnStatus == nil {
		r.OnStatus = []int{502, 503, 504}
	}
	if r.BudgetRatio == 0 {
		r.BudgetRatio = 0.2
	}
	if r.BudgetMinPerSecond == 0 {
		r.BudgetMinPerSecond = 10
	}
	u.Health.SetDefaults()
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Validate checks the whole file.
func (c *Config) Validate() error {
	errs := []error{
		config.In("log", c.Log.Validate()),
		config.In("admin", c.Admin.Validate()),
		config.In("access_log", c.AccessLog.Validate()),
		config.CheckOneOf("ready", c.Ready, "all_upstreams", "any_upstream", "always"),
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, config.Errorf("drain_timeout", "is negative"))
	}
	c.trusted = c.trusted[:0]
	for i, s := range c.TrustedProxies {
		p, err := parseCIDR(s)
		if err != nil {
			errs = append(errs, config.Errorf(config.Index("trusted_proxies", i), "%v", err))
			continue
		}
		c.trusted = append(c.trusted, p)
	}
	if len(c.Listeners) == 0 {
		errs = append(errs, config.Errorf("listeners", "at least one listener is required"))
	}
	names := map[string]bool{}
	for i, l := range c.Listeners {
		var le []error
		if l.Name == "" {
			le = append(le, config.Errorf("name", "is required"))
		} else if names[l.Name] {
			le = append(le, config.Errorf("name", "duplicate listener name %q", l.Name))
		}
		names[l.Name] = true
		le = append(le, config.CheckHostPort("address", l.Address, true))
		if l.MaxHeaderBytes < 1024 {
			le = append(le, config.Errorf("max_header_bytes", "%v is below 1KiB", l.MaxHeaderBytes))
		}
		if l.TLS != nil {
			le = append(le, config.In("tls", l.TLS.validate()))
		}
		errs = append(errs, config.At("listeners", i, config.Join(le...)))
	}
	if len(c.Upstreams) == 0 {
		errs = append(errs, config.Errorf("upstreams", "at least one upstream is required"))
	}
	unames := map[string]bool{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		var ue []error
		if u.Name == "" {
			ue = append(ue, config.Errorf("name", "is required"))
		} else if unames[u.Name] {
			ue = append(ue, config.Errorf("name", "duplicate upstream name %q", u.Name))
		}
		unames[u.Name] = true
		ue = append(ue, u.validate())
		errs = append(errs, config.At("upstreams", i, config.Join(ue...)))
	}
	if len(c.Routes) == 0 && len(c.Upstreams) > 1 {
		errs = append(errs, config.Errorf("routes", "are required when there is more than one upstream"))
	}
	if len(errs) > 0 && config.Join(errs...) != nil {
		return config.Join(errs...)
	}
	return config.In("routes", httproute.ValidateRoutes(c.Routes, c.UpstreamNames()))
}

func (u *UpstreamConfig) validate() error {
	var errs []error
	if len(u.Backends) == 0 {
		errs = append(errs, config.Errorf("backends", "at least one backend is required"))
	}
	seen := map[string]bool{}
	for j, b := range u.Backends {
		var be []error
		be = append(be, config.CheckHostPort("address", b.Address, false))
		if seen[b.Address] {
			be = append(be, config.Errorf("address", "duplicate backend %q", b.Address))
		}
		seen[b.Address] = true
		if b.Weight != nil && (*b.Weight < 0 || *b.Weight > 1000) {
			be = append(be, config.Errorf("weight", "%d is outside 0..1000", *b.Weight))
		}
		errs = append(errs, config.At("backends", j, config.Join(be...)))
	}
	errs = append(errs, config.In("balancer", u.Balancer.Validate()))
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"connect_timeout", u.ConnectTimeout}, {"response_timeout", u.ResponseTimeout}, {"timeout", u.Timeout}, {"max_conn_wait", u.MaxConnWait}, {"idle_conn_timeout", u.IdleConnTimeout}} {
		if d.v < 0 {
			errs = append(errs, config.Errorf(d.name, "%v is negative", d.v))
		}
	}
	if u.MaxConns < 1 {
		errs = append(errs, config.Errorf("max_conns", "must be at least 1"))
	}
	r := u.Retry
	var re []error
	if *r.Attempts < 0 || *r.Attempts > 10 {
		re = append(re, config.Errorf("attempts", "%d is outside 0..10", *r.Attempts))
	}
	for i, s := range r.OnStatus {
		if s < 500 || s > 599 {
			re = append(re, config.Errorf(config.Index("on_status", i), "%d is not a 5xx status", s))
		}
	}
	if r.BudgetRatio < 0 || r.BudgetRatio > 1 {
		re = append(re, config.Errorf("budget_ratio", "%v is outside 0..1", r.BudgetRatio))
	}
	if r.BudgetMinPerSecond < 0 {
		re = append(re, config.Errorf("budget_min_per_second", "is negative"))
	}
	errs = append(errs, config.In("retry", config.Join(re...)))
	errs = append(errs, config.In("health", u.Health.Validate()))
	return config.Join(errs...)
}

// UpstreamNames lists the upstream names in file order.
func (c *Config) UpstreamNames() []string {
	out := make([]string, len(c.Upstreams))
	for i, u := range c.Upstreams {
		out[i] = u.Name
	}
	return out
}

func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or IP address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Summary is the one line `edge -check` prints.
func (c *Config) Summary() string {
	backends := 0
	for _, u := range c.Upstreams {
		backends += len(u.Backends)
	}
	return fmt.Sprintf("%d listener(s), %d upstream(s) with %d backend(s), %d route(s)", len(c.Listeners), len(c.Upstreams), backends, len(c.Routes))
}
