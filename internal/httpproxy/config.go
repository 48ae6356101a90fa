package httpproxy

import (
	"fmt"

	"github.com/tiergate/tiergate/internal/admin"
	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/internal/logging"
)

// Config is the whole edge config file (configs/edge.yaml).
type Config struct {
	Log       logging.Config   `yaml:"log"`
	Admin     admin.Config     `yaml:"admin"`
	Listeners []ListenerConfig `yaml:"listeners"`
	Upstreams []UpstreamConfig `yaml:"upstreams"`
}

// ListenerConfig is one HTTP listener.
type ListenerConfig struct {
	// Name identifies the listener in logs and metrics. Required.
	Name string `yaml:"name"`
	// Address is host:port to bind. Required.
	Address string `yaml:"address"`
}

// UpstreamConfig is a named cluster of backends.
type UpstreamConfig struct {
	// Name is how routes refer to the upstream. Required, unique.
	Name     string          `yaml:"name"`
	Backends []BackendConfig `yaml:"backends"`
}

// BackendConfig is one web server.
type BackendConfig struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// Weight is the relative share of requests. Default 1; 0 disables.
	Weight *int `yaml:"weight"`
}

// LoadConfig reads, defaults and validates an edge config file.
func LoadConfig(path string) (*Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills in every section's defaults.
func (c *Config) SetDefaults() {
	c.Log.SetDefaults()
	c.Admin.SetDefaults()
	for i := range c.Upstreams {
		for j := range c.Upstreams[i].Backends {
			if c.Upstreams[i].Backends[j].Weight == nil {
				one := 1
				c.Upstreams[i].Backends[j].Weight = &one
			}
		}
	}
}

// Validate checks the whole file.
func (c *Config) Validate() error {
	errs := []error{
		config.In("log", c.Log.Validate()),
		config.In("admin", c.Admin.Validate()),
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
		errs = append(errs, config.At("listeners", i, config.Join(le...)))
	}
	if len(c.Upstreams) == 0 {
		errs = append(errs, config.Errorf("upstreams", "at least one upstream is required"))
	}
	unames := map[string]bool{}
	for i, u := range c.Upstreams {
		var ue []error
		if u.Name == "" {
			ue = append(ue, config.Errorf("name", "is required"))
		} else if unames[u.Name] {
			ue = append(ue, config.Errorf("name", "duplicate upstream name %q", u.Name))
		}
		unames[u.Name] = true
		if len(u.Backends) == 0 {
			ue = append(ue, config.Errorf("backends", "at least one backend is required"))
		}
		for j, b := range u.Backends {
			var be []error
			be = append(be, config.CheckHostPort("address", b.Address, false))
			if b.Weight != nil && (*b.Weight < 0 || *b.Weight > 1000) {
				be = append(be, config.Errorf("weight", "%d is outside 0..1000", *b.Weight))
			}
			ue = append(ue, config.At("backends", j, config.Join(be...)))
		}
		errs = append(errs, config.At("upstreams", i, config.Join(ue...)))
	}
	return config.Join(errs...)
}

// Summary is the one line `edge -check` prints.
func (c *Config) Summary() string {
	backends := 0
	for _, u := range c.Upstreams {
		backends += len(u.Backends)
	}
	return fmt.Sprintf("%d listener(s), %d upstream(s) with %d backend(s)", len(c.Listeners), len(c.Upstreams), backends)
}
