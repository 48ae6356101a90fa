package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// runAs holds the credentials the servers run under: the "postgres" user
// when we are root (initdb refuses root), otherwise nil (ourselves).
type runAs struct {
	cred *syscall.Credential
	uid  int
	gid  int
}

func serverUser() (*runAs, error) {
	if os.Geteuid() != 0 {
		return &runAs{uid: os.Getuid(), gid: os.Getgid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a 'postgres' user to run the servers: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &runAs{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

func (r *runAs) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true, // Pause/Resume/Kill signal the whole group
		Credential: r.cred,
		// If the test binary dies without cleanup, take the server with it.
		Pdeathsig: syscall.SIGKILL,
	}
}

// chown gives a directory we created to the server user.
func (r *runAs) chown(path string) error {
	if r.cred == nil {
		return nil
	}
	return os.Chown(path, r.uid, r.gid)
}

// procInfo is one line of /proc/PID/stat, the fields we need.
type procInfo struct {
	pid, ppid int
	zombie    bool
}

// processes lists every process on the machine.
func processes() []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and ')'.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(data[i+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(string(fields[1]))
		out = append(out, procInfo{pid: pid, ppid: ppid, zombie: string(fields[0]) == "Z"})
	}
	return out
}

// serverProcesses returns the postmaster and every live process it forked
// (backends, walsenders, background workers, and their children). The
// children call setsid(), so they are not in the postmaster's process
// group: signalling the group alone would miss them.
func serverProcesses(postmaster int) []int {
	procs := processes()
	children := map[int][]int{}
	for _, p := range procs {
		if !p.zombie {
			children[p.ppid] = append(children[p.ppid], p.pid)
		}
	}
	out := []int{postmaster}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// signalAll sends sig to every pid; vanished ones are ignored.
func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
}

// anyAlive reports whether any of pids is still a live (non-zombie)
// process. Zombies do not count: killed orphans may wait to be reaped by
// init, but they hold no resources.
func anyAlive(pids []int) bool {
	live := map[int]bool{}
	for _, p := range processes() {
		if !p.zombie {
			live[p.pid] = true
		}
	}
	for _, pid := range pids {
		if live[pid] {
			return true
		}
	}
	return false
}
