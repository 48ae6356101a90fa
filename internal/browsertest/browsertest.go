// Package browsertest drives headless Chromium for tests of the status
// pages: load a page, let its scripts run, and return the DOM (and a
// screenshot). Tests skip when Chromium is missing, unless CI=true.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Binary returns the Chromium executable, or "" when none is installed.
func Binary() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Require returns the Chromium binary or skips the test (fails it when
// CI=true: CI installs Chromium).
func Require(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found (CI=true: .ci/run installs it)")
		}
		t.Skip("chromium not installed")
	}
	return bin
}

// DumpDOM loads url in a fresh headless Chromium, lets scripts run for
// about wait of virtual time, saves a screenshot as shot (when not ""),
// and returns the serialized DOM.
func DumpDOM(ctx context.Context, bin, url string, wait time.Duration, shot string) (string, error) {
	profile, err := os.MkdirTemp("", "browsertest-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(profile)
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + profile,
		fmt.Sprintf("--virtual-time-budget=%d", wait.Milliseconds()),
		"--window-size=1280,900",
	}
	if shot != "" {
		abs, _ := filepath.Abs(shot)
		cmd := exec.CommandContext(ctx, bin, append(args, "--screenshot="+abs, url)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("chromium screenshot: %w: %s", err, lastLines(out))
		}
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chromium: %w", err)
	}
	return string(out), nil
}

func lastLines(b []byte) string {
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return string(b)
}
