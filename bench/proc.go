package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// procSet owns every child process the harness starts. Each child runs in
// its own process group (so nginx's workers and any grandchildren go with
// it) and gets SIGKILL if the harness dies (Pdeathsig); stopAll ends them
// all, and runs on normal exit, on error and on Ctrl-C.
type procSet struct {
	dir string // where children's logs go

	mu    sync.Mutex
	procs map[*proc]struct{}
}

func newProcSet(dir string) *procSet {
	return &procSet{dir: dir, procs: map[*proc]struct{}{}}
}

// proc is one started child.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, valid after done
	set     *procSet
}

// procOpts are the optional parts of starting a child.
type procOpts struct {
	env    []string  // added to the harness's environment
	asUser string    // run as this user (e.g. pgbouncer refuses root)
	stdout io.Writer // default: the log file
	stderr io.Writer // default: the log file
}

// start runs argv as a new process group. Its stderr (and stdout unless
// o.stdout is set) goes to <dir>/<name>.log.
func (s *procSet) start(name string, argv []string, o procOpts) (*proc, error) {
	logPath := filepath.Join(s.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if o.stdout != nil {
		cmd.Stdout = o.stdout
	}
	if o.stderr != nil {
		cmd.Stderr = o.stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if o.asUser != "" {
		cred, err := credentialOf(o.asUser)
		if err != nil {
			_ = logf.Close()
			return nil, err
		}
		cmd.SysProcAttr.Credential = cred
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{}), set: s}
	s.mu.Lock()
	s.procs[p] = struct{}{}
	s.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the child's process id (its process group id too).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, waits up to grace and
// then sends SIGKILL to the group. It is safe to call twice.
func (p *proc) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// The leader may be gone while group members (nginx workers) are not.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	p.set.mu.Lock()
	delete(p.set.procs, p)
	p.set.mu.Unlock()
}

// logTail returns the last lines of the child's log, for error messages.
func (p *proc) logTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	return tailLines(string(data), lines)
}

// stopAll stops every child still running, in parallel.
func (s *procSet) stopAll() {
	s.mu.Lock()
	ps := make([]*proc, 0, len(s.procs))
	for p := range s.procs {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(3 * time.Second) }()
	}
	wg.Wait()
}

func credentialOf(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeAddr is freePort as "127.0.0.1:port".
func freeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// errExited is returned while waiting for a child that died.
var errExited = errors.New("process exited")

// waitFor polls check every 20ms until it succeeds, ctx ends, timeout
// passes or p (if not nil) exits.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		var exited <-chan struct{}
		if p != nil {
			exited = p.done
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-exited:
			return fmt.Errorf("%s: %w: %v\n%s", p.name, errExited, p.err, p.logTail(15))
		case <-t.C:
		}
	}
}

// runTool runs argv to completion as a tracked child (its own process
// group, killed with the harness) and returns its combined output. ctx
// ending stops it.
func (s *procSet) runTool(ctx context.Context, name string, argv []string, env []string) ([]byte, error) {
	var out syncBuffer
	p, err := s.start(name, argv, procOpts{env: env, stdout: &out, stderr: &out})
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(2 * time.Second)
		return out.Bytes(), ctx.Err()
	}
	p.stop(0)
	if p.err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w", name, p.err)
	}
	return out.Bytes(), nil
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

func tailLines(s string, n int) string {
	end := len(s)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' && i != len(s)-1 {
			n--
			if n == 0 {
				return s[i+1 : end]
			}
		}
	}
	return s
}
