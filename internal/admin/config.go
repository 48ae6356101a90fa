package admin

import (
	"github.com/tiergate/tiergate/internal/config"
)

// DefaultListen is the admin address when none is configured.
const DefaultListen = "127.0.0.1:9901"

// Config is the `admin:` section of both binaries.
type Config struct {
	// Listen is the admin HTTP address. Default: 127.0.0.1:9901 (the
	// binaries may choose another default port). Binding anything but a
	// loopback address requires Token, or AllowInsecure.
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" (or
	// ?token=<token>, for a browser opening the status page) on every admin
	// endpoint except /healthz and /readyz (probes carry no credentials).
	// Use ${ENV} to keep it out of the file.
	Token string `yaml:"token"`
	// AllowInsecure allows a non-loopback Listen without Token. Default: false.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// SetDefaults fills in the documented defaults.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
}

// Validate reports a bad address, and an admin listener that would be open
// to the network by accident.
func (c *Config) Validate() error {
	if err := config.CheckHostPort("listen", c.Listen, true); err != nil {
		return err
	}
	if !config.IsLoopback(c.Listen) && c.Token == "" && !c.AllowInsecure {
		return config.Errorf("listen", "%q is not a loopback address: set token (e.g. token: ${ADMIN_TOKEN}) or allow_insecure: true", c.Listen)
	}
	return nil
}
