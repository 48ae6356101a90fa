package httpproxy

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
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

// accessLog writes one JSON line per request into a buffered writer: the
// request pays for appending bytes to a pooled buffer, not for a write
// syscall nor for a structured encoder (hand-written appends cost a third
// of zap's field encoding, which showed in the edge-features benchmark).
type accessLog struct {
	ws       *zapcore.BufferedWriteSyncer
	settings atomic.Pointer[AccessLogConfig]
	file     *os.File
	bufs     sync.Pool
}

func newAccessLog(c AccessLogConfig, _ *zap.Logger) (*accessLog, error) {
	a := &accessLog{bufs: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
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
	if a.ws == nil {
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
	a := e.access
	if !a.sampled(route, status, reason) {
		return
	}
	bp := a.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"ts":"`...)
	b = time.Now().UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, '"')
	b = appendField(b, "method", ctx.Method())
	b = appendField(b, "host", ctx.Host())
	b = appendField(b, "uri", ctx.RequestURI())
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(time.Since(start).Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"client":"`...)
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		b = tcp.AddrPort().AppendTo(b)
	}
	b = append(b, '"')
	if route != nil {
		b = appendField(b, "route", route.Name)
	}
	if up != nil {
		b = appendField(b, "upstream", up.name)
	}
	if be != nil {
		b = appendField(b, "backend", be.b.Address)
	}
	if retries > 0 {
		b = append(b, `,"retries":`...)
		b = strconv.AppendInt(b, int64(retries), 10)
	}
	if reason != "" {
		b = appendField(b, "reason", reason)
	}
	b = append(b, "}\n"...)
	_, _ = a.ws.Write(b)
	*bp = b
	a.bufs.Put(bp)
}

// appendField appends ,"key":"value" with value escaped for JSON.
func appendField[T string | []byte](b []byte, key string, value T) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':', '"')
	b = appendJSONEscaped(b, value)
	return append(b, '"')
}

// appendJSONEscaped escapes quotes, backslashes and control bytes; other
// bytes (UTF-8 included) pass through. Invalid UTF-8 is kept as is: the
// line stays one line, which is what log collectors need.
func appendJSONEscaped[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}
