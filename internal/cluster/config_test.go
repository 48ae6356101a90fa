package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{NodeName: "p1"}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Bind != "127.0.0.1:7946" || c.RaftBind != "127.0.0.1:7947" || c.Lease != 3*time.Second || c.Heartbeat != 500*time.Millisecond {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if len(c.Peers) != 1 || c.Peers[0] != (PeerConfig{Name: "p1", Raft: "127.0.0.1:7947"}) {
		t.Fatalf("default peers = %+v", c.Peers)
	}
}

func TestConfigValidate(t *testing.T) {
	three := []PeerConfig{{"p1", "10.0.0.1:7947"}, {"p2", "10.0.0.2:7947"}, {"p3", "10.0.0.3:7947"}}
	key := "MDEyMzQ1Njc4OWFiY2RlZg==" // 16 bytes
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of field paths and messages; nil: valid
	}{
		{"valid three peers", func(c *Config) {
			c.Bind, c.RaftBind, c.Peers, c.EncryptionKey = "10.0.0.1:7946", "10.0.0.1:7947", three, key
		}, nil},
		{"no node name", func(c *Config) { c.NodeName = ""; c.Peers = three }, []string{"node_name: is required"}},
		{"not among peers", func(c *Config) { c.NodeName = "p9"; c.Peers = three }, []string{`peers: does not list node_name "p9"`}},
		{"even peers", func(c *Config) { c.Peers = three[:2]; c.RaftBind = "10.0.0.1:7947"; c.RaftAdvertise = "" }, []string{"peers: has 2 entries"}},
		{"duplicate and missing", func(c *Config) {
			c.Peers = []PeerConfig{{"p1", "127.0.0.1:7947"}, {"p1", "x"}, {"", "127.0.0.1:1"}}
		}, []string{`peers[1].name: "p1" is listed twice`, "peers[1].raft:", "peers[2].name: is required"}},
		{"raft address mismatch", func(c *Config) { c.Peers = []PeerConfig{{"p1", "127.0.0.1:9999"}} }, []string{"peers[0].raft:", "differs from raft_advertise"}},
		{"short key", func(c *Config) { c.EncryptionKey = "YWI=" }, []string{"encryption_key: decodes to 2 bytes"}},
		{"not base64", func(c *Config) { c.EncryptionKey = "!!" }, []string{"encryption_key: is not base64"}},
		{"no key off loopback", func(c *Config) {
			c.Bind, c.RaftBind, c.Peers = "10.0.0.1:7946", "10.0.0.1:7947", three
		}, []string{"encryption_key: is required"}},
		{"insecure allowed", func(c *Config) {
			c.Bind, c.RaftBind, c.Peers, c.AllowInsecure = "10.0.0.1:7946", "10.0.0.1:7947", three, true
		}, nil},
		{"timers", func(c *Config) { c.Heartbeat = 2 * time.Second; c.RaftTimeout = 5 * time.Second }, []string{"heartbeat: must be positive and at most half", "raft_timeout: (5s) must be below lease"}},
		{"profile", func(c *Config) { c.Profile = "fast" }, []string{`profile: "fast" is not one of lan, local, wan`}},
		{"seed", func(c *Config) { c.Seeds = []string{"nohost"} }, []string{"seeds[0]:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{NodeName: "p1"}
			tt.mod(&c)
			c.SetDefaults()
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tt.want)
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *config.FieldError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
