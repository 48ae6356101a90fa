package cluster

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// memberlistLogger returns a *log.Logger for memberlist that writes to zap,
// at the level memberlist puts in its "[WARN] memberlist: ..." prefixes.
func memberlistLogger(z *zap.Logger) *log.Logger {
	return log.New(&levelWriter{z: z}, "", 0)
}

// levelWriter turns memberlist's prefixed lines into zap entries.
type levelWriter struct{ z *zap.Logger }

func (w *levelWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	lvl := zapcore.InfoLevel
	for _, l := range []struct {
		prefix string
		lvl    zapcore.Level
	}{{"[DEBUG]", zapcore.DebugLevel}, {"[TRACE]", zapcore.DebugLevel}, {"[INFO]", zapcore.InfoLevel}, {"[WARN]", zapcore.WarnLevel}, {"[ERR]", zapcore.ErrorLevel}, {"[ERROR]", zapcore.ErrorLevel}} {
		if bytes.HasPrefix(line, []byte(l.prefix)) {
			lvl = l.lvl
			line = bytes.TrimSpace(line[len(l.prefix):])
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	if ce := w.z.Check(lvl, string(line)); ce != nil {
		ce.Write()
	}
	return len(p), nil
}

// hclogZap adapts a *zap.Logger to hclog.Logger, which Raft wants.
type hclogZap struct {
	z       *zap.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hclogZap)(nil)

func newHCLog(z *zap.Logger) hclog.Logger { return &hclogZap{z: z} }

func (h *hclogZap) Log(level hclog.Level, msg string, args ...any) {
	var lvl zapcore.Level
	switch level {
	case hclog.Trace, hclog.Debug:
		lvl = zapcore.DebugLevel
	case hclog.Warn:
		lvl = zapcore.WarnLevel
	case hclog.Error:
		lvl = zapcore.ErrorLevel
	default:
		lvl = zapcore.InfoLevel
	}
	ce := h.z.Check(lvl, msg)
	if ce == nil {
		return
	}
	ce.Write(fields(append(append([]any(nil), h.implied...), args...))...)
}

// fields turns hclog's key/value pairs into zap fields.
func fields(args []any) []zap.Field {
	out := make([]zap.Field, 0, len(args)/2+1)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			out = append(out, zap.Any("EXTRA_VALUE", args[i]))
			break
		}
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		out = append(out, zap.Any(key, args[i+1]))
	}
	return out
}

func (h *hclogZap) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogZap) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogZap) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogZap) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogZap) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogZap) IsTrace() bool { return false }
func (h *hclogZap) IsDebug() bool { return h.z.Core().Enabled(zapcore.DebugLevel) }
func (h *hclogZap) IsInfo() bool  { return h.z.Core().Enabled(zapcore.InfoLevel) }
func (h *hclogZap) IsWarn() bool  { return h.z.Core().Enabled(zapcore.WarnLevel) }
func (h *hclogZap) IsError() bool { return h.z.Core().Enabled(zapcore.ErrorLevel) }

func (h *hclogZap) ImpliedArgs() []any { return h.implied }

func (h *hclogZap) With(args ...any) hclog.Logger {
	return &hclogZap{z: h.z, name: h.name, implied: append(append([]any(nil), h.implied...), args...)}
}

func (h *hclogZap) Name() string { return h.name }

func (h *hclogZap) Named(name string) hclog.Logger {
	n := name
	if h.name != "" {
		n = h.name + "." + name
	}
	return &hclogZap{z: h.z.Named(name), name: n, implied: h.implied}
}

func (h *hclogZap) ResetNamed(name string) hclog.Logger {
	return &hclogZap{z: h.z.Named(name), name: name, implied: h.implied}
}

// SetLevel is a no-op: the zap logger's level decides.
func (h *hclogZap) SetLevel(hclog.Level) {}

func (h *hclogZap) GetLevel() hclog.Level {
	switch {
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (h *hclogZap) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return zap.NewStdLog(h.z)
}

func (h *hclogZap) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &levelWriter{z: h.z}
}
