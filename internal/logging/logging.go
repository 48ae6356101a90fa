// Package logging builds the process's *zap.Logger from config. The logger
// is passed down explicitly through constructors; tiergate uses no global
// logger.
package logging

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tiergate/tiergate/internal/config"
)

// Config is the `log:` section of both binaries.
type Config struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format is json (one object per line, for collectors) or console
	// (human readable). Default: json.
	Format string `yaml:"format"`
}

// SetDefaults fills in the documented defaults.
func (c *Config) SetDefaults() {
	if c.Level == "" {
		c.Level = "info"
	}
	if c.Format == "" {
		c.Format = "json"
	}
}

// Validate reports an unknown level or format.
func (c *Config) Validate() error {
	return config.Join(
		config.CheckOneOf("level", c.Level, "debug", "info", "warn", "error"),
		config.CheckOneOf("format", c.Format, "json", "console"),
	)
}

// New returns a logger writing to stderr. It also returns the AtomicLevel so
// a config reload can change the level without a new logger.
func New(c Config) (*zap.Logger, zap.AtomicLevel, error) {
	return NewTo(c, os.Stderr)
}

// NewTo is New with an explicit destination (tests use a buffer).
func NewTo(c Config, w io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	c.SetDefaults()
	lvl, err := zap.ParseAtomicLevel(c.Level)
	if err != nil {
		return nil, lvl, fmt.Errorf("logging: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch c.Format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, lvl, fmt.Errorf("logging: unknown format %q", c.Format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core, zap.AddCaller()), lvl, nil
}
