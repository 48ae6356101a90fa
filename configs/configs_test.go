// Package configs holds the example config files; its test loads each one
// with the schema of the binary it belongs to.
package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiergate/tiergate/internal/httpproxy"
	"github.com/tiergate/tiergate/internal/pgproxy"
)

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			switch {
			case strings.HasPrefix(f, "edge"):
				if _, err := httpproxy.LoadConfig(f); err != nil {
					t.Fatal(err)
				}
			case strings.HasPrefix(f, "dbproxy"):
				if _, err := pgproxy.LoadConfig(f); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("%s: name it edge*.yaml or dbproxy*.yaml so a test can load it", f)
			}
		})
	}
}

func TestMain(m *testing.M) {
	// Example values reference ${...:-default}; make sure a variable set in
	// the environment cannot break the examples' validation.
	os.Unsetenv("EDGE_ADMIN_TOKEN")
	os.Exit(m.Run())
}
