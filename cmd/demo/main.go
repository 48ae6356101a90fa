// Command demo runs the whole tiergate design on one machine (make demo):
// two PostgreSQL shards (a primary and two streaming replicas each), three
// dbproxy peers, three instances of the example web app, and one edge in
// front with health checks, a response cache and static assets. It prints
// a short tour and stops everything, removing its temporary data, on
// Ctrl-C.
//
//	go run ./cmd/demo -bin bin [-load] [-ready-file F] [-for 30s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	bin       string        // directory with edge, dbproxy and webapp binaries
	repo      string        // repository root (schema, static files)
	load      bool          // drive steady traffic
	readyFile string        // touched once everything is ready (for scripted runs)
	duration  time.Duration // stop by itself after this long (0: wait for Ctrl-C)
}

func run() error {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the edge, dbproxy and webapp binaries (make build)")
	flag.StringVar(&o.repo, "repo", ".", "repository root")
	flag.BoolVar(&o.load, "load", false, "drive steady traffic so the status pages move")
	flag.StringVar(&o.readyFile, "ready-file", "", "create this file once the system is ready")
	flag.DurationVar(&o.duration, "for", 0, "stop after this long (default: run until Ctrl-C)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	tmp, err := os.MkdirTemp("", "tiergate-demo-")
	if err != nil {
		return err
	}
	d := &demo{opts: o, dir: tmp}
	defer func() {
		d.stopAll()
		_ = os.RemoveAll(tmp)
		if o.readyFile != "" {
			_ = os.Remove(o.readyFile)
		}
		fmt.Println("demo: stopped everything and removed", tmp)
	}()
	started := time.Now()
	if err := d.start(ctx); err != nil {
		return err
	}
	fmt.Printf("demo: ready in %v\n\n", time.Since(started).Round(100*time.Millisecond))
	d.printTour(os.Stdout)
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte(d.tourJSON()), 0o644); err != nil {
			return err
		}
	}
	if o.load {
		go d.drive(ctx)
	}
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fmt.Println("demo: time is up")
	}
	return nil
}

func (d *demo) path(name string) string { return filepath.Join(d.dir, name) }
