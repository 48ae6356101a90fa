package pgproxy

import (
	"fmt"
	"sort"

	"github.com/tiergate/tiergate/internal/admin"
	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/internal/logging"
)

// DefaultAdminListen is dbproxy's admin address when none is configured.
const DefaultAdminListen = "127.0.0.1:9902"

// Config is the whole dbproxy config file (configs/dbproxy.yaml).
type Config struct {
	Log   logging.Config `yaml:"log"`
	Admin admin.Config   `yaml:"admin"`
	// Listen is the Postgres protocol address clients connect to.
	// Default: 127.0.0.1:6432.
	Listen string `yaml:"listen"`
	// Users who may log in through the proxy.
	Users []UserConfig `yaml:"users"`
	// Databases maps the database name clients ask for to a cluster.
	Databases map[string]DatabaseConfig `yaml:"databases"`
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
}

// DatabaseConfig is one primary and its replicas.
type DatabaseConfig struct {
	// Primary is host:port of the primary. Required.
	Primary string `yaml:"primary"`
	// Replicas are host:port of the streaming replicas.
	Replicas []string `yaml:"replicas"`
	// ServerDatabase is the database name on the servers. Default: the key.
	ServerDatabase string `yaml:"server_database"`
}

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
	for i := range c.Users {
		if c.Users[i].Auth == "" {
			c.Users[i].Auth = "scram-sha-256"
		}
	}
	for name, d := range c.Databases {
		if d.ServerDatabase == "" {
			d.ServerDatabase = name
			c.Databases[name] = d
		}
	}
}

// Validate checks the whole file.
func (c *Config) Validate() error {
	errs := []error{
		config.In("log", c.Log.Validate()),
		config.In("admin", c.Admin.Validate()),
		config.CheckHostPort("listen", c.Listen, true),
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
		errs = append(errs, config.At("users", i, config.Join(ue...)))
	}
	if len(c.Databases) == 0 {
		errs = append(errs, config.Errorf("databases", "at least one database is required"))
	}
	for _, name := range c.databaseNames() {
		d := c.Databases[name]
		de := []error{config.CheckHostPort("primary", d.Primary, false)}
		for i, r := range d.Replicas {
			de = append(de, config.CheckHostPort(config.Index("replicas", i), r, false))
		}
		errs = append(errs, config.In(config.Key("databases", name), config.Join(de...)))
	}
	return config.Join(errs...)
}

func (c *Config) databaseNames() []string {
	names := make([]string, 0, len(c.Databases))
	for n := range c.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Summary is the one line `dbproxy -check` prints.
func (c *Config) Summary() string {
	nodes := 0
	for _, d := range c.Databases {
		nodes += 1 + len(d.Replicas)
	}
	return fmt.Sprintf("%d user(s), %d database(s) on %d node(s), listening on %s", len(c.Users), len(c.Databases), nodes, c.Listen)
}
