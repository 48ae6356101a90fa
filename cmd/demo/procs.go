package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tiergate/tiergate/internal/pgtest"
)

// demo is the running system.
type demo struct {
	opts options
	dir  string

	mu       sync.Mutex
	procs    []*proc
	clusters []*pgtest.Cluster

	edge     endpoint
	proxies  []endpoint
	webs     []endpoint
	webNames []string
}

// endpoint is a service's traffic and admin addresses.
type endpoint struct {
	name, addr, admin string
}

// proc is one child process, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// spawn starts a binary from the bin directory with its output in a log.
func (d *demo) spawn(name, binary string, args ...string) (*proc, error) {
	logf, err := os.Create(d.path(name + ".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(d.opts.bin, binary), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = d.opts.repo
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	return p, nil
}

// stopAll stops the processes (SIGTERM, then SIGKILL) and the databases.
func (d *demo) stopAll() {
	d.mu.Lock()
	procs, clusters := d.procs, d.clusters
	d.procs, d.clusters = nil, nil
	d.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = syscall.Kill(-procs[i].cmd.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.After(10 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	var wg sync.WaitGroup
	for _, c := range clusters {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
}

// freeAddr reserves a free loopback port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200 or ctx ends.
func waitHTTP(ctx context.Context, url string, p *proc) error {
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w", p.name, url, ctx.Err())
		case <-p.done:
			return fmt.Errorf("%s exited; see its log", p.name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
