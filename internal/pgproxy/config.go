package pgproxy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/health"
	"github.com/tiergate/tiergate/internal/admin"
	peers "github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/logging"
	"github.com/tiergate/tiergate/internal/querycache"
	"github.com/tiergate/tiergate/router/sqlroute"
	"github.com/tiergate/tiergate/shardmap"
)

// DefaultAdminListen is dbproxy's admin address when none is configured.
const DefaultAdminListen = "127.0.0.1:9902"

// ConsoleDatabase is the virtual database that holds the admin console.
const ConsoleDatabase = "tiergate"

// Pool modes.
const (
	// PoolModeTransaction lends a server connection for one transaction.
	PoolModeTransaction = "transaction"
	// PoolModeSession lends a server connection for the client's lifetime.
	PoolModeSession = "session"
)

// Read-your-writes modes.
const (
	RYWLSN    = "lsn"
	RYWWindow = "window"
	RYWOff    = "off"
)

// Config is the whole dbproxy config file (configs/dbproxy.yaml).
type Config struct {
	Log   logging.Config `yaml:"log"`
	Admin admin.Config   `yaml:"admin"`
	// Listen is the Postgres protocol address clients connect to.
	// Default: 127.0.0.1:6432.
	Listen string `yaml:"listen"`
	// TLS offers encrypted client connections; absent means clear text
	// only (SSLRequest is answered 'N').
	TLS *TLSConfig `yaml:"tls"`
	// MaxClientConn caps concurrent client connections; more are refused
	// with SQLSTATE 53300. Default: 1000.
	MaxClientConn int `yaml:"max_client_conn"`
	// MaxMessageSize caps one protocol message from a client or a server;
	// a bigger one is a protocol violation (08P01). Default: 64MiB.
	MaxMessageSize config.ByteSize `yaml:"max_message_size"`
	// AdminUsers may log in to the console database "tiergate". They must
	// be listed in Users (that is where their password lives). Default: none.
	AdminUsers []string `yaml:"admin_users"`
	// ShutdownTimeout is how long SIGTERM waits for open transactions
	// before closing every connection. Default: 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ParkIdleClientsAfter: a client idle this long outside a transaction
	// (plain TCP, nothing pinned) gives up its goroutine; one epoll
	// instance watches its socket and a new goroutine resumes the session
	// when it sends something. Keeps 10,000 idle clients cheap. Default:
	// 2s; a negative value never parks (Linux only).
	ParkIdleClientsAfter time.Duration `yaml:"park_idle_clients_after"`
	// Pool sizes and timeouts, shared by every (database, user, node) pool.
	Pool PoolConfig `yaml:"pool"`
	// Routing is the read/write split.
	Routing RoutingConfig `yaml:"routing"`
	// Health is the active node check.
	Health HealthConfig `yaml:"health"`
	// Users who may log in through the proxy.
	Users []UserConfig `yaml:"users"`
	// Databases maps the database name clients ask for to a cluster.
	Databases map[string]DatabaseConfig `yaml:"databases"`
	// Cluster joins this proxy to its peers (memberlist gossip + Raft);
	// with Failover, the peers decide each database's primary together.
	Cluster *peers.Config `yaml:"cluster"`
	// Failover detects a dead primary and promotes a replica (see
	// internal/failover). Its shards default to the databases: one shard
	// per database, named like it, with the primary and replicas as nodes.
	Failover *failover.Config `yaml:"failover"`
	// QueryCache bounds the read-through query cache (see
	// internal/querycache); databases choose what is cached with their
	// cache section, queries with /* tiergate: cache ttl=30s */. With a
	// cluster section, writes through any peer invalidate every peer's
	// cached results.
	QueryCache querycache.Config `yaml:"query_cache"`
}

// PoolConfig sizes the server connection pools. There is one pool per
// (database, user, node).
type PoolConfig struct {
	// Mode is transaction (default) or session.
	Mode string `yaml:"mode"`
	// Size is the most server connections per pool. Default: 20.
	Size int `yaml:"size"`
	// MinIdle is how many idle connections each pool keeps open. Default: 0.
	MinIdle int `yaml:"min_idle"`
	// ServerLifetime closes a server connection this old when it is next
	// idle. Default: 1h; 0 keeps connections forever.
	ServerLifetime time.Duration `yaml:"server_lifetime"`
	// ServerIdleTimeout closes a connection idle this long (above MinIdle).
	// Default: 10m; 0 never closes idle connections.
	ServerIdleTimeout time.Duration `yaml:"server_idle_timeout"`
	// QueryWaitTimeout is how long a query waits for a free server
	// connection before failing with SQLSTATE 53300. Default: 30s.
	QueryWaitTimeout time.Duration `yaml:"query_wait_timeout"`
	// ConnectTimeout bounds dialing and logging in to a server. Default: 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// RoutingConfig is the read/write split.
type RoutingConfig struct {
	// ReadWriteSplit sends reads to replicas. Default: true; false sends
	// everything to the primary.
	ReadWriteSplit *bool `yaml:"read_write_split"`
	// ReadYourWrites is lsn (default), window or off. lsn: after a client
	// commits a write its reads stay on the primary until a replica has
	// replayed the commit's WAL position; window: for RYWWindow after the
	// write; off: no stickiness.
	ReadYourWrites string `yaml:"read_your_writes"`
	// RYWWindow is the stickiness window of read_your_writes: window.
	// Default: 2s.
	RYWWindow time.Duration `yaml:"ryw_window"`
	// FallbackToPrimary sends reads to the primary when no replica is
	// usable. Default: true; false makes such reads fail (SQLSTATE 08006).
	FallbackToPrimary *bool `yaml:"fallback_to_primary"`
	// MaxReplicaLagBytes stops reads to a replica whose replay position is
	// this far behind the primary. Default: 16MiB; 0 disables the check.
	MaxReplicaLagBytes config.ByteSize `yaml:"max_replica_lag_bytes"`
	// MaxReplicaLag stops reads to a replica whose last replayed transaction
	// is this old while it is behind. Default: 0 (off).
	MaxReplicaLag time.Duration `yaml:"max_replica_lag"`
	// ReadRetries is how many other nodes a read is retried on after a
	// connection error, when nothing was sent to the client yet. Default: 2.
	ReadRetries int `yaml:"read_retries"`
	// Classifier tunes the statement classifier (write_functions,
	// cache_size, max_parse_bytes; see router/sqlroute).
	Classifier sqlroute.Config `yaml:"classifier"`
	// Balancer picks among the usable replicas. Default policy: least_conn
	// (round_robin, weighted_round_robin, p2c_ewma and random also work).
	Balancer balancer.Config `yaml:"balancer"`
}

// HealthConfig is the active check of every node (run by health.Manager
// with the Postgres probe). The check settings are fixed at start; a reload
// changes the checked nodes but not interval, timeout, rise or fall.
type HealthConfig struct {
	// Interval (default 1s), unhealthy_interval, timeout (default half the
	// interval, at most 1s), jitter, rise (default 2), fall (default 3) and
	// initial (default healthy: a node takes traffic before its first check,
	// and its first failure takes it out) as in package health.
	health.CheckConfig `yaml:",inline"`
	// User and Password log the checker in (on the database's
	// server_database). Default: the first user in users (its server
	// credentials).
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// UserConfig is one proxy user.
type UserConfig struct {
	// Name is the user name clients log in with. Required.
	Name string `yaml:"name"`
	// Password is the clear-text password (use ${ENV}), or a SCRAM verifier
	// / md5 hash as stored in pg_authid. Required unless auth is trust.
	Password string `yaml:"password"`
	// Auth is scram-sha-256 (default), md5 or trust.
	Auth string `yaml:"auth"`
	// ServerUser is the role used on the servers. Default: Name.
	ServerUser string `yaml:"server_user"`
	// ServerPassword is the clear-text password for the servers. Default:
	// Password when that is clear text; required when Password is a hash
	// and the servers do not trust the proxy.
	ServerPassword string `yaml:"server_password"`
}

// DatabaseConfig is one primary and its replicas, or a sharded database:
// several shards, each a primary and its replicas.
type DatabaseConfig struct {
	// Primary is host:port of the primary. Required unless shards is set.
	Primary string `yaml:"primary"`
	// Replicas are host:port of the streaming replicas.
	Replicas []string `yaml:"replicas"`
	// ServerDatabase is the database name on the servers (every shard).
	// Default: the key.
	ServerDatabase string `yaml:"server_database"`
	// Shards makes the database sharded: shard i of the sharding map is
	// shards[i], a primary with its replicas (read/write split, health
	// checks and pools apply per shard). Primary and replicas must then be
	// empty, and sharding is required.
	Shards []ShardConfig `yaml:"shards"`
	// Sharding is the shard map (see package shardmap): the shard count or
	// names, the sharded tables with their key columns and functions, and
	// the reference tables. Required with shards.
	Sharding *shardmap.Config `yaml:"sharding"`
	// TwoPhaseCommit makes a write transaction that touches several shards
	// commit with PREPARE TRANSACTION / COMMIT PREPARED, recorded in the
	// table tiergate.twophase_decisions on shard 0 (the shards need
	// max_prepared_transactions > 0). Without it such a transaction is
	// refused (SQLSTATE 0A000) when it writes to a second shard. Writes
	// that span shards by themselves (reference tables, multi-row INSERT,
	// UPDATE/DELETE without the shard key) run in one transaction per shard,
	// atomically across shards only with two_phase_commit. Default false.
	TwoPhaseCommit bool `yaml:"two_phase_commit"`
	// AllowUnsafeCrossShard runs reads that the proxy cannot merge
	// correctly (window functions, joins of sharded tables on other columns,
	// HAVING, ...) on every shard and concatenates the results, instead of
	// refusing them with SQLSTATE 0A000. Default false.
	AllowUnsafeCrossShard bool `yaml:"allow_unsafe_cross_shard"`
	// MaxFanoutBytes caps the rows one statement run on several shards may
	// return (the proxy holds them to merge); a bigger result fails with
	// SQLSTATE 54000. Default: 256MiB.
	MaxFanoutBytes config.ByteSize `yaml:"max_fanout_bytes"`
	// Cache caches results of read-only queries on the listed tables or
	// digests (see querycache.Rules). Default: nothing is cached without
	// a hint.
	Cache *querycache.Rules `yaml:"cache"`
}

// ShardConfig is one shard of a sharded database.
type ShardConfig struct {
	// Primary is host:port of the shard's primary. Required.
	Primary string `yaml:"primary"`
	// Replicas are host:port of its streaming replicas.
	Replicas []string `yaml:"replicas"`
}

// sharded reports whether the database is sharded.
func (d *DatabaseConfig) sharded() bool { return len(d.Shards) > 0 || d.Sharding != nil }

// LoadConfig reads, defaults and validates a dbproxy config file.
func LoadConfig(path string) (*Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills in every section's defaults.
func (c *Config) SetDefaults() {
	c.Log.SetDefaults()
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	c.Admin.SetDefaults()
	if c.Listen == "" {
		c.Listen = "127.0.0.1:6432"
	}
	if c.MaxClientConn == 0 {
		c.MaxClientConn = 1000
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 64 << 20
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.ParkIdleClientsAfter == 0 {
		c.ParkIdleClientsAfter = 2 * time.Second
	}
	c.Pool.SetDefaults()
	c.Routing.SetDefaults()
	c.Health.SetDefaults()
	for i := range c.Users {
		u := &c.Users[i]
		if u.Auth == "" {
			u.Auth = "scram-sha-256"
		}
		if u.ServerUser == "" {
			u.ServerUser = u.Name
		}
		if u.ServerPassword == "" && !isHashedPassword(u.Password) {
			u.ServerPassword = u.Password
		}
	}
	for name, d := range c.Databases {
		if d.ServerDatabase == "" {
			d.ServerDatabase = name
			c.Databases[name] = d
		}
		if d.sharded() {
			if d.Sharding != nil {
				d.Sharding.SetDefaults()
			}
			if d.MaxFanoutBytes == 0 {
				d.MaxFanoutBytes = 256 << 20
			}
			c.Databases[name] = d
		}
	}
	c.setHADefaults()
	c.QueryCache.SetDefaults()
}

// setHADefaults fills the cluster and failover sections: failover shards
// default to the database clusters: one per unsharded database (named like
// it) and one per shard of a sharded database ("<db>/<shard>"), each with
// its primary and replicas as nodes named by address, the primary first.
func (c *Config) setHADefaults() {
	if c.Cluster != nil {
		c.Cluster.SetDefaults()
	}
	if c.Failover == nil {
		return
	}
	if len(c.Failover.Shards) == 0 {
		for _, hs := range c.haClusters() {
			sh := failover.ShardConfig{Name: hs.name, Primary: hs.primary}
			sh.Nodes = append(sh.Nodes, failover.NodeConfig{Name: hs.primary, Address: hs.primary})
			for _, r := range hs.replicas {
				sh.Nodes = append(sh.Nodes, failover.NodeConfig{Name: r, Address: r})
			}
			c.Failover.Shards = append(c.Failover.Shards, sh)
		}
	}
	c.Failover.SetDefaults()
}

// haCluster is one replicated cluster the failover manager watches.
type haCluster struct {
	name     string // the proxy's cluster name: "app" or "shop/s0"
	primary  string
	replicas []string
}

// haClusters lists the clusters under their proxy names (the names
// runtime.clusters uses).
func (c *Config) haClusters() []haCluster {
	var out []haCluster
	for _, name := range c.databaseNames() {
		d := c.Databases[name]
		if !d.sharded() {
			out = append(out, haCluster{name: name, primary: d.Primary, replicas: d.Replicas})
			continue
		}
		if d.Sharding == nil {
			continue
		}
		m, err := shardmap.New(*d.Sharding)
		if err != nil {
			continue // reported by Validate
		}
		for i, sc := range d.Shards {
			out = append(out, haCluster{name: name + "/" + m.ShardName(i), primary: sc.Primary, replicas: sc.Replicas})
		}
	}
	return out
}

// validateHA checks the cluster and failover sections.
func (c *Config) validateHA() error {
	var errs []error
	switch {
	case c.Failover != nil && c.Cluster == nil:
		errs = append(errs, config.Errorf("cluster", "is required with failover (the peers decide together; a single proxy is a one-node cluster)"))
	case c.Cluster != nil:
		errs = append(errs, config.In("cluster", c.Cluster.Validate()))
	}
	if c.Failover != nil {
		errs = append(errs, config.In("failover", c.Failover.Validate()))
		known := map[string]bool{}
		for _, hc := range c.haClusters() {
			known[hc.name] = true
		}
		for i, sh := range c.Failover.Shards {
			if !known[sh.Name] {
				errs = append(errs, config.Errorf(config.Index("failover.shards", i)+".name", "%q is not a database (or <database>/<shard> of a sharded one)", sh.Name))
			}
		}
	}
	return config.Join(errs...)
}

// SetDefaults fills in the documented defaults.
func (p *PoolConfig) SetDefaults() {
	if p.Mode == "" {
		p.Mode = PoolModeTransaction
	}
	if p.Size == 0 {
		p.Size = 20
	}
	if p.ServerLifetime == 0 {
		p.ServerLifetime = time.Hour
	}
	if p.ServerIdleTimeout == 0 {
		p.ServerIdleTimeout = 10 * time.Minute
	}
	if p.QueryWaitTimeout == 0 {
		p.QueryWaitTimeout = 30 * time.Second
	}
	if p.ConnectTimeout == 0 {
		p.ConnectTimeout = 5 * time.Second
	}
}

// Validate reports impossible sizes and an unknown mode.
func (p *PoolConfig) Validate() error {
	var errs []error
	errs = append(errs, config.CheckOneOf("mode", p.Mode, PoolModeTransaction, PoolModeSession))
	if p.Size < 1 {
		errs = append(errs, config.Errorf("size", "must be at least 1, got %d", p.Size))
	}
	if p.MinIdle < 0 || p.MinIdle > p.Size {
		errs = append(errs, config.Errorf("min_idle", "must be between 0 and size (%d), got %d", p.Size, p.MinIdle))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"server_lifetime", p.ServerLifetime}, {"server_idle_timeout", p.ServerIdleTimeout}, {"query_wait_timeout", p.QueryWaitTimeout}, {"connect_timeout", p.ConnectTimeout}} {
		if d.v < 0 {
			errs = append(errs, config.Errorf(d.name, "must not be negative"))
		}
	}
	return config.Join(errs...)
}

// split reports whether reads may go to replicas (read_write_split).
func (r *RoutingConfig) split() bool { return r.ReadWriteSplit == nil || *r.ReadWriteSplit }

// fallback reports whether reads may fall back to the primary.
func (r *RoutingConfig) fallback() bool { return r.FallbackToPrimary == nil || *r.FallbackToPrimary }

// SetDefaults fills in the documented defaults.
func (r *RoutingConfig) SetDefaults() {
	if r.ReadWriteSplit == nil {
		r.ReadWriteSplit = new(true)
	}
	if r.FallbackToPrimary == nil {
		r.FallbackToPrimary = new(true)
	}
	if r.ReadYourWrites == "" {
		r.ReadYourWrites = RYWLSN
	}
	if r.RYWWindow == 0 {
		r.RYWWindow = 2 * time.Second
	}
	if r.MaxReplicaLagBytes == 0 {
		r.MaxReplicaLagBytes = 16 << 20
	}
	if r.ReadRetries == 0 {
		r.ReadRetries = 2
	}
	r.Classifier.SetDefaults()
	if r.Balancer.Policy == "" {
		r.Balancer.Policy = balancer.LeastConn
	}
	r.Balancer.SetDefaults()
}

// Validate reports an unknown read_your_writes mode and negative values.
func (r *RoutingConfig) Validate() error {
	var errs []error
	errs = append(errs, config.CheckOneOf("read_your_writes", r.ReadYourWrites, RYWLSN, RYWWindow, RYWOff))
	if r.RYWWindow < 0 {
		errs = append(errs, config.Errorf("ryw_window", "must not be negative"))
	}
	if r.MaxReplicaLag < 0 {
		errs = append(errs, config.Errorf("max_replica_lag", "must not be negative"))
	}
	if r.ReadRetries < 0 {
		errs = append(errs, config.Errorf("read_retries", "must not be negative"))
	}
	errs = append(errs, config.In("classifier", r.Classifier.Validate()))
	if r.Balancer.Policy == balancer.ConsistentHash || r.Balancer.Policy == balancer.StickyCookie {
		errs = append(errs, config.Errorf("balancer.policy", "%q needs a request key; dbproxy has none", r.Balancer.Policy))
	} else {
		errs = append(errs, config.In("balancer", r.Balancer.Validate()))
	}
	return config.Join(errs...)
}

// SetDefaults fills in the documented defaults.
func (h *HealthConfig) SetDefaults() {
	if h.Interval == 0 {
		h.Interval = time.Second
	}
	if h.Initial == "" {
		h.Initial = health.InitialHealthy
	}
	h.CheckConfig.SetDefaults()
}

// Validate reports what package health rejects.
func (h *HealthConfig) Validate() error { return h.CheckConfig.Validate() }

// Validate checks the whole file.
func (c *Config) Validate() error {
	errs := []error{
		config.In("log", c.Log.Validate()),
		config.In("admin", c.Admin.Validate()),
		config.CheckHostPort("listen", c.Listen, true),
		config.In("pool", c.Pool.Validate()),
		config.In("routing", c.Routing.Validate()),
		config.In("health", c.Health.Validate()),
	}
	if c.TLS != nil {
		errs = append(errs, config.In("tls", c.TLS.Validate()))
	}
	errs = append(errs, c.validateHA(), config.In("query_cache", c.QueryCache.Validate()))
	if c.MaxClientConn < 1 {
		errs = append(errs, config.Errorf("max_client_conn", "must be at least 1"))
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > 1<<30 {
		errs = append(errs, config.Errorf("max_message_size", "must be between 1KiB and 1GiB, got %v", c.MaxMessageSize))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, config.Errorf("shutdown_timeout", "must not be negative"))
	}
	if len(c.Users) == 0 {
		errs = append(errs, config.Errorf("users", "at least one user is required"))
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		var ue []error
		if u.Name == "" {
			ue = append(ue, config.Errorf("name", "is required"))
		} else if seen[u.Name] {
			ue = append(ue, config.Errorf("name", "duplicate user %q", u.Name))
		}
		seen[u.Name] = true
		ue = append(ue, config.CheckOneOf("auth", u.Auth, "scram-sha-256", "md5", "trust"))
		if u.Auth != "trust" && u.Password == "" {
			ue = append(ue, config.Errorf("password", "is required with auth %s", u.Auth))
		}
		if u.Password != "" {
			if _, err := newCredentials(u.Name, u.Password); err != nil {
				ue = append(ue, config.Errorf("password", "%v", err))
			}
		}
		if u.Auth == "md5" && strings.HasPrefix(u.Password, "SCRAM-SHA-256$") {
			ue = append(ue, config.Errorf("password", "a SCRAM verifier cannot check md5 logins: use the clear-text password or an md5 hash"))
		}
		errs = append(errs, config.At("users", i, config.Join(ue...)))
	}
	for i, a := range c.AdminUsers {
		if !seen[a] {
			errs = append(errs, config.Errorf(config.Index("admin_users", i), "%q is not in users", a))
		}
	}
	if len(c.Databases) == 0 {
		errs = append(errs, config.Errorf("databases", "at least one database is required"))
	}
	for _, name := range c.databaseNames() {
		d := c.Databases[name]
		var de []error
		if d.sharded() {
			de = append(de, c.validateSharded(&d)...)
		} else {
			de = append(de, config.CheckHostPort("primary", d.Primary, false))
		}
		if name == ConsoleDatabase {
			de = append(de, config.Errorf("", "%q is the admin console's name", name))
		}
		for i, r := range d.Replicas {
			de = append(de, config.CheckHostPort(config.Index("replicas", i), r, false))
		}
		if d.Cache != nil {
			de = append(de, config.In("cache", d.Cache.Validate()))
		}
		errs = append(errs, config.In(config.Key("databases", name), config.Join(de...)))
	}
	return config.Join(errs...)
}

// validateSharded checks a sharded database's fields.
func (c *Config) validateSharded(d *DatabaseConfig) []error {
	var de []error
	if d.Primary != "" || len(d.Replicas) > 0 {
		de = append(de, config.Errorf("primary", "a sharded database lists its servers under shards, not primary/replicas"))
	}
	if len(d.Shards) == 0 {
		de = append(de, config.Errorf("shards", "sharding is set: list one primary (and its replicas) per shard"))
	}
	for i, sh := range d.Shards {
		se := []error{config.CheckHostPort("primary", sh.Primary, false)}
		for j, r := range sh.Replicas {
			se = append(se, config.CheckHostPort(config.Index("replicas", j), r, false))
		}
		de = append(de, config.At("shards", i, config.Join(se...)))
	}
	if d.Sharding == nil {
		de = append(de, config.Errorf("sharding", "is required with shards (the shard map)"))
		return de
	}
	if err := d.Sharding.Validate(); err != nil {
		de = append(de, config.In("sharding", err))
		return de
	}
	n := d.Sharding.Shards.Len()
	if len(d.Shards) > 0 && len(d.Shards) != n {
		de = append(de, config.Errorf("shards", "has %d entries but sharding.shards has %d shards", len(d.Shards), n))
	}
	if n > sqlroute.MaxRouterShards {
		de = append(de, config.Errorf("sharding.shards", "at most %d shards are supported, got %d", sqlroute.MaxRouterShards, n))
	}
	if c.Pool.Mode != PoolModeTransaction {
		de = append(de, config.Errorf("shards", "a sharded database needs pool.mode %s", PoolModeTransaction))
	}
	if d.MaxFanoutBytes < 0 {
		de = append(de, config.Errorf("max_fanout_bytes", "must not be negative"))
	}
	return de
}

func (c *Config) databaseNames() []string {
	names := make([]string, 0, len(c.Databases))
	for n := range c.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// user returns the user named name, or nil.
func (c *Config) user(name string) *UserConfig {
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i]
		}
	}
	return nil
}

func (c *Config) isAdmin(name string) bool {
	for _, a := range c.AdminUsers {
		if a == name {
			return true
		}
	}
	return false
}

// Summary is the one line `dbproxy -check` prints.
func (c *Config) Summary() string {
	nodes := 0
	for _, d := range c.Databases {
		nodes += 1 + len(d.Replicas)
		if d.sharded() {
			nodes--
			for _, sh := range d.Shards {
				nodes += 1 + len(sh.Replicas)
			}
		}
	}
	return fmt.Sprintf("%d user(s), %d database(s) on %d node(s), listening on %s", len(c.Users), len(c.Databases), nodes, c.Listen)
}
