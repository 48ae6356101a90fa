package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Spec describes one cluster: a primary and Replicas streaming replicas.
type Spec struct {
	// Name prefixes node names ("pg" by default): "pg-n0" is the first primary.
	Name string
	// Replicas is the number of streaming replicas (0 = a single server).
	Replicas int
	// Sync makes replication synchronous with synchronous_standby_names =
	// 'ANY 1 (replicas...)', so a commit waits for one replica.
	Sync bool
	// Auth is the pg_hba method for non-superuser TCP logins: "trust"
	// (default), "scram-sha-256" or "md5". The postgres superuser and
	// replication always use trust on 127.0.0.1, so the harness works.
	Auth string
	// Conf adds or overrides postgresql.conf settings, e.g.
	// {"max_connections": "300"}. Values are written as given (quote
	// strings yourself: "'1s'").
	Conf map[string]string
}

// Cluster is one primary with its replicas, as started.
type Cluster struct {
	Name  string
	Spec  Spec
	Nodes []*Node // Nodes[0] started as the primary

	base string // directory holding every node directory
	own  bool   // base was created by this cluster and is removed on Close
}

// Primary returns the node whose role is primary. After a Kill and a
// Promote two nodes claim the role; the running one wins.
func (c *Cluster) Primary() *Node {
	var first *Node
	for _, n := range c.Nodes {
		if n.Role() != RolePrimary {
			continue
		}
		if n.Running() {
			return n
		}
		if first == nil {
			first = n
		}
	}
	return first
}

// Replicas returns the nodes whose role is replica.
func (c *Cluster) Replicas() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Role() == RoleReplica {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node with the given name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// StartCluster creates and starts a cluster in a new temporary directory and
// waits until every replica streams. Call Close to stop it and remove its
// files.
func StartCluster(ctx context.Context, spec Spec) (*Cluster, error) {
	if spec.Name == "" {
		spec.Name = "pg"
	}
	if spec.Auth == "" {
		spec.Auth = "trust"
	}
	switch spec.Auth {
	case "trust", "scram-sha-256", "md5":
	default:
		return nil, fmt.Errorf("pgtest: unknown auth method %q", spec.Auth)
	}
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	as, err := serverUser()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "pgtest-"+spec.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{Name: spec.Name, Spec: spec, base: base, own: true}
	if err := c.start(ctx, bin, as); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, bin string, as *runAs) error {
	if err := as.chown(c.base); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	ports, err := freePorts(1 + c.Spec.Replicas)
	if err != nil {
		return err
	}
	for i := 0; i <= c.Spec.Replicas; i++ {
		name := fmt.Sprintf("%s-n%d", c.Spec.Name, i)
		dir := filepath.Join(c.base, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if err := as.chown(dir); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		role := RoleReplica
		if i == 0 {
			role = RolePrimary
		}
		c.Nodes = append(c.Nodes, &Node{
			Name: name, Host: "127.0.0.1", Port: ports[i], Dir: dir,
			DataDir: filepath.Join(dir, "data"), bin: bin, as: as, role: role,
		})
	}
	primary := c.Nodes[0]
	if err := c.initPrimary(ctx, primary); err != nil {
		return err
	}
	// Base backups run in parallel; each replica then starts and streams.
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = c.initReplica(ctx, n, primary)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := c.WaitStreaming(ctx); err != nil {
		return err
	}
	if c.Spec.Sync && c.Spec.Replicas > 0 {
		names := make([]string, 0, c.Spec.Replicas)
		for _, n := range c.Nodes[1:] {
			names = append(names, `"`+n.Name+`"`)
		}
		setting := fmt.Sprintf("ANY 1 (%s)", strings.Join(names, ", "))
		if err := primary.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = "+quoteLiteral(setting)); err != nil {
			return err
		}
		if err := primary.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			return err
		}
		if err := c.waitQuery(ctx, primary, "SELECT count(*) = $1 FROM pg_stat_replication WHERE sync_state IN ('sync','quorum')", c.Spec.Replicas); err != nil {
			return fmt.Errorf("pgtest: %s: replicas did not become synchronous: %w", c.Name, err)
		}
	}
	return nil
}

func (c *Cluster) initPrimary(ctx context.Context, n *Node) error {
	args := []string{"-D", n.DataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--data-checksums", "--no-sync", "--no-instructions"}
	if err := run(ctx, n, "initdb", args...); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.DataDir, "pg_hba.conf"), []byte(hbaConf(c.Spec.Auth)), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := n.as.chown(filepath.Join(n.DataDir, "pg_hba.conf")); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := appendConf(n, c.conf(n)); err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	if preloadStatStatements(n.bin) {
		return n.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	}
	return nil
}

func (c *Cluster) initReplica(ctx context.Context, n, primary *Node) error {
	if err := run(ctx, n, "pg_basebackup", "-h", primary.Host, "-p", fmt.Sprint(primary.Port),
		"-U", "postgres", "-D", n.DataDir, "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return err
	}
	conf := c.conf(n)
	conf["primary_conninfo"] = quoteLiteral(conninfo(primary, n.Name))
	if err := appendConf(n, conf); err != nil {
		return err
	}
	sig := filepath.Join(n.DataDir, "standby.signal")
	if err := os.WriteFile(sig, nil, 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := n.as.chown(sig); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return n.Start(ctx)
}

// conf returns the postgresql.conf settings of node n.
func (c *Cluster) conf(n *Node) map[string]string {
	m := map[string]string{
		"listen_addresses":             "'127.0.0.1'",
		"port":                         fmt.Sprint(n.Port),
		"unix_socket_directories":      quoteLiteral(n.Dir),
		"wal_level":                    "replica",
		"wal_log_hints":                "on",
		"max_wal_senders":              "10",
		"max_replication_slots":        "10",
		"wal_keep_size":                "'256MB'",
		"hot_standby":                  "on",
		"hot_standby_feedback":         "on",
		"wal_receiver_status_interval": "'1s'",
		"wal_receiver_timeout":         "'10s'",
		"wal_sender_timeout":           "'10s'",
		"recovery_target_timeline":     "'latest'",
		"fsync":                        "off", // safe for process crashes, which is what tests simulate
		"shared_buffers":               "'32MB'",
		"max_connections":              "200",
		"logging_collector":            "off",
		"log_line_prefix":              "'%m [%p] %q%a '",
		"log_min_messages":             "warning",
		"password_encryption":          "'scram-sha-256'",
		"cluster_name":                 quoteLiteral(n.Name),
	}
	if c.Spec.Auth == "md5" {
		m["password_encryption"] = "'md5'"
	}
	if preloadStatStatements(n.bin) {
		m["shared_preload_libraries"] = "'pg_stat_statements'"
	}
	for k, v := range c.Spec.Conf {
		m[k] = v
	}
	return m
}

func hbaConf(auth string) string {
	return fmt.Sprintf(`# written by pgtest
local all         all                     trust
host  replication all      127.0.0.1/32   trust
host  all         postgres 127.0.0.1/32   trust
host  all         all      127.0.0.1/32   %s
host  all         all      ::1/128        %s
`, auth, auth)
}

// appendConf appends settings to postgresql.conf; later lines win, so this
// overrides what initdb or the primary's base backup wrote.
func appendConf(n *Node, conf map[string]string) error {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# pgtest\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
	}
	f, err := os.OpenFile(filepath.Join(n.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

var statStatements = struct {
	sync.Once
	ok bool
}{}

// preloadStatStatements reports whether the pg_stat_statements extension is
// installed next to the server (Debian's postgresql package ships it).
func preloadStatStatements(bin string) bool {
	statStatements.Do(func() {
		out, err := exec.Command(filepath.Join(bin, "pg_config"), "--sharedir").Output()
		if err != nil {
			return
		}
		_, err = os.Stat(filepath.Join(strings.TrimSpace(string(out)), "extension", "pg_stat_statements.control"))
		statStatements.ok = err == nil
	})
	return statStatements.ok
}

// run runs a server tool as the server user, returning its output on error.
func run(ctx context.Context, n *Node, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(n.bin, tool), args...)
	attr := n.as.sysProcAttr()
	attr.Pdeathsig = 0
	cmd.SysProcAttr = attr
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = n.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: %s for %s: %w\n%s", tool, n.Name, err, out)
	}
	return nil
}

// WaitStreaming waits until every node with the replica role streams from
// the current primary.
func (c *Cluster) WaitStreaming(ctx context.Context) error {
	p := c.Primary()
	if p == nil {
		return errors.New("pgtest: no primary")
	}
	want := len(c.Replicas())
	if err := c.waitQuery(ctx, p, "SELECT count(*) >= $1 FROM pg_stat_replication WHERE state = 'streaming'", want); err != nil {
		return fmt.Errorf("pgtest: %s: replicas not streaming: %w", c.Name, err)
	}
	return nil
}

// WaitReplayed waits until every running replica has replayed everything the
// primary had written when WaitReplayed was called.
func (c *Cluster) WaitReplayed(ctx context.Context) error {
	p := c.Primary()
	if p == nil {
		return errors.New("pgtest: no primary")
	}
	var lsn string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return err
	}
	for _, r := range c.Replicas() {
		if !r.Running() {
			continue
		}
		if err := c.waitQuery(ctx, r, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)", lsn); err != nil {
			return fmt.Errorf("pgtest: %s did not replay %s: %w", r.Name, lsn, err)
		}
	}
	return nil
}

// waitQuery polls a boolean query on n until it returns true.
func (c *Cluster) waitQuery(ctx context.Context, n *Node, sql string, args ...any) error {
	var last error
	err := waitUntil(ctx, func() bool {
		var ok bool
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		last = n.QueryRow(qctx, sql, args...).Scan(&ok)
		return last == nil && ok
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last error: %v)", err, last)
	}
	return err
}

// Close stops every node and removes the cluster's directory.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.destroy() }()
	}
	wg.Wait()
	if c.own {
		_ = os.RemoveAll(c.base)
	}
}

// freePorts reserves n distinct free TCP ports on 127.0.0.1. The listeners
// are closed before returning, so a port can in principle be taken by
// someone else before the server binds it; startup then fails loudly.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pgtest: free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
