package httpproxy

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/router/httproute"
)

// AccessLogConfig is the `access_log:` section.
type AccessLogConfig struct {
	// Enabled turns the access log on. Default false.
	Enabled bool `yaml:"enabled"`
	// Output is "stdout" (default), "stderr" or a file path (appended).
	Output string `yaml:"output"`
	// Sample is the fraction of successful requests logged, 0..1.
	// Default 1. Errors (status >= 500 or an edge-side failure) are always
	// logged.
	Sample *float64 `yaml:"sample"`
	// Routes overrides Sample per route name.
	Routes map[string]float64 `yaml:"routes"`
	// BufferSize is how much is buffered before a write; the buffer is
	// also flushed every second. Default 256KiB.
	BufferSize config.ByteSize `yaml:"buffer_size"`
}

// SetDefaults fills in the documented defaults.
func (c *AccessLogConfig) SetDefaults() {
	if c.Output == "" {
		c.Output = "stdout"
	}
	if c.Sample == nil {
		one := 1.0
		c.Sample = &one
	}
	if c.BufferSize == 0 {
		c.BufferSize = 256 << 10
	}
}

// Validate checks the sampling rates.
func (c *AccessLogConfig) Validate() error {
	var errs []error
	if *c.Sample < 0 || *c.Sample > 1 {
		errs = append(errs, config.Errorf("sample", "%v is outside 0..1", *c.Sample))
	}
	for name, r := range c.Routes {
		if r < 0 || r > 1 {
			errs = append(errs, config.Errorf(config.Key("routes", name), "%v is outside 0..1", r))
		}
	}
	return config.Join(errs...)
}

// accessLog writes one line per request through a buffered zap core, so a
// request pays for encoding into memory but not for a write syscall.
type accessLog struct {
	log      *zap.Logger
	ws       *zapcore.BufferedWriteSyncer
	settings atomic.Pointer[AccessLogConfig]
	file     *os.File
}

func newAccessLog(c AccessLogConfig, parent *zap.Logger) (*accessLog, error) {
	a := &accessLog{}
	a.settings.Store(&c)
	if !c.Enabled {
		return a, nil
	}
	var w zapcore.WriteSyncer
	switch c.Output {
	case "stdout":
		w = zapcore.AddSync(os.Stdout)
	case "stderr":
		w = zapcore.AddSync(os.Stderr)
	default:
		f, err := os.OpenFile(c.Output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		a.file = f
		w = f
	}
	a.ws = &zapcore.BufferedWriteSyncer{WS: w, Size: int(c.BufferSize), FlushInterval: time.Second}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.MessageKey = ""
	enc.LevelKey = ""
	enc.CallerKey = ""
	a.log = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), a.ws, zap.InfoLevel))
	_ = parent
	return a, nil
}

// reconfigure applies new sampling settings; the output stays.
func (a *accessLog) reconfigure(c AccessLogConfig) error {
	old := a.settings.Load()
	a.settings.Store(&c)
	if c.Enabled != old.Enabled || c.Output != old.Output {
		return fmt.Errorf("access_log.enabled and access_log.output need a restart")
	}
	return nil
}

func (a *accessLog) close() {
	if a.ws != nil {
		_ = a.ws.Stop()
	}
	if a.file != nil {
		_ = a.file.Close()
	}
}

func (a *accessLog) sampled(route *httproute.Route, status int, reason string) bool {
	if a.log == nil {
		return false
	}
	if status >= 500 || reason != "" {
		return true
	}
	c := a.settings.Load()
	rate := *c.Sample
	if route != nil {
		if r, ok := c.Routes[route.Name]; ok {
			rate = r
		}
	}
	return rate >= 1 || (rate > 0 && rand.Float64() < rate)
}

// logAccess writes the access-log line for a finished request (or skips it
// per sampling).
func (e *Engine) logAccess(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, be *backend, start time.Time, retries int, reason string) {
	status := ctx.Response.StatusCode()
	if !e.access.sampled(route, status, reason) {
		return
	}
	fields := make([]zap.Field, 0, 12)
	fields = append(fields,
		zap.ByteString("method", ctx.Method()),
		zap.ByteString("host", ctx.Host()),
		zap.ByteString("uri", ctx.RequestURI()),
		zap.Int("status", status),
		zap.Duration("duration", time.Since(start)),
		zap.Stringer("client", ctx.RemoteAddr()),
	)
	if route != nil {
		fields = append(fields, zap.String("route", route.Name))
	}
	if up != nil {
		fields = append(fields, zap.String("upstream", up.name))
	}
	if be != nil {
		fields = append(fields, zap.String("backend", be.b.Address))
	}
	if retries > 0 {
		fields = append(fields, zap.Int("retries", retries))
	}
	if reason != "" {
		fields = append(fields, zap.String("reason", reason))
	}
	e.access.log.Info("", fields...)
}
