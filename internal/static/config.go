package static

import (
	"os"
	"strings"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// Defaults of the static section.
const (
	DefaultIndex  = "index.html"
	DefaultMaxAge = time.Hour
)

// Config is the static action of one route:
//
//	static:
//	  root: /srv/www/assets
//	  strip_prefix: /assets
//	  max_age: 10m
type Config struct {
	// Root is the directory served. Required; it must exist. Paths never
	// leave it: symbolic links pointing outside it are not followed.
	Root string `yaml:"root"`
	// StripPrefix is removed from the request path before it is looked up
	// under Root, so route "/assets/" with strip_prefix "/assets" serves
	// /assets/app.js from Root/app.js. Requests outside the prefix get 404.
	// Default: none.
	StripPrefix string `yaml:"strip_prefix"`
	// Index is the file served for a directory path ending in "/".
	// Default "index.html"; "" disables index files (directories are then
	// 404). Directory listings are never generated.
	Index *string `yaml:"index"`
	// MaxAge is the Cache-Control max-age of files that are not
	// fingerprinted. Default 1h; 0 sends "no-cache" (clients revalidate
	// every time, cheaply, with the ETag).
	MaxAge *time.Duration `yaml:"max_age"`
	// ImmutableFingerprints gives fingerprinted files (a hex hash of at
	// least 6 characters as a dot-separated part of the name, such as
	// app.3f9a1c.js) "Cache-Control: public, max-age=31536000, immutable".
	// Default true.
	ImmutableFingerprints *bool `yaml:"immutable_fingerprints"`
	// Compress serves a precompressed sibling (file.br, file.gz) to
	// clients that accept it, or compresses compressible files in memory.
	// Default true.
	Compress *bool `yaml:"compress"`
}

// SetDefaults fills unset fields with the defaults documented on them.
func (c *Config) SetDefaults() {
	if c.Index == nil {
		s := DefaultIndex
		c.Index = &s
	}
	if c.MaxAge == nil {
		d := DefaultMaxAge
		c.MaxAge = &d
	}
	if c.ImmutableFingerprints == nil {
		on := true
		c.ImmutableFingerprints = &on
	}
	if c.Compress == nil {
		on := true
		c.Compress = &on
	}
}

// Validate reports every problem at once; call SetDefaults first. It
// checks that Root exists and is a directory.
func (c *Config) Validate() error {
	var errs []error
	if c.Root == "" {
		errs = append(errs, config.Errorf("root", "is required"))
	} else if fi, err := os.Stat(c.Root); err != nil {
		errs = append(errs, config.Errorf("root", "%v", err))
	} else if !fi.IsDir() {
		errs = append(errs, config.Errorf("root", "%q is not a directory", c.Root))
	}
	if p := c.StripPrefix; p != "" {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, config.Errorf("strip_prefix", "%q must start with /", p))
		} else if err := checkPath([]byte(strings.TrimSuffix(p, "/") + "/")); err != nil {
			errs = append(errs, config.Errorf("strip_prefix", "%q is not a clean path", p))
		}
	}
	if c.Index != nil && *c.Index != "" {
		if ix := *c.Index; strings.ContainsAny(ix, "/\\\x00") || strings.HasPrefix(ix, ".") {
			errs = append(errs, config.Errorf("index", "%q must be a plain file name", ix))
		}
	}
	if c.MaxAge != nil && *c.MaxAge < 0 {
		errs = append(errs, config.Errorf("max_age", "must not be negative, got %v", *c.MaxAge))
	}
	return config.Join(errs...)
}
