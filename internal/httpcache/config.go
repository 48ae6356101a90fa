package httpcache

import (
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// Defaults of the cache section.
const (
	DefaultMaxSize         = 64 << 20
	DefaultMaxObjectSize   = 1 << 20
	DefaultCoalesceTimeout = 5 * time.Second
)

// maxObjectLimit bounds max_object_size: an entry's weight is a uint32 in
// the eviction policy, and a single cached object this large is a mistake.
const maxObjectLimit = 1 << 30

// Config is the cache section of one route:
//
//	cache:
//	  enabled: true
//	  max_size: 256MiB
//	  default_ttl: 1m
//	  stale_if_error: 1h
type Config struct {
	// Enabled turns the cache on for the route. Default false.
	Enabled bool `yaml:"enabled"`
	// MaxSize bounds the memory held by cached responses (bodies, headers
	// and bookkeeping), enforced by size-aware eviction. Default 64MiB.
	MaxSize config.ByteSize `yaml:"max_size"`
	// MaxObjectSize is the largest response body stored; larger responses
	// are passed through (streamed) and not cached. Default 1MiB, at most
	// max_size and 1GiB.
	MaxObjectSize config.ByteSize `yaml:"max_object_size"`
	// DefaultTTL is the freshness lifetime given to cacheable responses
	// that carry no freshness information (no s-maxage, max-age or
	// Expires). Default 0: such responses are stored only when they carry
	// a validator (ETag or Last-Modified) and are then revalidated on every
	// use. Heuristic freshness (RFC 9111 4.2.2) is never used.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// StaleWhileRevalidate is how long after a response went stale it may
	// still be served while one background request refreshes it, for
	// responses without their own stale-while-revalidate directive (the
	// response's directive wins). Default 0.
	StaleWhileRevalidate time.Duration `yaml:"stale_while_revalidate"`
	// StaleIfError is how long after a response went stale it may still
	// be served when the origin fails (connection error, timeout, 500,
	// 502, 503, 504), for responses without their own stale-if-error
	// directive (the response's directive wins). Default 0.
	StaleIfError time.Duration `yaml:"stale_if_error"`
	// HonorClientNoCache makes a request's "Cache-Control: no-cache" or
	// "max-age=0" (or "Pragma: no-cache") force revalidation with the
	// origin. Default false: like most CDNs, the cache ignores them, so a
	// browser reload cannot push load onto the origin.
	HonorClientNoCache bool `yaml:"honor_client_no_cache"`
	// CoalesceTimeout bounds how long a request waits for another
	// request's fetch of the same key before it fetches on its own.
	// Default 5s.
	CoalesceTimeout time.Duration `yaml:"coalesce_timeout"`
}

// SetDefaults fills zero values with the defaults documented on the fields.
func (c *Config) SetDefaults() {
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.CoalesceTimeout == 0 {
		c.CoalesceTimeout = DefaultCoalesceTimeout
	}
}

// Validate reports every problem at once; call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxSize <= 0 {
		errs = append(errs, config.Errorf("max_size", "must be positive, got %v", c.MaxSize))
	}
	switch {
	case c.MaxObjectSize <= 0:
		errs = append(errs, config.Errorf("max_object_size", "must be positive, got %v", c.MaxObjectSize))
	case c.MaxObjectSize > maxObjectLimit:
		errs = append(errs, config.Errorf("max_object_size", "%v is over the 1GiB limit", c.MaxObjectSize))
	case c.MaxSize > 0 && c.MaxObjectSize > c.MaxSize:
		errs = append(errs, config.Errorf("max_object_size", "%v is larger than max_size %v", c.MaxObjectSize, c.MaxSize))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"default_ttl", c.DefaultTTL},
		{"stale_while_revalidate", c.StaleWhileRevalidate},
		{"stale_if_error", c.StaleIfError},
		{"coalesce_timeout", c.CoalesceTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, config.Errorf(d.name, "must not be negative, got %v", d.v))
		}
	}
	return config.Join(errs...)
}
