package querycache

import (
	"strconv"
	"strings"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// Config is the query_cache section of dbproxy's config: the memory and
// time bounds shared by every database. Which queries are cached is chosen
// per database (Rules) and by hints in the query text.
type Config struct {
	// Enabled turns the cache on. Default: true (nothing is cached unless a
	// database has cache rules or a query carries a cache hint).
	Enabled *bool `yaml:"enabled"`
	// MaxSize bounds the bytes of all cached results (keys and encoded
	// messages plus a fixed overhead per entry); least useful entries are
	// evicted beyond it. Default: 64MiB.
	MaxSize config.ByteSize `yaml:"max_size"`
	// MaxEntrySize is the largest result that is cached; bigger results
	// are relayed and not kept. Default: 1MiB.
	MaxEntrySize config.ByteSize `yaml:"max_entry_size"`
	// DefaultTTL is the lifetime of results cached by a hint without
	// ttl= and by rules without a ttl. Default: 30s.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL caps every TTL, including hints'. Default: 1h.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// InvalidationGrace: a result is not stored when a table it reads was
	// invalidated less than this long before the query started, because a
	// lagging replica may still have answered with the old rows. Set it at
	// least to the replica lag you tolerate. Default: 1s.
	InvalidationGrace time.Duration `yaml:"invalidation_grace"`
	// Hints: honour /* tiergate: cache [ttl=...] */ in query text on every
	// database. Default: true.
	Hints *bool `yaml:"hints"`
	// BroadcastDelay is how long local invalidations are collected before
	// one message goes to the peer proxies. Default: 5ms.
	BroadcastDelay time.Duration `yaml:"broadcast_delay"`
	// CoalesceTimeout: concurrent misses of one key run the query once;
	// the others wait this long at most for its result, then run their
	// own. 0 turns coalescing off. Default: 5s.
	CoalesceTimeout *time.Duration `yaml:"coalesce_timeout"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Enabled == nil {
		t := true
		c.Enabled = &t
	}
	if c.MaxSize == 0 {
		c.MaxSize = 64 << 20
	}
	if c.MaxEntrySize == 0 {
		c.MaxEntrySize = 1 << 20
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = 30 * time.Second
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = time.Hour
	}
	if c.InvalidationGrace == 0 {
		c.InvalidationGrace = time.Second
	}
	if c.Hints == nil {
		t := true
		c.Hints = &t
	}
	if c.CoalesceTimeout == nil {
		d := 5 * time.Second
		c.CoalesceTimeout = &d
	}
	if c.BroadcastDelay == 0 {
		c.BroadcastDelay = 5 * time.Millisecond
	}
}

// On reports whether the cache is enabled.
func (c *Config) On() bool { return c.Enabled == nil || *c.Enabled }

// Coalesce is how long a miss waits for a concurrent identical one (0: it
// does not).
func (c Config) Coalesce() time.Duration {
	if c.CoalesceTimeout == nil {
		return 0
	}
	return *c.CoalesceTimeout
}

// HintsOn reports whether cache hints are honoured.
func (c *Config) HintsOn() bool { return c.Hints == nil || *c.Hints }

// Validate checks the section (after SetDefaults).
func (c *Config) Validate() error {
	var errs []error
	if c.MaxSize < 0 {
		errs = append(errs, config.Errorf("max_size", "must not be negative"))
	}
	if c.MaxEntrySize < 0 {
		errs = append(errs, config.Errorf("max_entry_size", "must not be negative"))
	}
	if c.MaxEntrySize > c.MaxSize {
		errs = append(errs, config.Errorf("max_entry_size", "%v is larger than max_size %v", c.MaxEntrySize, c.MaxSize))
	}
	if c.DefaultTTL < 0 {
		errs = append(errs, config.Errorf("default_ttl", "must not be negative"))
	}
	if c.MaxTTL < c.DefaultTTL {
		errs = append(errs, config.Errorf("max_ttl", "%v is shorter than default_ttl %v", c.MaxTTL, c.DefaultTTL))
	}
	if c.InvalidationGrace < 0 {
		errs = append(errs, config.Errorf("invalidation_grace", "must not be negative"))
	}
	if c.CoalesceTimeout != nil && *c.CoalesceTimeout < 0 {
		errs = append(errs, config.Errorf("coalesce_timeout", "must not be negative"))
	}
	if c.BroadcastDelay < 0 || c.BroadcastDelay > time.Second {
		errs = append(errs, config.Errorf("broadcast_delay", "must be between 0 and 1s"))
	}
	return config.Join(errs...)
}

// Rules is a database's cache section: which of its read queries are
// cached without a hint.
type Rules struct {
	// Tables: a read-only query is cached when every table it reads is
	// listed ("products" matches products in any schema, "shop.products"
	// only that one). Default: none.
	Tables []string `yaml:"tables"`
	// Digests: queries whose digest (as EXPLAIN ROUTE and SHOW CACHE
	// print it, hex) is listed are cached whatever they read, also when
	// they call functions that are not built in. Default: none.
	Digests []string `yaml:"digests"`
	// TTL of results cached by these rules. Default: query_cache.default_ttl.
	TTL time.Duration `yaml:"ttl"`
}

// Validate checks the section.
func (r *Rules) Validate() error {
	var errs []error
	for i, t := range r.Tables {
		if _, _, ok := splitRuleTable(t); !ok {
			errs = append(errs, config.Errorf(config.Index("tables", i), "%q is not a table name (name or schema.name)", t))
		}
	}
	for i, d := range r.Digests {
		if _, err := parseDigest(d); err != nil {
			errs = append(errs, config.Errorf(config.Index("digests", i), "%q is not a hex digest", d))
		}
	}
	if r.TTL < 0 {
		errs = append(errs, config.Errorf("ttl", "must not be negative"))
	}
	return config.Join(errs...)
}

func parseDigest(s string) (uint64, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	return strconv.ParseUint(s, 16, 64)
}

// FormatDigest prints a digest the way Rules.Digests expects it.
func FormatDigest(d uint64) string { return strconv.FormatUint(d, 16) }
