package pgproxy

import (
	"strings"
	"testing"

	"github.com/tiergate/tiergate/internal/config"
)

func TestShardedConfigValidation(t *testing.T) {
	const base = `
users: [{name: app, password: x}]
databases:
  app:
`
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", `    shards: [{primary: "127.0.0.1:5432", replicas: ["127.0.0.1:5433"]}, {primary: "127.0.0.1:5442"}]
    sharding: {version: 1, shards: [a, b], tables: [{table: t, column: id}]}
`, ""},
		{"count mismatch", `    shards: [{primary: "127.0.0.1:5432"}]
    sharding: {version: 1, shards: 2, tables: [{table: t, column: id}]}
`, "databases.app.shards: has 1 entries but sharding.shards has 2 shards"},
		{"primary too", `    primary: "127.0.0.1:5432"
    shards: [{primary: "127.0.0.1:5432"}]
    sharding: {version: 1, shards: 1}
`, "databases.app.primary: a sharded database lists its servers under shards"},
		{"no map", `    shards: [{primary: "127.0.0.1:5432"}]
`, "databases.app.sharding: is required with shards"},
		{"no shards", `    sharding: {version: 1, shards: 1}
`, "databases.app.shards: sharding is set"},
		{"bad map", `    shards: [{primary: "127.0.0.1:5432"}]
    sharding: {version: 1, shards: 1, tables: [{table: t, column: id, function: nope}]}
`, "databases.app.sharding.tables[0].function"},
		{"bad shard address", `    shards: [{primary: "nowhere"}]
    sharding: {version: 1, shards: 1}
`, "databases.app.shards[0].primary"},
		{"session pooling", `    shards: [{primary: "127.0.0.1:5432"}]
    sharding: {version: 1, shards: 1}
pool: {mode: session}
`, "needs pool.mode transaction"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := config.Parse("test.yaml", []byte(base+tc.yaml), &c, func(string) (string, bool) { return "", false })
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if tc.want == "" && !strings.Contains(c.Summary(), "on 3 node(s)") {
				t.Errorf("summary %q", c.Summary())
			}
		})
	}
}
