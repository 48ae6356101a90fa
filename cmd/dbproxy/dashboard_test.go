package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/browsertest"
	"github.com/tiergate/tiergate/internal/pgtest"
)

// TestDashboardInBrowser opens dbproxy's admin dashboard in headless
// Chromium, checks the last-failover panel (no failover configured) and
// the query cache panel, kills a replica, and checks the page shows it
// down.
func TestDashboardInBrowser(t *testing.T) {
	bin := browsertest.Require(t)
	c := pgtest.New(t, pgtest.Spec{Name: "dbproxy-dash", Replicas: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	listen, adminAddr := freeAddr(t), freeAddr(t)
	path := filepath.Join(t.TempDir(), "dbproxy.yaml")
	body := fmt.Sprintf(`log: {level: warn}
admin: {listen: %s}
listen: %s
health: {interval: 200ms, timeout: 150ms, fall: 1, rise: 1}
users:
  - {name: app, password: pw, server_user: postgres, server_password: unused}
databases:
  app: {server_database: postgres, primary: %s, replicas: [%s, %s]}
`, adminAddr, listen, c.Primary().Addr(), c.Replicas()[0].Addr(), c.Replicas()[1].Addr())
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- run([]string{"-config", path}, &stdout, &stderr) }()
	t.Cleanup(func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case <-code:
		case <-time.After(30 * time.Second):
			t.Error("dbproxy did not stop")
		}
	})
	dash := "http://" + adminAddr + "/"
	victim := c.Replicas()[1]
	shots := t.TempDir()
	if dir := os.Getenv("BROWSERTEST_SHOTS"); dir != "" {
		shots = dir
	}
	up := fmt.Sprintf(`data-node="%s" data-state="up"`, victim.Addr())
	down := fmt.Sprintf(`data-node="%s" data-state="down"`, victim.Addr())
	var dom string
	poll(t, ctx, "the dashboard to show the replica up", func() bool {
		var err error
		dom, err = browsertest.DumpDOM(ctx, bin, dash, 2*time.Second, filepath.Join(shots, "dbproxy-up.png"))
		return err == nil && strings.Contains(dom, up)
	})
	// No failover section here; the query cache is on by default (one
	// row per database). The markup checked is rendered, not the page's
	// script text.
	for _, want := range []string{
		`<div id="lastfailover"><h2>last failover</h2><div class="panel meta" data-last-failover="" data-state="none">no failover yet`,
		`<div id="cache"><h2>query cache</h2><table data-cache="on">`,
		`<tr data-cache-db="app" data-hit-ratio=`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	poll(t, ctx, "the dashboard to show the killed replica down", func() bool {
		var err error
		dom, err = browsertest.DumpDOM(ctx, bin, dash, 2*time.Second, filepath.Join(shots, "dbproxy-down.png"))
		return err == nil && strings.Contains(dom, down)
	})
	t.Logf("killed replica shown down after %v", time.Since(killed).Round(100*time.Millisecond))
}
