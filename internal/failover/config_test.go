package failover

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := testConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.IsEnabled() || c.FailoverAfter != 5*time.Second || c.MaxFailoverLag != 1<<20 || c.CheckInterval != time.Second ||
		c.VetoWindow != 5*time.Second || c.User != "postgres" || c.ReplicationUser != "postgres" || c.Shards[0].Primary != "n0" {
		t.Fatalf("defaults: %+v", c)
	}
	c = Config{Shards: []ShardConfig{{Name: "s", Nodes: []NodeConfig{{Address: "127.0.0.1:1"}}}}}
	c.SetDefaults()
	if c.Shards[0].Nodes[0].Name != "127.0.0.1:1" || c.Shards[0].Primary != "127.0.0.1:1" {
		t.Fatalf("node name default: %+v", c.Shards[0])
	}
}

func TestConfigValidate(t *testing.T) {
	off := false
	tests := []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"ok", func(c *Config) {}, nil},
		{"disabled is valid", func(c *Config) { c.Enabled = &off }, nil},
		{"no shards", func(c *Config) { c.Shards = nil }, []string{"shards: at least one shard"}},
		{"bad timers", func(c *Config) { c.FailoverAfter = time.Second; c.CheckTimeout = 2 * time.Second; c.CheckInterval = -1 },
			[]string{"check_timeout: (2s) must not exceed failover_after", "check_interval: must be positive"}},
		{"unknown primary", func(c *Config) { c.Shards[0].Primary = "x" }, []string{`shards[0].primary: "x" is not one of`}},
		{"duplicate node", func(c *Config) { c.Shards[0].Nodes[2].Name = "n0" }, []string{`shards[0].nodes[2].name: "n0" is used twice`}},
		{"duplicate address", func(c *Config) { c.Shards[0].Nodes[2].Address = "127.0.0.1:5432" }, []string{`shards[0].nodes[2].address: "127.0.0.1:5432" is used twice`}},
		{"bad address", func(c *Config) { c.Shards[0].Nodes[1].Address = "nohost" }, []string{"shards[0].nodes[1].address:"}},
		{"duplicate shard", func(c *Config) {
			c.Shards = append(c.Shards, ShardConfig{Name: "app", Nodes: []NodeConfig{{Name: "m", Address: "127.0.0.1:9"}}})
		},
			[]string{`shards[1].name: "app" is listed twice`}},
		{"unknown no_failover", func(c *Config) { c.NoFailover = []string{"n9"} }, []string{`no_failover[0]: "n9" is not a configured node`}},
		{"sslmode", func(c *Config) { c.SSLMode = "maybe" }, []string{`sslmode: "maybe" is not one of`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
