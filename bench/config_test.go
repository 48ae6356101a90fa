package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/httpproxy"
	"github.com/tiergate/tiergate/internal/pgproxy"
)

// The generated configs must load with the engines' own strict loaders,
// so a schema change breaks this test rather than a benchmark run.
func TestEdgeConfigsLoad(t *testing.T) {
	backends := []string{"127.0.0.1:9001", "127.0.0.1:9002"}
	variants := []edgeFeature{{"throughput", edgeOptions{}}, {"low memory", edgeOptions{ReduceMemory: true}}, {"cache", edgeOptions{Cache: true}}}
	variants = append(variants, edgeFeatures()...)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			v.opts.AccessLogPath = filepath.Join(dir, "access.log")
			data, err := edgeConfig("127.0.0.1:8080", "127.0.0.1:9901", backends, v.opts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "edge.yaml")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := httpproxy.LoadConfig(path)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			u := cfg.Upstreams[0]
			want := v.opts.Policy
			if want == "" {
				want = "round_robin"
			}
			if u.Balancer.Policy != want || len(u.Backends) != 2 || u.Health.Active == nil {
				t.Errorf("policy %q backends %d active %v", u.Balancer.Policy, len(u.Backends), u.Health.Active)
			}
			if cfg.AccessLog.Enabled != v.opts.AccessLog || cfg.Listeners[0].ReduceMemoryUsage != v.opts.ReduceMemory {
				t.Errorf("access log %v reduce memory %v", cfg.AccessLog.Enabled, cfg.Listeners[0].ReduceMemoryUsage)
			}
			if (v.opts.Expr != "" || v.opts.Rewrite || v.opts.Cache) != (len(cfg.Routes) == 1) {
				t.Errorf("routes: %d", len(cfg.Routes))
			}
			if v.opts.Cache {
				c := cfg.Routes[0].Cache
				if c == nil || !c.Enabled || c.MaxSize != 64<<20 {
					t.Errorf("cache: %+v", c)
				}
			}
		})
	}
}

func TestDBProxyConfigLoads(t *testing.T) {
	cases := []struct {
		name     string
		replicas []string
	}{
		{"single node", nil},
		{"with replicas", []string{"127.0.0.1:5433", "127.0.0.1:5434"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dbproxy.yaml")
			data := dbproxyConfig("127.0.0.1:6432", "127.0.0.1:9902", "127.0.0.1:5432", tc.replicas, 11000)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := pgproxy.LoadConfig(path)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			db := cfg.Databases[benchDB]
			if cfg.Pool.Mode != pgproxy.PoolModeTransaction || cfg.Pool.Size != 20 || cfg.MaxClientConn != 11000 || len(db.Replicas) != len(tc.replicas) {
				t.Errorf("got pool %+v max clients %d db %+v", cfg.Pool, cfg.MaxClientConn, db)
			}
		})
	}
}

// HAProxy and nginx check their own files when installed.
func TestComparisonConfigsCheck(t *testing.T) {
	backends := []string{"127.0.0.1:9001", "127.0.0.1:9002"}
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("haproxy cache=%v", cache), func(t *testing.T) {
			if _, err := exec.LookPath("haproxy"); err != nil {
				t.Skip("haproxy not installed")
			}
			path := filepath.Join(t.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(path, haproxyConfig("127.0.0.1:8080", backends, 1000, cache), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("haproxy", "-c", "-f", path).CombinedOutput(); err != nil {
				t.Fatalf("haproxy -c: %v\n%s", err, out)
			}
		})
		t.Run(fmt.Sprintf("nginx cache=%v", cache), func(t *testing.T) {
			if _, err := exec.LookPath("nginx"); err != nil {
				t.Skip("nginx not installed")
			}
			dir := t.TempDir()
			conf, err := nginxConfig(dir, "127.0.0.1:8080", backends, os.Geteuid() == 0, 4096, cache)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(path, conf, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("nginx", "-t", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "successful") {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
		})
	}
}

func TestDBProxyCacheConfigsLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		variant dbCacheVariant
		section bool // query_cache section written
		rule    bool // products rule
	}{{"uncached", cacheNone, false, false}, {"cache rule", cacheTable, true, true}, {"hints only", cacheHints, true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dbproxy.yaml")
			data := dbproxyCacheConfig("127.0.0.1:6432", "127.0.0.1:9902", "127.0.0.1:5432", []string{"127.0.0.1:5433"}, tc.variant)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := pgproxy.LoadConfig(path)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			qc, db := cfg.QueryCache, cfg.Databases[benchDB]
			if !qc.On() || !qc.HintsOn() || qc.MaxSize != 64<<20 || qc.MaxEntrySize != 1<<20 || qc.DefaultTTL != 30*time.Second {
				t.Errorf("query_cache %+v", qc)
			}
			if got := db.Cache != nil && slices.Equal(db.Cache.Tables, []string{"products"}) && db.Cache.TTL == 30*time.Second; got != tc.rule {
				t.Errorf("cache rule %+v, want one: %v", db.Cache, tc.rule)
			}
			if got := strings.Contains(string(data), "query_cache:"); got != tc.section {
				t.Errorf("query_cache section written: %v, want %v", got, tc.section)
			}
		})
	}
}
