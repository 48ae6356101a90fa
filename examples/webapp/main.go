// Command webapp is the stateless web tier of tiergate's demo: a small
// posting site (sign up, log in, post, a public feed) whose every piece of
// state lives in PostgreSQL, so the edge can send any request to any
// instance. It talks to one database DSN: plain PostgreSQL, or dbproxy
// standing in front of sharded, replicated clusters (see schema.sql for the
// sharding assumptions).
//
//	webapp -db postgres://... -init-db              create the tables, then serve
//	webapp -name web2 -listen 127.0.0.1:8082         a second instance
//	webapp -serve-static                             also serve /static/ (no edge)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// flags are the command line.
type flags struct {
	listen      string
	dsn         string
	name        string
	initDB      bool
	serveStatic bool
	maxConns    int
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8081", "address to serve HTTP on")
	fs.StringVar(&f.dsn, "db", os.Getenv("DATABASE_URL"), "PostgreSQL DSN, plain PostgreSQL or dbproxy (default $DATABASE_URL)")
	fs.StringVar(&f.name, "name", "web1", "instance name, sent in the X-Backend header")
	fs.BoolVar(&f.initDB, "init-db", false, "apply schema.sql (idempotent) before serving")
	fs.BoolVar(&f.serveStatic, "serve-static", false, "serve /static/ too, for running without the edge")
	fs.IntVar(&f.maxConns, "max-conns", 10, "maximum database connections")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if f.dsn == "" {
		return f, errors.New("no database: set -db or $DATABASE_URL")
	}
	return f, nil
}

func run(args []string, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "webapp:", err)
		return 2
	}
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(stderr, "webapp:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("instance", f.name))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, f, log, nil); err != nil {
		log.Error("exit", zap.Error(err))
		return 1
	}
	return 0
}

// serve runs the app until ctx ends, then drains in-flight requests.
// onListen, if set, learns the bound address (tests listen on port 0).
func serve(ctx context.Context, f flags, log *zap.Logger, onListen func(addr string)) error {
	cfg := appConfig{Name: f.name, ServeStatic: f.serveStatic}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	pool, err := newConnPool(f.dsn, f.maxConns)
	if err != nil {
		return err
	}
	defer pool.close()
	a, err := newApp(cfg, pool, log)
	if err != nil {
		return err
	}
	if f.initDB {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.db.initSchema(ictx)
		cancel()
		if err != nil {
			return err
		}
		log.Info("schema applied")
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", zap.String("listen", ln.Addr().String()), zap.Bool("serve_static", f.serveStatic))
	if onListen != nil {
		onListen(ln.Addr().String())
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
