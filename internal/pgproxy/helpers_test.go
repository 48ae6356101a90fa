package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tiergate/tiergate/internal/pgtest"
)

const (
	appPassword = "app-secret"
	md5Password = "md5-secret"
)

// shared is the replicated cluster most integration tests use (tests that
// kill nodes start their own). It is started on first use and stopped in
// TestMain.
var shared struct {
	once sync.Once
	c    *pgtest.Cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
	closeSharedShards()
	os.Exit(code)
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sharedCluster returns a primary with two streaming replicas (SCRAM for
// non-superusers), with role app owning database app.
func sharedCluster(t testing.TB) *pgtest.Cluster {
	t.Helper()
	if _, err := pgtest.FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pgtest.StartTimeout)
		defer cancel()
		c, err := pgtest.StartCluster(ctx, pgtest.Spec{Name: "pgproxy", Replicas: 2, Auth: "scram-sha-256", Conf: map[string]string{"max_connections": "300"}})
		if err != nil {
			shared.err = err
			return
		}
		shared.c = c
		shared.err = setupApp(ctx, c)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}

// newCluster starts a private cluster for a test that breaks it.
func newCluster(t testing.TB, replicas int) *pgtest.Cluster {
	t.Helper()
	c := pgtest.New(t, pgtest.Spec{Name: "pgproxy-own", Replicas: replicas, Auth: "scram-sha-256"})
	if err := setupApp(ctxT(t, time.Minute), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func setupApp(ctx context.Context, c *pgtest.Cluster) error {
	p := c.Primary()
	for _, q := range []string{
		"CREATE ROLE app LOGIN PASSWORD '" + appPassword + "'",
		"CREATE DATABASE app OWNER app",
	} {
		if err := p.Exec(ctx, q); err != nil {
			return err
		}
	}
	return c.WaitReplayed(ctx)
}

// testProxy is a running Server on a loopback port.
type testProxy struct {
	srv  *Server
	addr string
	cfg  *Config
	stop func()
}

// testConfig is the config tests start from: users app (SCRAM), app_md5
// (md5) and admin (console), database app on c.
func testConfig(c *pgtest.Cluster) *Config {
	cfg := &Config{
		Listen:     "127.0.0.1:0",
		AdminUsers: []string{"admin"},
		Users: []UserConfig{
			{Name: "app", Password: appPassword},
			{Name: "app_md5", Password: md5Password, Auth: "md5", ServerUser: "app", ServerPassword: appPassword},
			{Name: "admin", Password: "admin-secret"},
		},
		Databases: map[string]DatabaseConfig{"app": {Primary: c.Primary().Addr()}},
	}
	for _, r := range c.Replicas() {
		d := cfg.Databases["app"]
		d.Replicas = append(d.Replicas, r.Addr())
		cfg.Databases["app"] = d
	}
	cfg.Pool.Size = 8
	// Quick checks, tolerant of a loaded test machine (-race, parallel
	// packages): a node goes down after 3 timeouts of 140ms in a row.
	cfg.Health.Interval = 150 * time.Millisecond
	cfg.Health.Timeout = 140 * time.Millisecond
	cfg.Health.Rise = 1
	return cfg
}

func startProxy(t testing.TB, cfg *Config) *testProxy {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop()
	if os.Getenv("PGPROXY_TEST_LOG") != "" {
		log = zaptest.NewLogger(t)
	}
	srv, err := New(cfg, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	p := &testProxy{srv: srv, addr: ln.Addr().String(), cfg: cfg}
	p.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("Serve did not return")
			}
		})
	}
	t.Cleanup(p.stop)
	return p
}

func (p *testProxy) dsn(user, password string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/app?sslmode=disable&connect_timeout=5", user, password, p.addr)
}

func (p *testProxy) connect(t testing.TB, ctx context.Context) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, p.dsn("app", appPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitReplicasReadable waits until the health checks have seen every
// replica.
func (p *testProxy) waitReplicasReadable(t testing.TB, ctx context.Context) {
	t.Helper()
	cl := p.srv.rt.Load().clusters["app"]
	waitFor(t, ctx, "replicas checked", func() bool {
		for _, r := range cl.replicas {
			if !r.checked.Load() || !r.readable(0) {
				return false
			}
		}
		return true
	})
}

func isPgCode(err error, code string) bool {
	var pe interface{ SQLState() string }
	return errors.As(err, &pe) && pe.SQLState() == code
}
