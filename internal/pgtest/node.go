package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Role is what a node currently is.
type Role string

const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// ErrNotRunning is returned by operations that need a running server.
var ErrNotRunning = errors.New("pgtest: node is not running")

// Node is one PostgreSQL server: its data directory, port and process.
// Methods are safe for concurrent use.
type Node struct {
	Name    string // e.g. "shard0-n1"; also its application_name as a replica
	Host    string // always 127.0.0.1
	Port    int
	Dir     string // node directory: data/, postgres.log, the unix socket
	DataDir string

	bin string
	as  *runAs

	mu      sync.Mutex
	role    Role
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been reaped
	paused  []int         // processes stopped by Pause
	killed  []int         // processes of the last Kill/Stop, to outwait on Start
	logFile *os.File
}

// Role returns the node's current role as far as the harness knows
// (Promote makes a replica primary).
func (n *Node) Role() Role {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.role
}

func (n *Node) setRole(r Role) {
	n.mu.Lock()
	n.role = r
	n.mu.Unlock()
}

// Addr returns "127.0.0.1:port".
func (n *Node) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// DSN returns a URL for the superuser on database "postgres".
func (n *Node) DSN() string { return n.DSNFor("postgres", "postgres", "") }

// DSNFor returns a URL for user (with optional password) on database db.
func (n *Node) DSNFor(db, user, password string) string {
	userinfo := user
	if password != "" {
		userinfo += ":" + password
	}
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=5", userinfo, n.Addr(), db)
}

// Running reports whether the postmaster process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

func (n *Node) runningLocked() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Pid returns the postmaster's pid, or 0 when it is not running.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Start starts the server and waits until it accepts connections. A node
// that was killed is restarted once its old processes are gone.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.runningLocked() {
		n.mu.Unlock()
		return nil
	}
	if old := n.killed; len(old) > 0 {
		n.mu.Unlock()
		if err := waitUntil(ctx, func() bool { return !anyAlive(old) }); err != nil {
			return fmt.Errorf("pgtest: %s: old processes still alive: %w", n.Name, err)
		}
		n.mu.Lock()
	}
	if n.logFile == nil {
		f, err := os.OpenFile(filepath.Join(n.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			n.mu.Unlock()
			return fmt.Errorf("pgtest: %w", err)
		}
		n.logFile = f
	}
	cmd := exec.Command(filepath.Join(n.bin, "postgres"), "-D", n.DataDir)
	cmd.Stdout, cmd.Stderr = n.logFile, n.logFile
	cmd.SysProcAttr = n.as.sysProcAttr()
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("pgtest: start %s: %w", n.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.cmd, n.exited, n.paused, n.killed = cmd, exited, nil, nil
	n.mu.Unlock()
	return n.waitReady(ctx, exited)
}

// waitReady polls until the server answers a query, the process exits, or
// ctx ends.
func (n *Node) waitReady(ctx context.Context, exited <-chan struct{}) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := n.ping(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("pgtest: %s exited during startup; log tail:\n%s", n.Name, n.LogTail(20))
		case <-ctx.Done():
			return fmt.Errorf("pgtest: %s not ready: %w (last error: %v); log tail:\n%s", n.Name, ctx.Err(), err, n.LogTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) ping(ctx context.Context) error {
	c, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return c.Ping(ctx)
}

// Stop shuts the server down cleanly (fast shutdown) and waits for it; if
// it does not stop within ctx's deadline it is killed.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	if !n.runningLocked() {
		n.mu.Unlock()
		return nil
	}
	pid, exited := n.cmd.Process.Pid, n.exited
	if n.paused != nil {
		signalAll(n.paused, syscall.SIGCONT)
		n.paused = nil
	}
	procs := serverProcesses(pid)
	n.killed = procs
	n.mu.Unlock()
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-exited:
	case <-ctx.Done():
		n.hardKill(pid)
		<-exited
		return fmt.Errorf("pgtest: %s did not stop in time, killed: %w", n.Name, ctx.Err())
	}
	return waitUntil(ctx, func() bool { return !anyAlive(procs) })
}

// hardKill SIGKILLs the postmaster and everything it forked. The
// postmaster is stopped first so it cannot fork while the list is made.
func (n *Node) hardKill(postmaster int) []int {
	_ = syscall.Kill(postmaster, syscall.SIGSTOP)
	procs := serverProcesses(postmaster)
	signalAll(procs, syscall.SIGKILL)
	signalAll(procs, syscall.SIGCONT) // a stopped process dies on SIGKILL anyway; harmless
	n.mu.Lock()
	n.killed = append(n.killed, procs...)
	n.mu.Unlock()
	return procs
}

// Kill SIGKILLs the postmaster and every process it forked (backends,
// walsenders, background workers) at once, as a crash of the node's host
// would, and waits until they are gone.
func (n *Node) Kill() error {
	n.mu.Lock()
	if !n.runningLocked() {
		n.mu.Unlock()
		return ErrNotRunning
	}
	pid, exited := n.cmd.Process.Pid, n.exited
	n.paused = nil
	n.mu.Unlock()
	procs := n.hardKill(pid)
	<-exited
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return waitUntil(ctx, func() bool { return !anyAlive(procs) })
}

// Pause freezes the postmaster and every process it forked (SIGSTOP): the
// server stops answering but keeps its connections open, like a hung host.
// Walsenders stop streaming and open sessions stop committing too.
func (n *Node) Pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return ErrNotRunning
	}
	pid := n.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pgtest: pause %s: %w", n.Name, err)
	}
	procs := serverProcesses(pid) // the postmaster is stopped: the list is complete
	signalAll(procs, syscall.SIGSTOP)
	n.paused = procs
	return nil
}

// Resume undoes Pause (SIGCONT to every process Pause stopped).
func (n *Node) Resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return ErrNotRunning
	}
	signalAll(n.paused, syscall.SIGCONT)
	n.paused = nil
	return nil
}

// Promote turns a replica into a primary (pg_promote, waiting for it) and
// checks that it accepts writes.
func (n *Node) Promote(ctx context.Context) error {
	var ok bool
	if err := n.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
		return fmt.Errorf("pgtest: promote %s: %w", n.Name, err)
	}
	if !ok {
		return fmt.Errorf("pgtest: promote %s: pg_promote returned false", n.Name)
	}
	var inRecovery bool
	if err := n.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return fmt.Errorf("pgtest: promote %s: %w", n.Name, err)
	}
	if inRecovery {
		return fmt.Errorf("pgtest: promote %s: still in recovery", n.Name)
	}
	n.setRole(RolePrimary)
	return nil
}

// Repoint makes replica n stream from primary (ALTER SYSTEM SET
// primary_conninfo and reload). The replica follows the newest timeline.
func (n *Node) Repoint(ctx context.Context, primary *Node) error {
	ci := conninfo(primary, n.Name)
	if err := n.Exec(ctx, "ALTER SYSTEM SET primary_conninfo = "+quoteLiteral(ci)); err != nil {
		return fmt.Errorf("pgtest: repoint %s: %w", n.Name, err)
	}
	if err := n.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("pgtest: repoint %s: %w", n.Name, err)
	}
	return nil
}

func conninfo(primary *Node, appName string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres application_name=%s", primary.Host, primary.Port, appName)
}

// Exec runs one statement (or several, without arguments) as superuser.
func (n *Node) Exec(ctx context.Context, sql string, args ...any) error {
	c, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w", n.Name, err)
	}
	defer c.Close(context.Background())
	if len(args) == 0 {
		_, err = c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	} else {
		_, err = c.Exec(ctx, sql, args...)
	}
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w", n.Name, err)
	}
	return nil
}

// Row is the result of QueryRow.
type Row struct {
	n    *Node
	dsn  string
	ctx  context.Context
	sql  string
	args []any
}

// QueryRow runs a query that returns one row as superuser; call Scan on
// the result.
func (n *Node) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return Row{n: n, dsn: n.DSN(), ctx: ctx, sql: sql, args: args}
}

// QueryRowAs is QueryRow as another user on database db.
func (n *Node) QueryRowAs(ctx context.Context, db, user, password, sql string, args ...any) Row {
	return Row{n: n, dsn: n.DSNFor(db, user, password), ctx: ctx, sql: sql, args: args}
}

// Scan runs the query and scans its single row into dest.
func (r Row) Scan(dest ...any) error {
	c, err := pgx.Connect(r.ctx, r.dsn)
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w", r.n.Name, err)
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...); err != nil {
		return fmt.Errorf("pgtest: %s: %w", r.n.Name, err)
	}
	return nil
}

// LogTail returns the last lines of the server log, for error messages.
func (n *Node) LogTail(lines int) string {
	data, err := os.ReadFile(filepath.Join(n.Dir, "postgres.log"))
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// destroy kills the node without ceremony (used by cleanup).
func (n *Node) destroy() {
	n.mu.Lock()
	running := n.runningLocked()
	var pid int
	var exited chan struct{}
	if running {
		pid, exited = n.cmd.Process.Pid, n.exited
	}
	f := n.logFile
	n.logFile = nil
	n.mu.Unlock()
	if running {
		procs := n.hardKill(pid)
		<-exited
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = waitUntil(ctx, func() bool { return !anyAlive(procs) })
		cancel()
	}
	if f != nil {
		_ = f.Close()
	}
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// waitUntil polls cond until it is true or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
