package main

import (
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/httpproxy"
)

// reloader applies the config file again on SIGHUP and when the file
// changes (polled: no inotify dependency, and it also catches a ConfigMap
// symlink swap). An invalid file is logged and the running config stays.
type reloader struct {
	path  string
	log   *zap.Logger
	apply func(*httpproxy.Config) error
	poll  time.Duration // default 2s
}

func (r *reloader) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	poll := r.poll
	if poll == 0 {
		poll = 2 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	last := r.stamp()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("SIGHUP: reloading config", zap.String("file", r.path))
			last = r.stamp()
			r.reload()
		case <-t.C:
			if s := r.stamp(); s != last {
				last = s
				r.log.Info("config file changed: reloading", zap.String("file", r.path))
				r.reload()
			}
		}
	}
}

// stamp identifies the file's content (a hash: mtimes can be too coarse
// to see two quick edits).
type stamp [sha256.Size]byte

func (r *reloader) stamp() stamp {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return stamp{}
	}
	return sha256.Sum256(data)
}

func (r *reloader) reload() {
	cfg, err := httpproxy.LoadConfig(r.path)
	if err != nil {
		r.log.Error("config reload rejected; keeping the running config", zap.Error(err))
		return
	}
	if err := r.apply(cfg); err != nil {
		r.log.Error("config reload failed; keeping the running config", zap.Error(err))
	}
}
