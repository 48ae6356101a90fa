package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/internal/pgtest"
)

// TestDemoScripted runs `demo` as a user would: start it, wait for ready,
// run the tour's checks, kill a web server, check the site still serves
// logins and posts, stop it with SIGINT, and check nothing is left behind.
func TestDemoScripted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts six PostgreSQL servers")
	}
	if _, err := pgtest.FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	repo, _ := filepath.Abs("../..")
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/edge", "./cmd/dbproxy", "./cmd/demo", "./examples/webapp")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	var out strings.Builder
	cmd := exec.Command(filepath.Join(bin, "demo"), "-bin", bin, "-repo", repo, "-ready-file", ready, "-for", "4m")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		default:
		}
	})
	start := time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("demo exited early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not ready in 2 minutes\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("demo ready after %v", time.Since(start).Round(100*time.Millisecond))
	data, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	var tour struct {
		Edge    struct{ Addr, Admin string }
		Proxies []struct{ Addr string }
		Webs    []struct {
			Name string
			PID  int
		}
		Shards [][]struct {
			Name, Role string
			PID        int
		}
		Dir string
	}
	if err := json.Unmarshal(data, &tour); err != nil {
		t.Fatal(err)
	}
	base := "http://" + tour.Edge.Addr
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	fetch := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == "POST" {
			resp, err = c.PostForm(base+path, form)
		} else {
			resp, err = c.Get(base + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// Tour: balancing across the web servers.
	seen := map[string]bool{}
	for range 12 {
		resp, _ := fetch("GET", "/login", nil)
		seen[resp.Header.Get("X-Backend")] = true
	}
	if len(seen) != 3 {
		t.Errorf("X-Backend values over 12 requests: %v", seen)
	}
	// Tour: the feed is cached by the edge.
	fetch("GET", "/", nil)
	if resp, _ := fetch("GET", "/", nil); resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("feed X-Cache = %q", resp.Header.Get("X-Cache"))
	}
	// Tour: static assets from the edge.
	var css string
	entries, _ := os.ReadDir(filepath.Join(repo, "examples/webapp/static"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".css") {
			css = e.Name()
		}
	}
	if resp, _ := fetch("GET", "/static/"+css, nil); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("static: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	// Tour: SHOW NODES on the admin console.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, "postgres://admin:admin@"+tour.Proxies[0].Addr+"/tiergate?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := admin.Query(ctx, "SHOW NODES", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if n == 0 {
		t.Error("SHOW NODES returned no nodes")
	}
	// Tour: SHOW CACHE lists the app database's query cache.
	var cacheDB string
	if err := admin.QueryRow(ctx, "SHOW CACHE", pgx.QueryExecModeSimpleProtocol).Scan(&cacheDB, new(string), new(string), new(string), new(string),
		new(string), new(string), new(string), new(string), new(string), new(string), new(string), new(string)); err != nil || cacheDB != "app" {
		t.Errorf("SHOW CACHE: %q %v", cacheDB, err)
	}
	admin.Close(ctx)

	// Kill one web server: the site keeps serving signups, logins and posts.
	if err := syscall.Kill(tour.Webs[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	csrf := func(page string) string {
		_, body := fetch("GET", page, nil)
		i := strings.Index(body, `name="csrf_token" value="`)
		if i < 0 {
			t.Fatalf("no csrf token on %s", page)
		}
		body = body[i+len(`name="csrf_token" value="`):]
		return body[:strings.IndexByte(body, '"')]
	}
	user := fmt.Sprintf("demo%d", time.Now().UnixNano()%1_000_000)
	for i := range 10 {
		if resp, body := fetch("GET", "/login", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d after the kill: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, body := fetch("POST", "/signup", url.Values{"name": {user}, "password": {"demo-password-1"}, "csrf_token": {csrf("/login")}}); resp.StatusCode != 200 {
		t.Fatalf("signup: %d %s", resp.StatusCode, body)
	}
	if resp, body := fetch("POST", "/posts", url.Values{"body": {"hello from the scripted demo"}, "csrf_token": {csrf("/me")}}); resp.StatusCode != 200 || !strings.Contains(body, "hello from the scripted demo") {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}

	// Kill the database primary, as a crash of its host would (the
	// postmaster and every backend): the dbproxy peers promote a replica
	// and the site takes logins and posts again.
	var primaryPID int
	for _, n := range tour.Shards[0] {
		if n.Role == "primary" {
			primaryPID = n.PID
		}
	}
	_ = syscall.Kill(primaryPID, syscall.SIGSTOP) // no new children while we list them
	for _, pid := range append(childPIDs(primaryPID), primaryPID) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	killed := time.Now()
	tryCSRF := func(cl *http.Client, page string) string {
		resp, err := cl.Get(base + page)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body := string(b)
		i := strings.Index(body, `name="csrf_token" value="`)
		if i < 0 {
			return ""
		}
		body = body[i+len(`name="csrf_token" value="`):]
		return body[:strings.IndexByte(body, '"')]
	}
	healed := false
	for time.Since(killed) < 60*time.Second && !healed {
		// A fresh browser logs in (sessions are written through the new
		// primary) and posts.
		jar, _ := cookiejar.New(nil)
		fresh := &http.Client{Jar: jar, Timeout: 5 * time.Second}
		resp, err := fresh.PostForm(base+"/login", url.Values{"name": {user}, "password": {"demo-password-1"}, "csrf_token": {tryCSRF(fresh, "/login")}})
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body := fmt.Sprintf("after the failover %d", time.Now().UnixNano())
				resp, err = fresh.PostForm(base+"/posts", url.Values{"body": {body}, "csrf_token": {tryCSRF(fresh, "/me")}})
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					healed = resp.StatusCode == 200 && strings.Contains(string(b), body)
				}
			}
		}
		if !healed {
			time.Sleep(250 * time.Millisecond)
		}
	}
	if !healed {
		t.Fatalf("logins and posts never worked again after the primary was killed\n%s", out.String())
	}
	t.Logf("logins and posts work again %v after the primary was killed", time.Since(killed).Round(100*time.Millisecond))

	// Stop: Ctrl-C leaves nothing behind.
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo exit: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("demo did not stop\n%s", out.String())
	}
	if _, err := os.Stat(tour.Dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s left behind", tour.Dir)
	}
	if err := syscall.Kill(-cmd.Process.Pid, 0); err == nil {
		t.Errorf("processes of the demo's group still running")
	}
	for _, w := range tour.Webs[1:] {
		if err := syscall.Kill(w.PID, 0); err == nil {
			t.Errorf("web server %s still running", w.Name)
		}
	}
}

// childPIDs lists the processes whose parent is pid (a postmaster's
// backends and workers).
func childPIDs(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == fmt.Sprint(pid) {
			var p int
			fmt.Sscan(e.Name(), &p)
			out = append(out, p)
		}
	}
	return out
}
