package pgproxy

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/tiergate/tiergate/router/sqlroute"
	"github.com/tiergate/tiergate/shardmap"
)

// shardedDB is a sharded database of one runtime generation: one cluster
// per shard (so pools, health checks and the read/write split work per
// shard) and the router over the shard map. Like the runtime it is
// immutable; a reload builds a new one.
type shardedDB struct {
	name   string
	cfg    DatabaseConfig
	smap   *shardmap.Map
	router *sqlroute.ShardRouter
	shards []*cluster // shard i of the map is shards[i]
	stats  *shardStats
	rr     atomic.Uint32 // round robin for statements any shard answers
	// collation is the server database's collation as far as merging text
	// is concerned: 0 not checked yet, 1 byte order (C, POSIX), 2 other.
	collation atomic.Int32
	collName  atomic.Pointer[string]
}

// shardStats count what happens across shards; they survive reloads.
type shardStats struct {
	fanouts     atomic.Int64 // reads run on several shards and merged
	multiWrites atomic.Int64 // writes run on several shards
	twoPhase    atomic.Int64 // transactions committed with two-phase commit
	refused     atomic.Int64 // statements refused (cross-shard, shard key)
}

// buildSharded makes the shards of a sharded database.
func (srv *Server) buildSharded(rt *runtime, old *oldState, name string, d DatabaseConfig) (*shardedDB, error) {
	m, err := shardmap.New(*d.Sharding)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	router, err := sqlroute.NewShardRouter(m, sqlroute.ShardOptions{AllowUnsafe: d.AllowUnsafeCrossShard})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	sdb := &shardedDB{name: name, cfg: d, smap: m, router: router, stats: old.shardStats[name]}
	if sdb.stats == nil {
		sdb.stats = &shardStats{}
	}
	for i, sc := range d.Shards {
		key := name + "/" + m.ShardName(i)
		c, err := srv.buildCluster(rt, old, key, d.ServerDatabase, sc.Primary, sc.Replicas)
		if err != nil {
			return nil, err
		}
		c.db, c.shard = name, i
		rt.clusters[key] = c
		sdb.shards = append(sdb.shards, c)
	}
	return sdb, nil
}

// shardName names shard i for messages.
func (d *shardedDB) shardName(i int) string { return d.smap.ShardName(i) }

// showShards is the console's SHOW SHARDS: per sharded database, what
// spans shards (the per-shard statement counters are SHOW STATS's rows
// "database/shard").
func (srv *Server) showShards() *table {
	t := &table{cols: []string{"database", "shards", "map_version", "fanout_reads", "multi_shard_writes", "two_phase_commits", "refused"}}
	rt := srv.rt.Load()
	names := make([]string, 0, len(rt.sharded))
	for n := range rt.sharded {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		sdb := rt.sharded[n]
		st := sdb.stats
		t.add(n, len(sdb.shards), sdb.smap.Version(), st.fanouts.Load(), st.multiWrites.Load(), st.twoPhase.Load(), st.refused.Load())
	}
	return t
}

// shardConfigRows adds a sharded database's servers to SHOW CONFIG.
func shardConfigRows(name string, d *DatabaseConfig, t *table) {
	t.add("databases."+name, fmt.Sprintf("sharded: %d shards, server_database=%s two_phase_commit=%v allow_unsafe_cross_shard=%v max_fanout_bytes=%v map_version=%d",
		len(d.Shards), d.ServerDatabase, d.TwoPhaseCommit, d.AllowUnsafeCrossShard, d.MaxFanoutBytes, d.Sharding.Version))
	for i, sh := range d.Shards {
		t.add(fmt.Sprintf("databases.%s.shards[%d]", name, i), fmt.Sprintf("primary=%s replicas=%s", sh.Primary, strings.Join(sh.Replicas, ",")))
	}
}
