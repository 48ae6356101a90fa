package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoPostgres is returned when the PostgreSQL server binaries cannot be found.
var ErrNoPostgres = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres, pg_basebackup) not found on PATH or under /usr/lib/postgresql/*/bin")

// FindBinDir returns the directory holding initdb, postgres and
// pg_basebackup: the directory of initdb on PATH (after following symlinks,
// since Debian links only some tools into /usr/bin), else the newest
// /usr/lib/postgresql/*/bin. PGTEST_BINDIR overrides both.
func FindBinDir() (string, error) {
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		if hasServer(d) {
			return d, nil
		}
		return "", fmt.Errorf("%w (PGTEST_BINDIR=%s)", ErrNoPostgres, d)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && hasServer(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if hasServer(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if hasServer(d) {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func hasServer(dir string) bool {
	for _, b := range []string{"initdb", "postgres", "pg_basebackup", "pg_ctl"} {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// Version returns the major version of the server in binDir, e.g. 15.
func Version(binDir string) (int, error) {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("pgtest: postgres --version: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("pgtest: unexpected version output %q", out)
	}
	major, _, _ := strings.Cut(f[len(f)-1], ".")
	return strconv.Atoi(major)
}
