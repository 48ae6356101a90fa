package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		code    int
		wantOut string
		wantErr string
	}{
		{"example", "../../configs/edge.yaml", 0, "edge.yaml: ok: 1 listener(s), 3 upstream(s) with 5 backend(s), 7 route(s)", ""},
		{"no port", write("noport.yaml", "listeners: [{name: a, address: 127.0.0.1:8080}]\nupstreams:\n  - name: web\n    backends:\n      - address: 127.0.0.1:9001\n      - address: 10.0.0.1\n"),
			1, "", `noport.yaml:6: upstreams[0].backends[1].address: "10.0.0.1" has no port`},
		{"unknown key", write("unknown.yaml", "listeners: [{name: a, address: 127.0.0.1:8080}]\nupstream: []\n"),
			1, "", `unknown.yaml:2: upstream: unknown field (did you mean "upstreams"?)`},
		{"missing file", filepath.Join(dir, "nope.yaml"), 1, "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"-config", tc.path, "-check"}, &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errb.String(), tc.wantErr) {
				t.Fatalf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
			}
		})
	}
}
