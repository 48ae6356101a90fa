// Package admin owns the admin HTTP listener both binaries run beside their
// traffic listeners: Prometheus /metrics from a per-process registry,
// liveness /healthz, readiness /readyz, and whatever status pages the engine
// mounts with Handle. It binds 127.0.0.1 by default and can require a
// bearer token.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// NewRegistry returns a fresh registry (never the global default) with the
// Go runtime and process collectors registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ReadyFunc reports nil when the process is ready to take traffic, or why
// it is not.
type ReadyFunc func() error

// Server is the admin HTTP server. Handle and SetReady may be called at any
// time, also while serving.
type Server struct {
	log   *zap.Logger
	mux   *http.ServeMux
	token atomic.Pointer[string]
	ready atomic.Pointer[ReadyFunc]
	cfg   Config
}

// New builds the server; reg is served on /metrics.
func New(cfg Config, log *zap.Logger, reg *prometheus.Registry) *Server {
	s := &Server{log: log.Named("admin"), mux: http.NewServeMux(), cfg: cfg}
	s.SetToken(cfg.Token)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	return s
}

// Handle mounts h at pattern (net/http ServeMux syntax) behind the token.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, s.auth(h)) }

// SetReady installs the readiness check; without one the process is ready.
func (s *Server) SetReady(f ReadyFunc) { s.ready.Store(&f) }

// SetToken changes the bearer token (config reload); "" disables the check.
func (s *Server) SetToken(tok string) { s.token.Store(&tok) }

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if f := s.ready.Load(); f != nil && *f != nil {
		if err := (*f)(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := *s.token.Load()
		if tok != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				// Browsers opening a status page cannot set the header:
				// accept ?token= as well.
				got, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
			}
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tiergate-admin"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Listen binds the configured address.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", s.cfg.Listen, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends, then shuts down gracefully (bounded
// to a few seconds).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("admin listening", zap.String("addr", ln.Addr().String()), zap.Bool("token", *s.token.Load() != ""))
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return fmt.Errorf("admin: %w", err)
}
