package sqlroute

import (
	"strings"

	"github.com/tiergate/tiergate/internal/config"
)

// Defaults for Config.
const (
	DefaultCacheSize     = 10000
	DefaultMaxParseBytes = config.ByteSize(1 << 20)
)

var (
	_ config.Defaulter = (*Config)(nil)
	_ config.Validator = (*Config)(nil)
)

// Config is the statement-routing section of the dbproxy config.
type Config struct {
	// WriteFunctions lists user-defined functions whose call anywhere in a
	// statement sends it to the primary, in addition to the built-in writers
	// (nextval, setval, pg_advisory_*, pg_notify, lo_* writes, txid_current,
	// ...). "name" matches the function in any schema, "schema.name" only in
	// that schema. Matching ignores case. Default: none.
	WriteFunctions []string `yaml:"write_functions"`
	// VolatileFunctions lists user-defined functions whose result can
	// differ between two calls over the same data (they read the clock, a
	// sequence, a setting, another server, ...): a statement calling one
	// gets FlagVolatile, so the query cache does not keep its result, in
	// addition to the built-in volatile functions (now, random,
	// clock_timestamp, gen_random_uuid, nextval, current_setting, ...).
	// Matching is as for write_functions. Default: none.
	VolatileFunctions []string `yaml:"volatile_functions"`
	// CacheSize bounds the digest-to-decision cache, in entries (one per
	// query shape). Default 10000.
	CacheSize int `yaml:"cache_size"`
	// MaxParseBytes: a statement longer than this is not parsed; it goes to
	// the primary with reason "too large to parse". Default 1MiB.
	MaxParseBytes config.ByteSize `yaml:"max_parse_bytes"`
}

// SetDefaults fills zero values with the defaults.
func (c *Config) SetDefaults() {
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MaxParseBytes == 0 {
		c.MaxParseBytes = DefaultMaxParseBytes
	}
}

// Validate reports every problem in c; call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	for i, name := range c.WriteFunctions {
		if err := checkFunctionName(name); err != nil {
			errs = append(errs, config.At("write_functions", i, err))
		}
	}
	for i, name := range c.VolatileFunctions {
		if err := checkFunctionName(name); err != nil {
			errs = append(errs, config.At("volatile_functions", i, err))
		}
	}
	if c.CacheSize < 1 {
		errs = append(errs, config.Errorf("cache_size", "must be at least 1, got %d", c.CacheSize))
	}
	if c.MaxParseBytes < 1 {
		errs = append(errs, config.Errorf("max_parse_bytes", "must be positive, got %d", c.MaxParseBytes))
	}
	return config.Join(errs...)
}

// checkFunctionName accepts "name" and "schema.name".
func checkFunctionName(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return config.Errorf("", "%q: want name or schema.name", name)
	}
	for _, p := range parts {
		if p == "" {
			return config.Errorf("", "%q: want name or schema.name", name)
		}
		if strings.ContainsAny(p, " \t\r\n()\"';,") {
			return config.Errorf("", "%q: a function name has no spaces, quotes, parentheses or argument list", name)
		}
	}
	return nil
}
