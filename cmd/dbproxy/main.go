// Command dbproxy is tiergate's PostgreSQL proxy.
//
//	dbproxy -config configs/dbproxy.yaml          run
//	dbproxy -config configs/dbproxy.yaml -check   validate the file and exit 0/1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/admin"
	"github.com/tiergate/tiergate/internal/logging"
	"github.com/tiergate/tiergate/internal/pgproxy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dbproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "configs/dbproxy.yaml", "config file")
	check := fs.Bool("check", false, "validate the config, print a summary and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := pgproxy.LoadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "dbproxy: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok: %s\n", *path, cfg.Summary())
		return 0
	}
	log, _, err := logging.New(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "dbproxy: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("dbproxy stopped", zap.Error(err))
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg *pgproxy.Config, log *zap.Logger) error {
	reg := admin.NewRegistry()
	adm := admin.New(cfg.Admin, log, reg)
	ln, err := adm.Listen()
	if err != nil {
		return err
	}
	adm.SetReady(func() error { return errors.New("the Postgres proxy engine is not built yet") })
	log.Warn("the Postgres proxy engine is not built yet: only the admin listener runs")
	return adm.Serve(ctx, ln)
}
