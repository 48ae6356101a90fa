// Command edge is tiergate's L7 HTTP load balancer.
//
//	edge -config configs/edge.yaml          run
//	edge -config configs/edge.yaml -check   validate the file and exit 0/1
package main

import (
	"context"
	"io"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/admin"
	"github.com/tiergate/tiergate/internal/daemon"
	"github.com/tiergate/tiergate/internal/dashboard"
	"github.com/tiergate/tiergate/internal/httpproxy"
	"github.com/tiergate/tiergate/internal/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return daemon.Run(daemon.Spec[*httpproxy.Config]{
		Name:          "edge",
		DefaultConfig: "configs/edge.yaml",
		Load:          httpproxy.LoadConfig,
		Summary:       (*httpproxy.Config).Summary,
		Log:           func(c *httpproxy.Config) logging.Config { return c.Log },
		Serve:         serve,
	}, args, stdout, stderr)
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
