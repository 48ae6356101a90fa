package main

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/tiergate/tiergate/internal/pgtest"
)

// debianPackage is the Debian package that provides a tool.
func debianPackage(tool string) string {
	switch tool {
	case "pgbench", "postgres":
		// pgbench ships in /usr/lib/postgresql/*/bin with the server and
		// is linked into PATH by postgresql-common.
		return "postgresql"
	default: // wrk, haproxy, nginx, pgbouncer
		return tool
	}
}

// haveTool reports whether a tool is usable.
func haveTool(name string) bool {
	if name == "postgres" {
		_, err := pgtest.FindBinDir()
		return err == nil
	}
	_, err := exec.LookPath(name)
	return err == nil
}

// ensureTools installs missing tools (needed and optional) with apt-get
// (after apt-get update) when allowed and possible, and returns, per
// scenario, which needed tools are still missing.
func (h *harness) ensureTools(ctx context.Context, ss []scenario) map[string][]string {
	need := map[string]bool{}
	for _, s := range ss {
		for _, t := range append(slices.Clone(s.needs), s.optional...) {
			if !haveTool(t) {
				need[t] = true
			}
		}
	}
	if len(need) > 0 && h.opts.install {
		pkgs := map[string]bool{}
		for t := range need {
			pkgs[debianPackage(t)] = true
		}
		var list []string
		for p := range pkgs {
			list = append(list, p)
		}
		sort.Strings(list)
		h.aptInstall(ctx, list)
	}
	missing := map[string][]string{}
	for _, s := range ss {
		for _, t := range s.needs {
			if !haveTool(t) {
				missing[s.name] = append(missing[s.name], t)
			}
		}
	}
	return missing
}

// aptInstall runs apt-get update and install. The Debian packages start
// system services (nginx on :80, haproxy, pgbouncer on :6432) where an init
// system runs; the harness never talks to those: it starts its own
// processes with its own configs on free ports.
func (h *harness) aptInstall(ctx context.Context, pkgs []string) {
	if os.Geteuid() != 0 {
		h.prog.note("missing %s; not root, so not installing (apt-get install %s)", strings.Join(pkgs, " "), strings.Join(pkgs, " "))
		return
	}
	h.prog.begin(0, "apt-get update && apt-get install %s", strings.Join(pkgs, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	upd := exec.CommandContext(ctx, "apt-get", "update", "-qq")
	upd.Env = env
	if out, err := upd.CombinedOutput(); err != nil {
		h.prog.end("apt-get update failed: %v\n%s", err, tailLines(string(out), 5))
		return
	}
	args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)
	inst := exec.CommandContext(ctx, "apt-get", args...)
	inst.Env = env
	if out, err := inst.CombinedOutput(); err != nil {
		h.prog.end("apt-get install failed: %v\n%s", err, tailLines(string(out), 5))
		return
	}
	h.prog.end("installed")
}

// toolVersionOf is the version line of a tool, for the result's record.
func toolVersionOf(name string) string {
	switch name {
	case "wrk":
		return toolVersion("wrk", "-v")
	case "haproxy":
		return toolVersion("haproxy", "-v")
	case "nginx":
		return toolVersion("nginx", "-v")
	case "pgbouncer":
		return toolVersion("pgbouncer", "--version")
	case "pgbench":
		return toolVersion("pgbench", "--version")
	case "postgres":
		if dir, err := pgtest.FindBinDir(); err == nil {
			return toolVersion(dir+"/postgres", "--version")
		}
	}
	return ""
}
