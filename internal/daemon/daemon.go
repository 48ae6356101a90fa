// Package daemon is the command-line front shared by tiergate's two
// daemons (cmd/edge, cmd/dbproxy): the -config and -check flags, loading
// the config file (errors name file, line and field), the logger, and the
// SIGINT/SIGTERM context the daemon runs under.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/logging"
)

// Spec describes one daemon.
type Spec[C any] struct {
	// Name is the command name, used in messages.
	Name string
	// DefaultConfig is the -config default.
	DefaultConfig string
	// Load reads, defaults and validates a config file.
	Load func(path string) (C, error)
	// Summary is the one-line description -check prints.
	Summary func(C) string
	// Log is the config's logging section.
	Log func(C) logging.Config
	// Serve runs the daemon until ctx ends (SIGINT/SIGTERM); path is the
	// config file, for reloads.
	Serve func(ctx context.Context, path string, cfg C, log *zap.Logger) error
}

// Run parses args, loads the config and serves; it returns the exit code:
// 0 after a clean stop or a successful -check, 1 for a bad config or a
// failure, 2 for bad flags.
func Run[C any](spec Spec[C], args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(spec.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", spec.DefaultConfig, "config file")
	check := fs.Bool("check", false, "validate the config, print a summary and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := spec.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok: %s\n", *path, spec.Summary(cfg))
		return 0
	}
	log, _, err := logging.New(spec.Log(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := spec.Serve(ctx, *path, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
		log.Error(spec.Name+" stopped", zap.Error(err))
		return 1
	}
	return 0
}
