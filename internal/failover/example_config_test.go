package failover_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/internal/failover"
)

// haConfig is how a dbproxy config file holds the two sections.
type haConfig struct {
	Cluster  cluster.Config  `yaml:"cluster"`
	Failover failover.Config `yaml:"failover"`
}

func (c *haConfig) SetDefaults() { c.Cluster.SetDefaults(); c.Failover.SetDefaults() }

func (c *haConfig) Validate() error {
	return config.Join(config.In("cluster", c.Cluster.Validate()), config.In("failover", c.Failover.Validate()))
}

// exampleYAML is the three-proxy example of the package documentation.
const exampleYAML = `
cluster:
  node_name: proxy-a
  bind: 10.0.0.11:7946
  raft_bind: 10.0.0.11:7947
  seeds: [10.0.0.11:7946, 10.0.0.12:7946, 10.0.0.13:7946]
  peers:
    - {name: proxy-a, raft: 10.0.0.11:7947}
    - {name: proxy-b, raft: 10.0.0.12:7947}
    - {name: proxy-c, raft: 10.0.0.13:7947}
  label: tiergate-prod
  encryption_key: ${TIERGATE_GOSSIP_KEY}
  lease: 3s
  data_dir: /var/lib/tiergate
failover:
  failover_after: 5s
  max_failover_lag: 1MiB
  check_interval: 1s
  no_failover: [db-c]
  user: tiergate_ha
  password: ${TIERGATE_HA_PASSWORD}
  rejoin_command: [/usr/local/bin/tiergate-rejoin]
  shards:
    - name: app
      primary: db-a
      nodes:
        - {name: db-a, address: 10.0.1.1:5432}
        - {name: db-b, address: 10.0.1.2:5432}
        - {name: db-c, address: 10.0.1.3:5432}
`

func TestExampleConfigParses(t *testing.T) {
	env := map[string]string{"TIERGATE_GOSSIP_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "TIERGATE_HA_PASSWORD": "s3cret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var c haConfig
	if err := config.Parse("dbproxy-ha.yaml", []byte(exampleYAML), &c, lookup); err != nil {
		t.Fatal(err)
	}
	if len(c.Cluster.PeerNames()) != 3 || c.Cluster.Lease != 3*time.Second || c.Failover.MaxFailoverLag != 1<<20 ||
		c.Failover.Password != "s3cret" || c.Failover.ReplicationUser != "tiergate_ha" || !c.Failover.IsEnabled() {
		t.Fatalf("parsed %+v", c)
	}
	bad := strings.Replace(exampleYAML, "primary: db-a", "primary: db-x", 1)
	err := config.Parse("dbproxy-ha.yaml", []byte(bad), &c, lookup)
	if err == nil || !strings.Contains(err.Error(), `failover.shards[0].primary: "db-x" is not one of the shard's nodes`) {
		t.Fatalf("bad primary: %v", err)
	}
}
