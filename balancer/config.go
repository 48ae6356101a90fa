package balancer

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tiergate/tiergate/internal/config"
)

// Config is the balancing section of an upstream (edge) or replica set
// (dbproxy).
type Config struct {
	// Policy is the algorithm, one of Policies(): round_robin,
	// weighted_round_robin, least_conn, p2c_ewma, consistent_hash, random.
	// Default round_robin.
	Policy string `yaml:"policy"`
	// HashKey tells the engine where to take the consistent_hash key from:
	// "header:NAME", "cookie:NAME", "client_ip" or "path" (see ParseHashKey).
	// Required with consistent_hash and rejected with other policies. The
	// balancer only validates it; the engine extracts the key into
	// PickInfo.Key.
	HashKey string `yaml:"hash_key"`
	// SlowStart ramps a backend that just became healthy (or whose ejection
	// ended) from 10% to 100% of its weight over this long. Default 0: off.
	// consistent_hash ignores it.
	SlowStart time.Duration `yaml:"slow_start"`
	// PanicMode makes Pick fall back to every non-draining backend, healthy
	// or not, when none is available, instead of failing with ErrNoBackend.
	// Default false; the edge enables it.
	PanicMode bool `yaml:"panic_mode"`
}

// SetDefaults fills in the default policy.
func (c *Config) SetDefaults() {
	if c.Policy == "" {
		c.Policy = RoundRobin
	}
}

// Validate reports every problem, with yaml field names as paths.
func (c *Config) Validate() error {
	var errs []error
	if err := config.CheckOneOf("policy", c.Policy, Policies()...); err != nil {
		errs = append(errs, err)
	}
	keyed := c.Policy == ConsistentHash || c.Policy == StickyCookie
	switch {
	case keyed && c.HashKey == "":
		errs = append(errs, config.Errorf("hash_key", "is required with policy %s", c.Policy))
	case !keyed && c.HashKey != "":
		errs = append(errs, config.Errorf("hash_key", "is only used with policies %s and %s, not %q", ConsistentHash, StickyCookie, c.Policy))
	case c.Policy == StickyCookie && !strings.HasPrefix(c.HashKey, "cookie:"):
		errs = append(errs, config.Errorf("hash_key", "%q: policy %s needs cookie:NAME", c.HashKey, StickyCookie))
	case c.HashKey != "":
		if _, err := ParseHashKey(c.HashKey); err != nil {
			errs = append(errs, config.Errorf("hash_key", "%v", err))
		}
	}
	if c.SlowStart < 0 {
		errs = append(errs, config.Errorf("slow_start", "%v is negative", c.SlowStart))
	}
	return config.Join(errs...)
}

// HashSource is where a consistent_hash key comes from.
type HashSource string

// Hash key sources.
const (
	HashHeader   HashSource = "header"    // a request header, by name
	HashCookie   HashSource = "cookie"    // a cookie, by name
	HashClientIP HashSource = "client_ip" // the client address
	HashPath     HashSource = "path"      // the request path
)

// HashKey is a parsed Config.HashKey.
type HashKey struct {
	Source HashSource
	Name   string // header or cookie name; empty for client_ip and path
}

// String returns the Config.HashKey form.
func (k HashKey) String() string {
	if k.Name == "" {
		return string(k.Source)
	}
	return string(k.Source) + ":" + k.Name
}

// ErrHashKey is wrapped by ParseHashKey errors.
var ErrHashKey = errors.New("invalid hash key")

// ParseHashKey parses "header:NAME", "cookie:NAME", "client_ip" or "path".
// NAME must be an RFC 9110 token.
func ParseHashKey(s string) (HashKey, error) {
	src, name, hasName := strings.Cut(s, ":")
	switch HashSource(src) {
	case HashHeader, HashCookie:
		if !hasName || name == "" {
			return HashKey{}, fmt.Errorf("%w: %q needs a name, e.g. %s:X-User", ErrHashKey, s, src)
		}
		if i := strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }); i >= 0 {
			r, _ := utf8.DecodeRuneInString(name[i:])
			return HashKey{}, fmt.Errorf("%w: %q: name has invalid character %q", ErrHashKey, s, r)
		}
		return HashKey{Source: HashSource(src), Name: name}, nil
	case HashClientIP, HashPath:
		if hasName {
			return HashKey{}, fmt.Errorf("%w: %q: %s takes no name", ErrHashKey, s, src)
		}
		return HashKey{Source: HashSource(src)}, nil
	default:
		return HashKey{}, fmt.Errorf("%w: %q is not header:NAME, cookie:NAME, client_ip or path", ErrHashKey, s)
	}
}

// isTokenChar reports whether r is an RFC 9110 tchar.
func isTokenChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	default:
		return r < 0x80 && strings.ContainsRune("!#$%&'*+-.^_`|~", r)
	}
}
