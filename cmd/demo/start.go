package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tiergate/tiergate/internal/pgtest"
)

const (
	proxyCount = 3
	webCount   = 3
	shardCount = 2
)

// start brings the system up bottom to top and waits until the edge is
// ready.
func (d *demo) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for _, b := range []string{"edge", "dbproxy", "webapp"} {
		if _, err := os.Stat(filepath.Join(d.opts.bin, b)); err != nil {
			return fmt.Errorf("binary %s missing in %s: run make build", b, d.opts.bin)
		}
	}
	step("starting %d PostgreSQL shards (a primary and 2 streaming replicas each)", shardCount)
	if err := d.startShards(ctx); err != nil {
		return err
	}
	step("starting %d dbproxy peers (gossip, Raft and failover on)", proxyCount)
	if err := d.startProxies(ctx); err != nil {
		return err
	}
	step("starting %d web app instances", webCount)
	if err := d.startWebs(ctx); err != nil {
		return err
	}
	step("starting the edge")
	return d.startEdge(ctx)
}

func step(format string, args ...any) {
	fmt.Printf("demo: "+format+"\n", args...)
}

func (d *demo) startShards(ctx context.Context) error {
	schema, err := os.ReadFile(filepath.Join(d.opts.repo, "examples/webapp/schema.sql"))
	if err != nil {
		return err
	}
	clusters := make([]*pgtest.Cluster, shardCount)
	errs := make([]error, shardCount)
	var wg sync.WaitGroup
	for i := range shardCount {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgtest.StartCluster(ctx, pgtest.Spec{Name: fmt.Sprintf("shard%d", i), Replicas: 2,
				Conf: map[string]string{"max_prepared_transactions": "20", "max_connections": "300"}})
			if err == nil {
				// The schema goes to every shard directly; the app's
				// statements then go through dbproxy.
				err = c.Primary().Exec(ctx, string(schema))
			}
			clusters[i], errs[i] = c, err
		}()
	}
	wg.Wait()
	d.mu.Lock()
	for _, c := range clusters {
		if c != nil {
			d.clusters = append(d.clusters, c)
		}
	}
	d.mu.Unlock()
	return errors.Join(errs...)
}

func (d *demo) startProxies(ctx context.Context) error {
	type peer struct{ gossip, raft string }
	peers := make([]peer, proxyCount)
	for i := range proxyCount {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		admin, err := freeAddr()
		if err != nil {
			return err
		}
		g, err := freeAddr()
		if err != nil {
			return err
		}
		r, err := freeAddr()
		if err != nil {
			return err
		}
		peers[i] = peer{g, r}
		d.proxies = append(d.proxies, endpoint{name: fmt.Sprintf("dbproxy%d", i+1), addr: addr, admin: admin})
	}
	var seeds, peerList []string
	for i, p := range peers {
		seeds = append(seeds, fmt.Sprintf("%q", p.gossip))
		peerList = append(peerList, fmt.Sprintf("{name: %s, raft: %q}", d.proxies[i].name, p.raft))
	}
	var procs []*proc
	for i, ep := range d.proxies {
		cfg := d.proxyConfig(ep) + fmt.Sprintf(`cluster:
  node_name: %s
  bind: %q
  raft_bind: %q
  seeds: [%s]
  peers: [%s]
  profile: local
  label: tiergate-demo
  lease: 2s
failover:
  failover_after: 2s
  check_interval: 500ms
  sslmode: disable
`, ep.name, peers[i].gossip, peers[i].raft, strings.Join(seeds, ", "), strings.Join(peerList, ", "))
		path := d.path(ep.name + ".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		p, err := d.spawn(ep.name, "dbproxy", "-config", path)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	for i, ep := range d.proxies {
		if err := waitHTTP(ctx, "http://"+ep.admin+"/readyz", procs[i]); err != nil {
			return err
		}
	}
	// The peers elect a Raft leader and decide the primary; until then
	// writes are fenced.
	for i, ep := range d.proxies {
		if err := waitWritesOpen(ctx, ep, procs[i]); err != nil {
			return err
		}
	}
	return nil
}

// waitWritesOpen polls a proxy's /status until its write fence is open for
// every database.
func waitWritesOpen(ctx context.Context, ep endpoint, p *proc) error {
	c := &http.Client{Timeout: time.Second}
	for {
		var st struct {
			Failover []map[string]string `json:"failover"`
		}
		if resp, err := c.Get("http://" + ep.admin + "/status"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			open := len(st.Failover) > 0
			for _, f := range st.Failover {
				open = open && f["writes_open"] == "true"
			}
			if open {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: writes never opened (no primary decided): %w", ep.name, ctx.Err())
		case <-p.done:
			return fmt.Errorf("%s exited; see its log", p.name)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// proxyConfig is one dbproxy peer's config: database "app" sharded by
// user_id over the shards (examples/webapp/schema.sql's sharding), each a
// primary with its replicas.
func (d *demo) proxyConfig(ep endpoint) string {
	var shards, names []string
	for i, c := range d.clusters {
		var replicas []string
		for _, r := range c.Replicas() {
			replicas = append(replicas, r.Addr())
		}
		shards = append(shards, fmt.Sprintf("      - {primary: %q, replicas: [%s]}", c.Primary().Addr(), strings.Join(quoteAll(replicas), ", ")))
		names = append(names, fmt.Sprintf("s%d", i))
	}
	return fmt.Sprintf(`log: {level: info, format: console}
admin: {listen: %q}
listen: %q
admin_users: [admin]
pool: {size: 10}
health: {interval: 500ms, timeout: 400ms, fall: 2, rise: 1}
# Replicas on loopback lag by milliseconds: a short grace lets a busy
# table's reads be cached again soon after each write.
query_cache: {invalidation_grace: 100ms}
users:
  - {name: app, password: app, server_user: postgres, server_password: unused}
  - {name: admin, password: admin, server_user: postgres, server_password: unused}
databases:
  app:
    server_database: postgres
    shards:
%s
    sharding:
      version: 1
      shards: [%s]
      key_spaces: [{name: users, type: bigint, function: hash}]
      tables:
        - {table: users, column: user_id, key_space: users}
        - {table: posts, column: user_id, key_space: users}
        - {table: sessions, column: user_id, key_space: users}
      reference_tables: [usernames]
    # The public feed (a fan-out over both shards) is cached here too; a
    # post written through any of the three proxies drops it everywhere.
    cache: {tables: [posts], ttl: 10s}
`, ep.admin, ep.addr, strings.Join(shards, "\n"), strings.Join(names, ", "))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func (d *demo) startWebs(ctx context.Context) error {
	for i := range webCount {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		ep := endpoint{name: fmt.Sprintf("web%d", i+1), addr: addr}
		proxy := d.proxies[i%len(d.proxies)] // each app host talks to its sidecar proxy
		dsn := fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", proxy.addr)
		p, err := d.spawn(ep.name, "webapp", "-listen", addr, "-name", ep.name, "-db", dsn)
		if err != nil {
			return err
		}
		if err := waitHTTP(ctx, "http://"+addr+"/healthz", p); err != nil {
			return err
		}
		d.webs = append(d.webs, ep)
	}
	return nil
}

func (d *demo) startEdge(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	d.edge = endpoint{name: "edge", addr: addr, admin: admin}
	var backends []string
	for _, w := range d.webs {
		backends = append(backends, fmt.Sprintf("{address: %q}", w.addr))
	}
	static, _ := filepath.Abs(filepath.Join(d.opts.repo, "examples/webapp/static"))
	cfg := fmt.Sprintf(`log: {level: info, format: console}
admin: {listen: %q}
access_log: {enabled: true, output: %q}
listeners: [{name: public, address: %q}]
upstreams:
  - name: web
    backends: [%s]
    balancer: {policy: round_robin}
    health:
      active: {path: /healthz, interval: 500ms, timeout: 400ms, rise: 1, fall: 2}
routes:
  - name: static
    match: {path_prefix: /static/}
    static: {root: %q, strip_prefix: /static}
  - name: feed
    match: {path: /, methods: [GET, HEAD]}
    upstream: web
    cache: {enabled: true, stale_if_error: 1m}
  - name: app
    upstream: web
`, admin, d.path("edge-access.log"), addr, strings.Join(backends, ", "), static)
	path := d.path("edge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	p, err := d.spawn("edge", "edge", "-config", path)
	if err != nil {
		return err
	}
	return waitHTTP(ctx, "http://"+admin+"/readyz", p)
}
