// Command edge is tiergate's L7 HTTP load balancer.
//
//	edge -config configs/edge.yaml          run
//	edge -config configs/edge.yaml -check   validate the file and exit 0/1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/admin"
	"github.com/tiergate/tiergate/internal/dashboard"
	"github.com/tiergate/tiergate/internal/httpproxy"
	"github.com/tiergate/tiergate/internal/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "configs/edge.yaml", "config file")
	check := fs.Bool("check", false, "validate the config, print a summary and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := httpproxy.LoadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "edge: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok: %s\n", *path, cfg.Summary())
		return 0
	}
	log, _, err := logging.New(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "edge: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *path, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("edge stopped", zap.Error(err))
		return 1
	}
	return 0
}

func serve(ctx context.Context, path string, cfg *httpproxy.Config, log *zap.Logger) error {
	return serveWithPoll(ctx, path, cfg, log, 0)
}

// serveWithPoll is serve with the config-file poll interval (0 = default).
func serveWithPoll(ctx context.Context, path string, cfg *httpproxy.Config, log *zap.Logger, poll time.Duration) error {
	reg := admin.NewRegistry()
	eng, err := httpproxy.New(cfg, log, reg)
	if err != nil {
		return err
	}
	adm := admin.New(cfg.Admin, log, reg)
	adm.Handle("GET /status", eng.StatusHandler())
	adm.Handle("POST /cache/purge", eng.PurgeHandler())
	adm.Handle("GET /{$}", dashboard.Edge())
	adm.SetReady(eng.Ready)
	aln, err := adm.Listen()
	if err != nil {
		return err
	}
	lns, err := eng.Listen()
	if err != nil {
		_ = aln.Close()
		return err
	}
	rl := &reloader{path: path, log: log, poll: poll, apply: func(c *httpproxy.Config) error {
		if err := eng.Reload(c); err != nil {
			return err
		}
		adm.SetToken(c.Admin.Token)
		return nil
	}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); rl.run(ctx) }()
	go func() {
		defer wg.Done()
		if err := adm.Serve(ctx, aln); err != nil {
			log.Error("admin listener", zap.Error(err))
		}
	}()
	err = eng.Serve(ctx, lns)
	cancel()
	wg.Wait()
	return err
}
