package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// memUsage is the memory of a process group.
type memUsage struct {
	RSSKiB int64 // sum of VmRSS (shared pages count once per process)
	PssKiB int64 // sum of Pss (shared pages split between processes)
	Procs  int
}

// groupMemory sums VmRSS and Pss over every live process in process group
// pgid: nginx's master and workers, or a single-process system.
func groupMemory(pgid int) (memUsage, error) {
	var m memUsage
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return m, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 3 || string(f[0]) == "Z" {
			continue
		}
		if pg, _ := strconv.Atoi(string(f[2])); pg != pgid {
			continue
		}
		m.Procs++
		m.RSSKiB += statusKiB(filepath.Join("/proc", strconv.Itoa(pid), "status"), "VmRSS:")
		m.PssKiB += statusKiB(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"), "Pss:")
	}
	if m.Procs == 0 {
		return m, fmt.Errorf("no live process in group %d", pgid)
	}
	return m, nil
}

// statusKiB reads a "Key:   123 kB" line.
func statusKiB(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return n
			}
		}
	}
	return 0
}
