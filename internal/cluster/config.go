package cluster

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// Network profiles for the gossip layer's timers.
const (
	// ProfileLAN is memberlist's DefaultLANConfig (probe 1s, suspicion ~4s).
	ProfileLAN = "lan"
	// ProfileLocal is memberlist's DefaultLocalConfig (faster timers, for
	// one host or tests).
	ProfileLocal = "local"
	// ProfileWAN is memberlist's DefaultWANConfig (slow links).
	ProfileWAN = "wan"
)

// Config is the `cluster:` section: who the configured proxies are and how
// they talk. Every proxy of a cluster lists the same peers.
type Config struct {
	// NodeName is this proxy's name; it must be one of Peers. Required.
	NodeName string `yaml:"node_name"`
	// Bind is the gossip (memberlist) address, TCP and UDP.
	// Default: 127.0.0.1:7946.
	Bind string `yaml:"bind"`
	// Advertise is the gossip address other proxies use to reach this one.
	// Default: Bind.
	Advertise string `yaml:"advertise"`
	// Seeds are gossip addresses joined at start and again every
	// RejoinInterval while a configured peer is missing, so the cluster
	// re-forms after a partition. Default: none (a one-node cluster, or
	// peers join us).
	Seeds []string `yaml:"seeds"`
	// RaftBind is the Raft TCP address. Default: 127.0.0.1:7947.
	RaftBind string `yaml:"raft_bind"`
	// RaftAdvertise is the Raft address the peers know this proxy by; it
	// must equal this node's entry in Peers. Default: RaftBind.
	RaftAdvertise string `yaml:"raft_advertise"`
	// Peers are the configured proxies (the Raft voters). Quorum is a
	// majority of this list, never of the live gossip members. Use an odd
	// number (3 or 5). Default: only this node, with RaftAdvertise.
	Peers []PeerConfig `yaml:"peers"`
	// Label is memberlist's cluster label: packets from a cluster with
	// another label are dropped (with encryption it is authenticated).
	// Default: "tiergate".
	Label string `yaml:"label"`
	// EncryptionKey is the base64 of a 16, 24 or 32 byte AES key for the
	// gossip traffic (use ${ENV}). Default: none (plain text); required
	// when Bind is not a loopback address unless AllowInsecure is set.
	EncryptionKey string `yaml:"encryption_key"`
	// AllowInsecure allows unencrypted gossip on a non-loopback address.
	AllowInsecure bool `yaml:"allow_insecure"`
	// Profile tunes memberlist's timers: lan (default), local or wan.
	Profile string `yaml:"profile"`
	// Lease is how long a write lease granted by the Raft leader lasts;
	// writes are fenced on a proxy whose lease ran out. A new failover
	// decision waits at least this long before promoting. Default: 3s.
	Lease time.Duration `yaml:"lease"`
	// Heartbeat is how often a proxy renews its lease and sends its
	// observations to every member. Default: Lease/6.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// RejoinInterval is how often seeds are joined again while a peer is
	// missing from the membership. Default: 10s.
	RejoinInterval time.Duration `yaml:"rejoin_interval"`
	// RaftTimeout is Raft's heartbeat and election timeout. It must stay
	// below Lease. Default: 1s.
	RaftTimeout time.Duration `yaml:"raft_timeout"`
	// DataDir keeps Raft snapshots (file snapshot store). The Raft log
	// itself is in memory: the authoritative epoch of each shard also lives
	// in the database (tiergate.ha_epoch), which rebuilds the state after a
	// full restart. Default: "" (snapshots in memory too).
	DataDir string `yaml:"data_dir"`
}

// PeerConfig is one configured proxy.
type PeerConfig struct {
	// Name is the proxy's node_name. Required.
	Name string `yaml:"name"`
	// Raft is its Raft address (host:port). Required.
	Raft string `yaml:"raft"`
}

// SetDefaults fills in the documented defaults.
func (c *Config) SetDefaults() {
	if c.Bind == "" {
		c.Bind = "127.0.0.1:7946"
	}
	if c.Advertise == "" {
		c.Advertise = c.Bind
	}
	if c.RaftBind == "" {
		c.RaftBind = "127.0.0.1:7947"
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftBind
	}
	if len(c.Peers) == 0 && c.NodeName != "" {
		c.Peers = []PeerConfig{{Name: c.NodeName, Raft: c.RaftAdvertise}}
	}
	if c.Label == "" {
		c.Label = "tiergate"
	}
	if c.Profile == "" {
		c.Profile = ProfileLAN
	}
	if c.Lease == 0 {
		c.Lease = 3 * time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = c.Lease / 6
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = 10 * time.Second
	}
	if c.RaftTimeout == 0 {
		c.RaftTimeout = time.Second
	}
}

// Validate reports missing names, bad addresses, a node that is not among
// its peers, a bad key and timers that contradict each other.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, config.Errorf("node_name", "is required"))
	}
	errs = append(errs,
		config.CheckHostPort("bind", c.Bind, false),
		config.CheckHostPort("advertise", c.Advertise, false),
		config.CheckHostPort("raft_bind", c.RaftBind, false),
		config.CheckHostPort("raft_advertise", c.RaftAdvertise, false),
		config.CheckOneOf("profile", c.Profile, ProfileLAN, ProfileLocal, ProfileWAN),
	)
	for i, s := range c.Seeds {
		errs = append(errs, config.CheckHostPort(config.Index("seeds", i), s, false))
	}
	seen := map[string]bool{}
	self := false
	for i, p := range c.Peers {
		var perr []error
		if p.Name == "" {
			perr = append(perr, config.Errorf("name", "is required"))
		} else if seen[p.Name] {
			perr = append(perr, config.Errorf("name", "%q is listed twice", p.Name))
		}
		seen[p.Name] = true
		perr = append(perr, config.CheckHostPort("raft", p.Raft, false))
		if p.Name == c.NodeName && c.NodeName != "" {
			self = true
			if p.Raft != c.RaftAdvertise {
				perr = append(perr, config.Errorf("raft", "%q differs from raft_advertise %q of this node", p.Raft, c.RaftAdvertise))
			}
		}
		errs = append(errs, config.At("peers", i, config.Join(perr...)))
	}
	if c.NodeName != "" && len(c.Peers) > 0 && !self {
		errs = append(errs, config.Errorf("peers", "does not list node_name %q", c.NodeName))
	}
	if len(c.Peers) > 0 && len(c.Peers)%2 == 0 {
		errs = append(errs, config.Errorf("peers", "has %d entries: use an odd number, an even split leaves no side with a quorum", len(c.Peers)))
	}
	if c.EncryptionKey != "" {
		if _, err := decodeKey(c.EncryptionKey); err != nil {
			errs = append(errs, config.Errorf("encryption_key", "%v", err))
		}
	} else if !config.IsLoopback(c.Bind) && !c.AllowInsecure {
		errs = append(errs, config.Errorf("encryption_key", "is required when bind %q is not a loopback address (or set allow_insecure: true)", c.Bind))
	}
	if len(c.Label) > 255 {
		errs = append(errs, config.Errorf("label", "is longer than 255 bytes"))
	}
	if c.Lease <= 0 {
		errs = append(errs, config.Errorf("lease", "must be positive"))
	}
	if c.Heartbeat <= 0 || (c.Lease > 0 && c.Heartbeat*2 > c.Lease) {
		errs = append(errs, config.Errorf("heartbeat", "must be positive and at most half of lease (%s), got %s", c.Lease, c.Heartbeat))
	}
	if c.RejoinInterval <= 0 {
		errs = append(errs, config.Errorf("rejoin_interval", "must be positive"))
	}
	if c.RaftTimeout < 10*time.Millisecond {
		errs = append(errs, config.Errorf("raft_timeout", "must be at least 10ms, got %s", c.RaftTimeout))
	} else if c.Lease > 0 && c.RaftTimeout >= c.Lease {
		errs = append(errs, config.Errorf("raft_timeout", "(%s) must be below lease (%s)", c.RaftTimeout, c.Lease))
	}
	return config.Join(errs...)
}

// PeerNames returns the configured peers' names in config order.
func (c *Config) PeerNames() []string {
	out := make([]string, len(c.Peers))
	for i, p := range c.Peers {
		out[i] = p.Name
	}
	return out
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("is not base64: %v", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("decodes to %d bytes, want 16, 24 or 32", len(k))
}
