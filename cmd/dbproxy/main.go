// Command dbproxy is tiergate's PostgreSQL proxy.
//
//	dbproxy -config configs/dbproxy.yaml          run
//	dbproxy -config configs/dbproxy.yaml -check   validate the file and exit 0/1
//	dbproxy reshard -config old.yaml -to new.yaml [-state FILE] [-cutover] [-dry-run] [-proxy host:port ...]
//	                                              move rows to a new shard map (dbproxy reshard -h)
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/admin"
	"github.com/tiergate/tiergate/internal/daemon"
	"github.com/tiergate/tiergate/internal/dashboard"
	"github.com/tiergate/tiergate/internal/logging"
	"github.com/tiergate/tiergate/internal/pgproxy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "reshard" {
		return reshardCmd(args[1:], stdout, stderr)
	}
	return daemon.Run(daemon.Spec[*pgproxy.Config]{
		Name:          "dbproxy",
		DefaultConfig: "configs/dbproxy.yaml",
		Load:          pgproxy.LoadConfig,
		Summary:       (*pgproxy.Config).Summary,
		Log:           func(c *pgproxy.Config) logging.Config { return c.Log },
		Serve:         serve,
	}, args, stdout, stderr)
}

// serve runs the proxy and its admin listener until ctx ends. SIGHUP
// reloads the config file without dropping clients.
func serve(ctx context.Context, path string, cfg *pgproxy.Config, log *zap.Logger) error {
	reg := admin.NewRegistry()
	adm := admin.New(cfg.Admin, log, reg)
	admLn, err := adm.Listen()
	if err != nil {
		return err
	}
	load := func() (*pgproxy.Config, error) { return pgproxy.LoadConfig(path) }
	srv, err := pgproxy.New(cfg, pgproxy.Options{Log: log, Registry: reg, LoadConfig: load})
	if err != nil {
		_ = admLn.Close()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = admLn.Close()
		return fmt.Errorf("dbproxy: listen %s: %w", cfg.Listen, err)
	}
	adm.SetReady(srv.Ready)
	adm.Handle("GET /status", srv.StatusHandler())
	adm.Handle("GET /{$}", dashboard.DBProxy())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				next, err := load()
				if err == nil {
					err = srv.Reload(next)
				}
				if err != nil {
					log.Error("reload failed; keeping the running config", zap.Error(err))
					continue
				}
				adm.SetToken(next.Admin.Token)
			}
		}
	}()

	admErr := make(chan error, 1)
	actx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	go func() { admErr <- adm.Serve(actx, admLn) }()
	err = srv.Serve(ctx, ln)
	stopAdmin()
	if aerr := <-admErr; err == nil {
		err = aerr
	}
	return err
}
