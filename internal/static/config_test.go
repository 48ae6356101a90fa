package static

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigParse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c Config)
		wantErr []string
	}{
		{
			name: "defaults",
			yaml: "root: " + dir + "\n",
			check: func(t *testing.T, c Config) {
				if *c.Index != "index.html" || *c.MaxAge != time.Hour || !*c.ImmutableFingerprints || !*c.Compress || c.StripPrefix != "" {
					t.Fatalf("defaults %+v", c)
				}
			},
		},
		{
			name: "all set",
			yaml: "root: " + dir + "\nstrip_prefix: /assets/\nindex: \"\"\nmax_age: 0s\nimmutable_fingerprints: false\ncompress: false\n",
			check: func(t *testing.T, c Config) {
				if *c.Index != "" || *c.MaxAge != 0 || *c.ImmutableFingerprints || *c.Compress || c.StripPrefix != "/assets/" {
					t.Fatalf("parsed %+v", c)
				}
			},
		},
		{
			name: "max_age",
			yaml: "root: " + dir + "\nmax_age: 5m\n",
			check: func(t *testing.T, c Config) {
				if *c.MaxAge != 5*time.Minute {
					t.Fatalf("max_age %v", *c.MaxAge)
				}
			},
		},
		{name: "root required", yaml: "index: x.html\n", wantErr: []string{"root: is required"}},
		{name: "root missing", yaml: "root: " + filepath.Join(dir, "nope") + "\n", wantErr: []string{"static.yaml:1: root:", "no such file"}},
		{name: "root is a file", yaml: "root: " + file + "\n", wantErr: []string{"is not a directory"}},
		{name: "relative prefix", yaml: "root: " + dir + "\nstrip_prefix: assets\n", wantErr: []string{"static.yaml:2: strip_prefix: \"assets\" must start with /"}},
		{name: "unclean prefix", yaml: "root: " + dir + "\nstrip_prefix: /a/../b\n", wantErr: []string{"strip_prefix: \"/a/../b\" is not a clean path"}},
		{name: "index path", yaml: "root: " + dir + "\nindex: ../x.html\n", wantErr: []string{"index: \"../x.html\" must be a plain file name"}},
		{name: "negative max_age", yaml: "root: " + dir + "\nmax_age: -1s\n", wantErr: []string{"max_age: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			err := config.Parse("static.yaml", []byte(tt.yaml), &c, func(string) (string, bool) { return "", false })
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New accepted a config without root")
	}
}
