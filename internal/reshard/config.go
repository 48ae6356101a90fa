package reshard

import (
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

// Where the bulk copy reads from.
const (
	// CopyFromReplica reads from the shard's replica when one is given,
	// else from its primary.
	CopyFromReplica = "replica"
	// CopyFromPrimary always reads from the primary.
	CopyFromPrimary = "primary"
)

// Config tunes a resharding job (the reshard: section of a dbproxy config,
// or the flags of dbproxy reshard). The zero Config means every default.
type Config struct {
	// BatchRows is how many source rows one copy batch scans: rows are
	// read in ranges of this many keys (in key order) and the moving ones
	// are written to their targets in one transaction per target. Default
	// 10000.
	BatchRows int `yaml:"batch_rows"`
	// CopyFrom is replica (default: the shard's replica when one is
	// configured, else its primary) or primary. Catch-up, verification and
	// deletes always use the primary.
	CopyFrom string `yaml:"copy_from"`
	// Parallel is how many (table, source shard) copies and deletes run at
	// once. Default 2.
	Parallel int `yaml:"parallel"`
	// CatchupBatch is how many change-log entries one catch-up round reads
	// from a source shard. Default 5000.
	CatchupBatch int `yaml:"catchup_batch"`
	// CatchupThreshold ends the online catch-up when every source's change
	// log holds fewer entries than this; the rest is applied during the
	// cutover's write pause. Default 1000.
	CatchupThreshold int `yaml:"catchup_threshold"`
	// CatchupTimeout fails the catch-up when the backlog does not fall
	// under catchup_threshold in this time (writes outpace the resharder).
	// Default 10m.
	CatchupTimeout time.Duration `yaml:"catchup_timeout"`
	// DeleteBatchRows is how many source rows one delete batch scans after
	// cutover. Default: batch_rows.
	DeleteBatchRows int `yaml:"delete_batch_rows"`
	// LockTimeout bounds each wait for the table lock that installing or
	// removing a change-capture trigger takes; writes to the table queue
	// behind the request meanwhile, so keep it short. A timed-out attempt
	// is retried up to 10 times, 0.5s apart. Default 2s.
	LockTimeout time.Duration `yaml:"lock_timeout"`
	// ReplicaWait bounds the wait for a replica to replay the trigger
	// installation before copying from it. Default 1m.
	ReplicaWait time.Duration `yaml:"replica_wait"`
	// ProgressInterval is the least time between two progress reports.
	// Default 1s.
	ProgressInterval time.Duration `yaml:"progress_interval"`
}

// Compile-time checks of the interfaces the config loader uses.
var (
	_ config.Defaulter = (*Config)(nil)
	_ config.Validator = (*Config)(nil)
)

// Defaults.
const (
	DefaultBatchRows        = 10000
	DefaultParallel         = 2
	DefaultCatchupBatch     = 5000
	DefaultCatchupThreshold = 1000
	DefaultCatchupTimeout   = 10 * time.Minute
	DefaultLockTimeout      = 2 * time.Second
	DefaultReplicaWait      = time.Minute
	DefaultProgress         = time.Second
)

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	if c.BatchRows == 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.CopyFrom == "" {
		c.CopyFrom = CopyFromReplica
	}
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.CatchupBatch == 0 {
		c.CatchupBatch = DefaultCatchupBatch
	}
	if c.CatchupThreshold == 0 {
		c.CatchupThreshold = DefaultCatchupThreshold
	}
	if c.CatchupTimeout == 0 {
		c.CatchupTimeout = DefaultCatchupTimeout
	}
	if c.DeleteBatchRows == 0 {
		c.DeleteBatchRows = c.BatchRows
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.ReplicaWait == 0 {
		c.ReplicaWait = DefaultReplicaWait
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgress
	}
}

// Validate reports every problem with its yaml field path. Call it after
// SetDefaults.
func (c *Config) Validate() error {
	var errs []error
	positive := func(path string, v, limit int) {
		if v < 1 || v > limit {
			errs = append(errs, config.Errorf(path, "must be in 1..%d, got %d", limit, v))
		}
	}
	positive("batch_rows", c.BatchRows, 10_000_000)
	positive("parallel", c.Parallel, 256)
	positive("catchup_batch", c.CatchupBatch, 1_000_000)
	positive("catchup_threshold", c.CatchupThreshold, 100_000_000)
	positive("delete_batch_rows", c.DeleteBatchRows, 10_000_000)
	errs = append(errs, config.CheckOneOf("copy_from", c.CopyFrom, CopyFromReplica, CopyFromPrimary))
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"catchup_timeout", c.CatchupTimeout},
		{"lock_timeout", c.LockTimeout},
		{"replica_wait", c.ReplicaWait},
		{"progress_interval", c.ProgressInterval},
	} {
		if d.v < 0 {
			errs = append(errs, config.Errorf(d.path, "must not be negative, got %v", d.v))
		}
	}
	return config.Join(errs...)
}
