package health

import (
	"strings"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// Initial states of a new target (CheckConfig.Initial).
const (
	InitialHealthy   = "healthy"
	InitialUnhealthy = "unhealthy"
)

// Defaults of the config sections.
const (
	DefaultInterval           = 2 * time.Second
	DefaultTimeout            = time.Second
	DefaultJitter             = 0.1
	DefaultRise               = 2
	DefaultFall               = 3
	DefaultPath               = "/healthz"
	DefaultMethod             = "GET"
	DefaultExpectStatus       = "200-399"
	DefaultConsecutiveErrors  = 5
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultMaxEjectionTime    = 300 * time.Second
	DefaultMaxEjectionPercent = 50
)

// Bounds checked by Validate.
const (
	minInterval = 10 * time.Millisecond
	maxJitter   = 0.5
	maxRiseFall = 100
)

// Config is the health section of one upstream:
//
//	health:
//	  active:            # absent: no active checks, targets count as healthy
//	    path: /healthz
//	    interval: 2s
//	  passive:
//	    consecutive_errors: 5
type Config struct {
	// Active enables active checks when present; nil (absent) means none,
	// and every target counts as healthy unless passively ejected.
	Active *ActiveConfig `yaml:"active"`
	// Passive configures outlier detection; on by default.
	Passive PassiveConfig `yaml:"passive"`
}

// SetDefaults fills both sections' defaults.
func (c *Config) SetDefaults() {
	if c.Active != nil {
		c.Active.SetDefaults()
	}
	c.Passive.SetDefaults()
}

// Validate checks both sections; call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	if c.Active != nil {
		errs = append(errs, config.In("active", c.Active.Validate()))
	}
	errs = append(errs, config.In("passive", c.Passive.Validate()))
	return config.Join(errs...)
}

// CheckConfig is the protocol-independent part of an active check: schedule
// and thresholds. The HTTP check embeds it in ActiveConfig; a Postgres check
// will embed it the same way.
type CheckConfig struct {
	// Interval is the time between checks of a healthy target. Default 2s,
	// at least 10ms.
	Interval time.Duration `yaml:"interval"`
	// UnhealthyInterval is the time between checks of an unhealthy target,
	// e.g. shorter to notice a recovery sooner. Default Interval.
	UnhealthyInterval time.Duration `yaml:"unhealthy_interval"`
	// Timeout bounds one check (connect, request and response). Default 1s,
	// or half the shorter interval when that is less; must be shorter than
	// both intervals.
	Timeout time.Duration `yaml:"timeout"`
	// Jitter spreads checks: each wait is the interval ± this fraction of it,
	// and the first check of a target waits a random part of it. Default 0.1
	// (10%); 0 disables; at most 0.5.
	Jitter *float64 `yaml:"jitter"`
	// Rise is the number of consecutive passes that mark a down target up.
	// Default 2, 1..100.
	Rise int `yaml:"rise"`
	// Fall is the number of consecutive failures that mark an up target
	// down. Default 3, 1..100.
	Fall int `yaml:"fall"`
	// Initial is the state of a new target before its first check:
	// "unhealthy" (default: no traffic until the first pass, which alone
	// marks it up) or "healthy" (traffic at once; the first failure alone
	// marks it down). Later transitions use Rise and Fall.
	Initial string `yaml:"initial"`
}

// SetDefaults fills zero fields with their defaults.
func (c *CheckConfig) SetDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.UnhealthyInterval == 0 {
		c.UnhealthyInterval = c.Interval
	}
	if c.Timeout == 0 {
		c.Timeout = min(DefaultTimeout, min(c.Interval, c.UnhealthyInterval)/2)
	}
	if c.Jitter == nil {
		j := DefaultJitter
		c.Jitter = &j
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	if c.Initial == "" {
		c.Initial = InitialUnhealthy
	}
}

// Validate reports every problem; call SetDefaults first.
func (c *CheckConfig) Validate() error {
	var errs []error
	if c.Interval < minInterval {
		errs = append(errs, config.Errorf("interval", "%v is shorter than %v", c.Interval, minInterval))
	}
	if c.UnhealthyInterval < minInterval {
		errs = append(errs, config.Errorf("unhealthy_interval", "%v is shorter than %v", c.UnhealthyInterval, minInterval))
	}
	switch {
	case c.Timeout <= 0:
		errs = append(errs, config.Errorf("timeout", "must be positive, got %v", c.Timeout))
	case c.Timeout >= c.Interval:
		errs = append(errs, config.Errorf("timeout", "%v must be shorter than interval %v", c.Timeout, c.Interval))
	case c.Timeout >= c.UnhealthyInterval:
		errs = append(errs, config.Errorf("timeout", "%v must be shorter than unhealthy_interval %v", c.Timeout, c.UnhealthyInterval))
	}
	if c.Jitter != nil && (*c.Jitter < 0 || *c.Jitter > maxJitter || *c.Jitter != *c.Jitter) {
		errs = append(errs, config.Errorf("jitter", "%v is outside 0..%v", *c.Jitter, maxJitter))
	}
	if c.Rise < 1 || c.Rise > maxRiseFall {
		errs = append(errs, config.Errorf("rise", "%d is outside 1..%d", c.Rise, maxRiseFall))
	}
	if c.Fall < 1 || c.Fall > maxRiseFall {
		errs = append(errs, config.Errorf("fall", "%d is outside 1..%d", c.Fall, maxRiseFall))
	}
	errs = append(errs, config.CheckOneOf("initial", c.Initial, InitialUnhealthy, InitialHealthy))
	return config.Join(errs...)
}

func (c *CheckConfig) jitter() float64 {
	if c.Jitter == nil {
		return DefaultJitter
	}
	return *c.Jitter
}

// ActiveConfig is an active HTTP check: the schedule and thresholds of
// CheckConfig plus the request to send and the answer to expect.
type ActiveConfig struct {
	CheckConfig `yaml:",inline"`
	// Path is the request target. Default "/healthz"; must start with "/".
	Path string `yaml:"path"`
	// Method is GET (default), HEAD or OPTIONS.
	Method string `yaml:"method"`
	// Host is the Host header. Default: the target's address.
	Host string `yaml:"host"`
	// ExpectStatus lists the passing status codes as "200", "200-399" or
	// "2xx". Default ["200-399"].
	ExpectStatus []string `yaml:"expect_status"`
	// ExpectBody, when set, must occur in the first 64 KiB of the response
	// body for the check to pass. Not allowed with HEAD.
	ExpectBody string `yaml:"expect_body"`
}

// SetDefaults fills zero fields with their defaults.
func (c *ActiveConfig) SetDefaults() {
	c.CheckConfig.SetDefaults()
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	if len(c.ExpectStatus) == 0 {
		c.ExpectStatus = []string{DefaultExpectStatus}
	}
}

// Validate reports every problem; call SetDefaults first.
func (c *ActiveConfig) Validate() error {
	errs := []error{c.CheckConfig.Validate()}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, config.Errorf("path", "%q must start with /", c.Path))
	} else if strings.ContainsAny(c.Path, " \t\r\n") {
		errs = append(errs, config.Errorf("path", "%q contains whitespace", c.Path))
	}
	errs = append(errs, config.CheckOneOf("method", c.Method, "GET", "HEAD", "OPTIONS"))
	if strings.ContainsAny(c.Host, " \t\r\n/") {
		errs = append(errs, config.Errorf("host", "%q is not a host name", c.Host))
	}
	for i, s := range c.ExpectStatus {
		if _, err := ParseStatusRange(s); err != nil {
			errs = append(errs, config.Errorf(config.Index("expect_status", i), "%v", err))
		}
	}
	if c.ExpectBody != "" && c.Method == "HEAD" {
		errs = append(errs, config.Errorf("expect_body", "cannot be checked with method HEAD (no body)"))
	}
	if len(c.ExpectBody) > maxBodyScan {
		errs = append(errs, config.Errorf("expect_body", "is longer than the %d bytes of body that are read", maxBodyScan))
	}
	return config.Join(errs...)
}

// PassiveConfig is outlier detection from real traffic.
//
// Connect errors, timeouts and 5xx answers (or their Postgres equivalents)
// all count toward one consecutive-error counter; there is no separate
// gateway-error counter. Any success resets it.
type PassiveConfig struct {
	// Enabled turns outlier detection on. Default true.
	Enabled *bool `yaml:"enabled"`
	// ConsecutiveErrors is how many failed requests in a row eject a target.
	// Default 5, 1..10000.
	ConsecutiveErrors int `yaml:"consecutive_errors"`
	// BaseEjectionTime is the first ejection's length; the n-th ejection in
	// a row lasts n times as long. Default 30s.
	BaseEjectionTime time.Duration `yaml:"base_ejection_time"`
	// MaxEjectionTime caps one ejection's length. Default 300s, at least
	// base_ejection_time.
	MaxEjectionTime time.Duration `yaml:"max_ejection_time"`
	// MaxEjectionPercent caps the share of the group's targets ejected at
	// once; the error that would exceed it ejects nothing. Default 50,
	// 0..100 (0 never ejects; with one target only 100 ejects it).
	MaxEjectionPercent *int `yaml:"max_ejection_percent"`
	// EjectionDecay is how long a target must go without being ejected for
	// its ejection multiplier to drop by one. Default base_ejection_time.
	EjectionDecay time.Duration `yaml:"ejection_decay"`
}

// SetDefaults fills zero fields with their defaults.
func (c *PassiveConfig) SetDefaults() {
	if c.Enabled == nil {
		on := true
		c.Enabled = &on
	}
	if c.ConsecutiveErrors == 0 {
		c.ConsecutiveErrors = DefaultConsecutiveErrors
	}
	if c.BaseEjectionTime == 0 {
		c.BaseEjectionTime = DefaultBaseEjectionTime
	}
	if c.MaxEjectionTime == 0 {
		c.MaxEjectionTime = max(DefaultMaxEjectionTime, c.BaseEjectionTime)
	}
	if c.MaxEjectionPercent == nil {
		p := DefaultMaxEjectionPercent
		c.MaxEjectionPercent = &p
	}
	if c.EjectionDecay == 0 {
		c.EjectionDecay = c.BaseEjectionTime
	}
}

// Validate reports every problem; call SetDefaults first.
func (c *PassiveConfig) Validate() error {
	var errs []error
	if c.ConsecutiveErrors < 1 || c.ConsecutiveErrors > 10000 {
		errs = append(errs, config.Errorf("consecutive_errors", "%d is outside 1..10000", c.ConsecutiveErrors))
	}
	if c.BaseEjectionTime <= 0 {
		errs = append(errs, config.Errorf("base_ejection_time", "must be positive, got %v", c.BaseEjectionTime))
	}
	if c.MaxEjectionTime < c.BaseEjectionTime {
		errs = append(errs, config.Errorf("max_ejection_time", "%v is shorter than base_ejection_time %v", c.MaxEjectionTime, c.BaseEjectionTime))
	}
	if c.MaxEjectionPercent != nil && (*c.MaxEjectionPercent < 0 || *c.MaxEjectionPercent > 100) {
		errs = append(errs, config.Errorf("max_ejection_percent", "%d is outside 0..100", *c.MaxEjectionPercent))
	}
	if c.EjectionDecay <= 0 {
		errs = append(errs, config.Errorf("ejection_decay", "must be positive, got %v", c.EjectionDecay))
	}
	return config.Join(errs...)
}

// IsEnabled reports whether outlier detection is on (nil means the default,
// true).
func (c *PassiveConfig) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }
