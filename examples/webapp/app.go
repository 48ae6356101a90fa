package main

import (
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/config"
)

// appConfig is the app's behaviour, set from flags.
type appConfig struct {
	// Name is the instance name sent in X-Backend on every response.
	// Default "web1".
	Name string
	// ServeStatic serves /static/ from the embedded files, for running
	// without the edge. Default false.
	ServeStatic bool
	// PasswordIterations is the PBKDF2 iteration count for new password
	// hashes. Default DefaultPasswordIterations.
	PasswordIterations int
	// SessionTTL is how long a login lasts. Default 7 days.
	SessionTTL time.Duration
	// DBTimeout bounds the database work of one request. Default 5s.
	DBTimeout time.Duration
	// HealthTimeout bounds the /healthz database check. Default 1s.
	HealthTimeout time.Duration
}

// SetDefaults fills zero fields with their defaults.
func (c *appConfig) SetDefaults() {
	if c.Name == "" {
		c.Name = "web1"
	}
	if c.PasswordIterations == 0 {
		c.PasswordIterations = DefaultPasswordIterations
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 7 * 24 * time.Hour
	}
	if c.DBTimeout == 0 {
		c.DBTimeout = 5 * time.Second
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = time.Second
	}
}

// Validate reports every invalid field.
func (c *appConfig) Validate() error {
	var errs []error
	if c.PasswordIterations < 1 || c.PasswordIterations > maxPasswordIterations {
		errs = append(errs, config.Errorf("password_iterations", "%d is not in 1..%d", c.PasswordIterations, maxPasswordIterations))
	}
	if c.SessionTTL < time.Minute {
		errs = append(errs, config.Errorf("session_ttl", "%v is shorter than a minute", c.SessionTTL))
	}
	if c.DBTimeout <= 0 {
		errs = append(errs, config.Errorf("db_timeout", "%v must be positive", c.DBTimeout))
	}
	if c.HealthTimeout <= 0 {
		errs = append(errs, config.Errorf("health_timeout", "%v must be positive", c.HealthTimeout))
	}
	return config.Join(errs...)
}

// maxFormBytes caps a POST body.
const maxFormBytes = 64 << 10

// app is one stateless instance of the web tier: everything a request needs
// beyond its cookies lives in PostgreSQL, so any instance serves any request.
type app struct {
	cfg       appConfig
	db        *store
	log       *zap.Logger
	pages     map[string]*template.Template
	dummyHash string // checked when a login names no user, so timing does not tell
	handler   http.Handler
}

var _ http.Handler = (*app)(nil)

// newApp builds the handler. cfg must have its defaults set and be valid.
func newApp(cfg appConfig, pool *connPool, log *zap.Logger) (*app, error) {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	assets, err := assetNames(static)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages(assets)
	if err != nil {
		return nil, err
	}
	dummy, err := hashPassword("not a real password", cfg.PasswordIterations)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, db: &store{pool: pool}, log: log, pages: pages, dummyHash: dummy}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.feed)
	mux.HandleFunc("GET /u/{id}", a.userPage)
	mux.HandleFunc("GET /me", a.me)
	mux.HandleFunc("GET /login", a.loginForm)
	mux.HandleFunc("POST /signup", a.signup)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /posts", a.createPost)
	mux.HandleFunc("GET /healthz", a.healthz)
	if cfg.ServeStatic {
		mux.Handle("GET "+staticPrefix, staticHandler(static))
	}
	a.handler = mux
	return a, nil
}

// ServeHTTP adds the headers every response carries, bounds the request's
// database time and body size, and dispatches.
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Backend", a.cfg.Name)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.DBTimeout)
	defer cancel()
	a.handler.ServeHTTP(w, r.WithContext(ctx))
}

// dbFailed logs a database error and answers 503: the database (or the
// proxy in front of it) is the part that failed, and the edge may retry
// elsewhere or later.
func (a *app) dbFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.Warn("database", zap.String("op", what), zap.String("path", r.URL.Path), zap.Error(err))
	a.renderError(w, http.StatusServiceUnavailable, "Temporarily unavailable",
		fmt.Sprintf("The database did not answer (%s). Try again in a moment.", what))
}
