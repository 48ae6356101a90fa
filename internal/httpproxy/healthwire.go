package httpproxy

// Placeholder until health/ lands: replaced by aliases of its config types
// and the wiring of its checkers.

// HealthCheckConfig configures active health checks of an upstream.
type HealthCheckConfig struct {
	Path string `yaml:"path"`
}

func (h *HealthCheckConfig) SetDefaults() {}
func (h *HealthCheckConfig) Validate() error { return nil }

// OutlierConfig configures passive outlier detection.
type OutlierConfig struct{}

func (o *OutlierConfig) SetDefaults()    {}
func (o *OutlierConfig) Validate() error { return nil }

func (e *Engine) passive(be *backend, status int, err error) {}
