package failover

import (
	"fmt"
	"slices"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// Config is the `failover:` section: the policy, the credentials used for
// probes and promotions, and the shards (each a primary and its replicas).
type Config struct {
	// Enabled turns automatic failover on. Manual commands (FailoverTo,
	// SwitchoverTo, Rejoin) and write fencing work either way.
	// Default: true.
	Enabled *bool `yaml:"enabled"`
	// FailoverAfter is how long a majority of the configured proxies must
	// have seen the primary unreachable before a failover starts.
	// Default: 5s.
	FailoverAfter time.Duration `yaml:"failover_after"`
	// MaxFailoverLag refuses automatic failover when the best candidate
	// has received less than the last WAL position seen on the primary
	// minus this many bytes. FailoverTo overrides it. Default: 1MiB.
	MaxFailoverLag config.ByteSize `yaml:"max_failover_lag"`
	// CheckInterval is how often every node is probed. Default: 1s.
	CheckInterval time.Duration `yaml:"check_interval"`
	// CheckTimeout bounds one probe (connect included). Default: 1s, at
	// most failover_after.
	CheckTimeout time.Duration `yaml:"check_timeout"`
	// VetoWindow: a failover is vetoed while a replica streams from the
	// primary and got a message from it within this window (the primary is
	// alive; the proxies' network is the problem). Default: failover_after.
	VetoWindow time.Duration `yaml:"veto_window"`
	// PromoteTimeout bounds pg_promote. Default: 60s.
	PromoteTimeout time.Duration `yaml:"promote_timeout"`
	// SwitchoverTimeout bounds how long SwitchoverTo waits for the
	// candidate to catch up while writes are paused. Default: 30s.
	SwitchoverTimeout time.Duration `yaml:"switchover_timeout"`
	// NoFailover lists nodes (by name) never promoted automatically.
	NoFailover []string `yaml:"no_failover"`
	// User and Password log in to every node for probes, promotion and
	// repointing (needs pg_promote, pg_reload_conf, ALTER SYSTEM on
	// primary_conninfo and synchronous_standby_names, CHECKPOINT, and
	// CREATE on the database for the tiergate schema; a superuser is
	// simplest). Default user: postgres.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Database is where the tiergate.ha_epoch table lives. Default: postgres.
	Database string `yaml:"database"`
	// SSLMode is the libpq sslmode of these connections. Default: prefer.
	SSLMode string `yaml:"sslmode"`
	// ReplicationUser and ReplicationPassword go into primary_conninfo when
	// a replica is repointed. Default: User and Password.
	ReplicationUser     string `yaml:"replication_user"`
	ReplicationPassword string `yaml:"replication_password"`
	// RejoinCommand is run by Rejoin (see CommandRewinder) to rewind a
	// stale node and restart it as a replica; it needs host access to the
	// node's data directory. Default: none (Rejoin needs Options.Rewinder).
	RejoinCommand []string `yaml:"rejoin_command"`
	// Shards are the replicated clusters, each failed over on its own.
	Shards []ShardConfig `yaml:"shards"`
}

// ShardConfig is one replicated cluster.
type ShardConfig struct {
	// Name identifies the shard (the key of its decided state). Required.
	Name string `yaml:"name"`
	// Primary is the node that is primary when the shard has no decided
	// state and no epoch row exists yet. Default: the first node.
	Primary string `yaml:"primary"`
	// Nodes are the shard's servers. At least one.
	Nodes []NodeConfig `yaml:"nodes"`
}

// NodeConfig is one PostgreSQL server.
type NodeConfig struct {
	// Name is the node's name in state, status and logs, and its
	// application_name in primary_conninfo (so it is what
	// synchronous_standby_names lists). Default: Address.
	Name string `yaml:"name"`
	// Address is host:port. Required.
	Address string `yaml:"address"`
}

// IsEnabled reports whether automatic failover is on.
func (c *Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// SetDefaults fills in the documented defaults.
func (c *Config) SetDefaults() {
	if c.FailoverAfter == 0 {
		c.FailoverAfter = 5 * time.Second
	}
	if c.MaxFailoverLag == 0 {
		c.MaxFailoverLag = 1 << 20
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = time.Second
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = min(time.Second, c.FailoverAfter)
	}
	if c.VetoWindow == 0 {
		c.VetoWindow = c.FailoverAfter
	}
	if c.PromoteTimeout == 0 {
		c.PromoteTimeout = 60 * time.Second
	}
	if c.SwitchoverTimeout == 0 {
		c.SwitchoverTimeout = 30 * time.Second
	}
	if c.User == "" {
		c.User = "postgres"
	}
	if c.Database == "" {
		c.Database = "postgres"
	}
	if c.SSLMode == "" {
		c.SSLMode = "prefer"
	}
	if c.ReplicationUser == "" {
		c.ReplicationUser = c.User
		if c.ReplicationPassword == "" {
			c.ReplicationPassword = c.Password
		}
	}
	for i := range c.Shards {
		s := &c.Shards[i]
		for j := range s.Nodes {
			if s.Nodes[j].Name == "" {
				s.Nodes[j].Name = s.Nodes[j].Address
			}
		}
		if s.Primary == "" && len(s.Nodes) > 0 {
			s.Primary = s.Nodes[0].Name
		}
	}
}

// Validate reports bad timers, unknown node names and duplicate shards or
// nodes.
func (c *Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"failover_after", c.FailoverAfter}, {"check_interval", c.CheckInterval}, {"check_timeout", c.CheckTimeout},
		{"veto_window", c.VetoWindow}, {"promote_timeout", c.PromoteTimeout}, {"switchover_timeout", c.SwitchoverTimeout}} {
		if d.v <= 0 {
			errs = append(errs, config.Errorf(d.name, "must be positive, got %s", d.v))
		}
	}
	if c.CheckTimeout > c.FailoverAfter && c.FailoverAfter > 0 {
		errs = append(errs, config.Errorf("check_timeout", "(%s) must not exceed failover_after (%s)", c.CheckTimeout, c.FailoverAfter))
	}
	if c.MaxFailoverLag < 0 {
		errs = append(errs, config.Errorf("max_failover_lag", "must not be negative"))
	}
	if c.PromoteTimeout > 0 && c.PromoteTimeout < time.Second {
		errs = append(errs, config.Errorf("promote_timeout", "must be at least 1s, got %s", c.PromoteTimeout))
	}
	errs = append(errs, config.CheckOneOf("sslmode", c.SSLMode, "disable", "allow", "prefer", "require", "verify-ca", "verify-full"))
	if len(c.Shards) == 0 {
		errs = append(errs, config.Errorf("shards", "at least one shard is required"))
	}
	shardNames := map[string]bool{}
	allNodes := map[string]bool{}
	allAddrs := map[string]bool{}
	for i, s := range c.Shards {
		var serr []error
		if s.Name == "" {
			serr = append(serr, config.Errorf("name", "is required"))
		} else if shardNames[s.Name] {
			serr = append(serr, config.Errorf("name", "%q is listed twice", s.Name))
		}
		shardNames[s.Name] = true
		if len(s.Nodes) == 0 {
			serr = append(serr, config.Errorf("nodes", "at least one node is required"))
		}
		for j, n := range s.Nodes {
			var nerr []error
			if err := config.CheckHostPort("address", n.Address, false); err != nil {
				nerr = append(nerr, err)
			} else if allAddrs[n.Address] {
				nerr = append(nerr, config.Errorf("address", "%q is used twice", n.Address))
			}
			allAddrs[n.Address] = true
			if allNodes[n.Name] {
				nerr = append(nerr, config.Errorf("name", "%q is used twice", n.Name))
			}
			allNodes[n.Name] = true
			serr = append(serr, config.At("nodes", j, config.Join(nerr...)))
		}
		if s.Primary != "" && !slices.ContainsFunc(s.Nodes, func(n NodeConfig) bool { return n.Name == s.Primary }) {
			serr = append(serr, config.Errorf("primary", "%q is not one of the shard's nodes", s.Primary))
		}
		errs = append(errs, config.At("shards", i, config.Join(serr...)))
	}
	for i, n := range c.NoFailover {
		if !allNodes[n] {
			errs = append(errs, config.Errorf(config.Index("no_failover", i), "%q is not a configured node", n))
		}
	}
	return config.Join(errs...)
}

// shard returns the named shard's config.
func (c *Config) shard(name string) (ShardConfig, error) {
	for _, s := range c.Shards {
		if s.Name == name {
			return s, nil
		}
	}
	return ShardConfig{}, fmt.Errorf("%w: %q", ErrUnknownShard, name)
}

// node returns the named node of s.
func (s *ShardConfig) node(name string) (NodeConfig, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeConfig{}, false
}
