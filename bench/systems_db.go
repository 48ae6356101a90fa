package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tiergate/tiergate/internal/pgtest"
)

// PostgreSQL systems under test. The database and role are "bench"
// (trust auth from 127.0.0.1, as pgtest sets up), on a pgtest cluster
// the scenario starts and closes.
const (
	sysPGDirect      = "direct"
	sysPgBouncer     = "pgbouncer"
	sysDBProxy       = "dbproxy"                      // single node (like for like with PgBouncer)
	sysDBProxySplit  = "dbproxy (primary+2 replicas)" // read/write split
	benchDB, benchPG = "bench", "bench"
)

// pgSystem is one started PostgreSQL-facing system.
type pgSystem struct {
	name string
	addr string
	proc *proc // nil for direct
}

func (s *pgSystem) stop() {
	if s != nil && s.proc != nil {
		s.proc.stop(5 * time.Second)
	}
}

// startCluster starts PostgreSQL (a primary and replicas), creates the
// bench role and database, and initialises pgbench tables at scale (0:
// none).
func (h *harness) startCluster(ctx context.Context, replicas, scale int) (*pgtest.Cluster, error) {
	h.prog.begin(0, "starting PostgreSQL (primary + %d replicas)", replicas)
	c, err := pgtest.StartCluster(ctx, pgtest.Spec{Name: "bench", Replicas: replicas, Conf: map[string]string{
		"max_connections": "300",
		"shared_buffers":  "'128MB'",
	}})
	if err != nil {
		h.prog.end("failed")
		return nil, err
	}
	p := c.Primary()
	for _, sql := range []string{
		"CREATE ROLE " + benchPG + " LOGIN",
		"CREATE DATABASE " + benchDB + " OWNER " + benchPG,
	} {
		if err := p.Exec(ctx, sql); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", sql, err)
		}
	}
	h.prog.end("primary on %s", p.Addr())
	if scale > 0 {
		h.prog.begin(0, "pgbench -i -s %d", scale)
		host, port, _ := strings.Cut(p.Addr(), ":")
		out, err := h.procs.runTool(ctx, "pgbench-init", []string{"pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "-h", host, "-p", port, "-U", benchPG, benchDB}, []string{"PGSSLMODE=disable"})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("pgbench -i: %w\n%s", err, tailLines(string(out), 5))
		}
		if err := c.WaitReplayed(ctx); err != nil {
			c.Close()
			return nil, err
		}
		h.prog.end("done")
	}
	return c, nil
}

// startPgBouncer runs PgBouncer 1.x in transaction mode with a pool of 20
// server connections to primary.
func (h *harness) startPgBouncer(ctx context.Context, primary string, maxClients int) (*pgSystem, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.tmp, "pgbouncer-"+filepath.Base(addr))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(primary, ":")
	lhost, lport, _ := strings.Cut(addr, ":")
	ini := fmt.Sprintf(`; written by tiergate bench
[databases]
%[1]s = host=%[2]s port=%[3]s dbname=%[1]s user=%[4]s

[pgbouncer]
listen_addr = %[5]s
listen_port = %[6]s
unix_socket_dir =
auth_type = trust
auth_file = %[7]s/userlist.txt
pool_mode = transaction
default_pool_size = 20
query_wait_timeout = 5
max_client_conn = %[8]d
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
`, benchDB, host, port, benchPG, lhost, lport, dir, maxClients)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(`"`+benchPG+`" ""`+"\n"), 0o644); err != nil {
		return nil, err
	}
	// PgBouncer refuses to run as root.
	runAs := ""
	if os.Geteuid() == 0 {
		runAs = "postgres"
		if _, err := user.Lookup(runAs); err != nil {
			runAs = "nobody"
		}
	}
	p, err := h.procs.start("pgbouncer-"+filepath.Base(dir), []string{"pgbouncer", filepath.Join(dir, "pgbouncer.ini")}, procOpts{asUser: runAs})
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, p, 20*time.Second, pgCheck(addr)); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("pgbouncer did not become ready: %w", err)
	}
	return &pgSystem{name: sysPgBouncer, addr: addr, proc: p}, nil
}

// startDBProxy runs cmd/dbproxy in transaction mode, pool size 20 per
// node, over primary (and replicas, which get the reads).
func (h *harness) startDBProxy(ctx context.Context, label, primary string, replicas []string, maxClients int) (*pgSystem, error) {
	return h.startDBProxyWith(ctx, label, func(listen, admin string) []byte {
		return dbproxyConfig(listen, admin, primary, replicas, maxClients)
	})
}

// startDBProxyWith runs cmd/dbproxy with the config cfg writes for its
// listen and admin addresses.
func (h *harness) startDBProxyWith(ctx context.Context, label string, cfg func(listen, admin string) []byte) (*pgSystem, error) {
	bin, err := h.build(ctx, sysDBProxy, "./cmd/dbproxy")
	if err != nil {
		return nil, err
	}
	addr, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("free port: %v %v", err1, err2)
	}
	dir := filepath.Join(h.tmp, "dbproxy-"+filepath.Base(addr))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "dbproxy.yaml")
	if err := os.WriteFile(path, cfg(addr, admin), 0o644); err != nil {
		return nil, err
	}
	p, err := h.procs.start("dbproxy-"+filepath.Base(dir), []string{bin, "-config", path}, procOpts{})
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, p, 30*time.Second, pgCheck(addr)); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("%s did not become ready: %w\n%s", label, err, p.logTail(5))
	}
	return &pgSystem{name: label, addr: addr, proc: p}, nil
}

// dbproxyConfig is the dbproxy file: transaction pooling, 20 server
// connections per node, trust auth for the bench user. Both poolers fail
// a query that waits 5s for a server connection (a stuck pool should cost
// a run seconds, not the 30s/120s defaults).
func dbproxyConfig(listen, admin, primary string, replicas []string, maxClients int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# written by tiergate bench
log: {level: warn, format: json}
admin: {listen: "%s"}
listen: "%s"
max_client_conn: %d
pool:
  mode: transaction
  size: 20
  query_wait_timeout: 5s
users:
  - name: %s
    auth: trust
databases:
  %s:
    primary: "%s"
`, admin, listen, maxClients, benchPG, benchDB, primary)
	if len(replicas) > 0 {
		b.WriteString("    replicas:\n")
		for _, r := range replicas {
			fmt.Fprintf(&b, "      - \"%s\"\n", r)
		}
	}
	return []byte(b.String())
}

// pgCheck succeeds once a bench login and SELECT 1 work through addr.
func pgCheck(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		return usePG(c, benchPG, benchDB)
	}
}

func nodeAddrs(ns []*pgtest.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Addr())
	}
	return out
}
