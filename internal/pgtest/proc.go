package pgtest

import (
	"bytes"
	"errors"
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

// groupAlive reports whether any live (non-zombie) process is in process
// group pgid. Zombies do not count: orphaned server children that were
// killed may wait to be reaped by init, but they hold no resources.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
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
		if len(fields) < 3 {
			continue
		}
		if string(fields[0]) == "Z" {
			continue
		}
		if pg, _ := strconv.Atoi(string(fields[2])); pg == pgid {
			return true
		}
	}
	return false
}
