package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/internal/pgtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// poll checks cond every 20ms until it holds or ctx ends.
func poll(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// TestServeEndToEnd runs the binary's run() against a real cluster: reads
// on the replica, /metrics and /readyz on the admin listener, SIGHUP
// reload, SIGTERM shutdown with exit code 0.
func TestServeEndToEnd(t *testing.T) {
	c := pgtest.New(t, pgtest.Spec{Name: "dbproxy-e2e", Replicas: 1, Auth: "scram-sha-256"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, q := range []string{"CREATE ROLE app LOGIN PASSWORD 'pw'", "CREATE DATABASE app OWNER app"} {
		if err := c.Primary().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	listen, adminAddr := freeAddr(t), freeAddr(t)
	path := filepath.Join(t.TempDir(), "dbproxy.yaml")
	writeConfig := func(poolSize int) {
		body := fmt.Sprintf(`log: {level: warn}
admin: {listen: %s}
listen: %s
admin_users: [admin]
pool: {size: %d}
users:
  - {name: app, password: pw}
  - {name: admin, password: adminpw}
databases:
  app: {primary: %s, replicas: [%s]}
`, adminAddr, listen, poolSize, c.Primary().Addr(), c.Replicas()[0].Addr())
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(4)
	var stdout, stderr bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- run([]string{"-config", path}, &stdout, &stderr) }()

	dsn := "postgres://app:pw@" + listen + "/app?sslmode=disable&connect_timeout=2"
	var conn *pgx.Conn
	poll(t, ctx, "the proxy to accept a client", func() bool {
		var err error
		conn, err = pgx.Connect(ctx, dsn)
		return err == nil
	})
	defer conn.Close(context.Background())
	var rec bool
	for i := 0; i < 100 && !rec; i++ {
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if !rec {
		t.Fatal("reads never reached the replica")
	}

	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + adminAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/metrics"); status != 200 || !strings.Contains(body, `tiergate_dbproxy_queries_total{database="app",route="replica"}`) {
		t.Fatalf("/metrics: %d\n%s", status, body)
	}
	if status, body := get("/readyz"); status != 200 {
		t.Fatalf("/readyz: %d %s", status, body)
	}

	// SIGHUP re-reads the file; the client stays connected.
	writeConfig(7)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, "postgres://admin:adminpw@"+listen+"/tiergate?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	poll(t, ctx, "SIGHUP to reload pool.size", func() bool {
		rows, err := admin.Query(ctx, "SHOW CONFIG", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		found := false
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			found = found || (k == "pool.size" && v == "7")
		}
		return found
	})
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("client after reload: %v", err)
	}

	// SIGTERM drains and exits 0.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d\n%s", c, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
}
