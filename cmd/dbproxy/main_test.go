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
		{"example", "../../configs/dbproxy.yaml", 0, "dbproxy.yaml: ok: 2 user(s), 1 database(s) on 3 node(s)", ""},
		{"bad replica", write("bad.yaml", "users: [{name: app, auth: trust}]\ndatabases:\n  app:\n    primary: 127.0.0.1:5432\n    replicas: [127.0.0.1:5433, localhost]\n"),
			1, "", `bad.yaml:5: databases.app.replicas[1]: "localhost" has no port`},
		{"wrong type", write("type.yaml", "users: [{name: app, auth: trust}]\nlisten: [1, 2]\ndatabases: {app: {primary: 127.0.0.1:5432}}\n"),
			1, "", "type.yaml:2: listen: cannot use !!seq into string"},
		{"missing password", write("pw.yaml", "users:\n  - name: app\ndatabases: {app: {primary: 127.0.0.1:5432}}\n"),
			1, "", "pw.yaml:2: users[0].password: is required with auth scram-sha-256"},
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
