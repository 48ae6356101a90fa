// Package cluster owns the coordination between dbproxy instances running
// side by side: membership and health observations over gossip
// (hashicorp/memberlist), the decided state of every shard committed
// through Raft (hashicorp/raft) among the configured proxies, and the write
// lease each proxy holds from the Raft leader.
//
// It carries state; it makes no failover decision. Package failover reads
// the observations, decides, and commits through Propose.
//
// # Pieces
//
//   - Membership: memberlist with a static seed list, joined again every
//     rejoin_interval while a configured peer is missing (memberlist never
//     re-forms a cluster after a partition longer than its dead-node
//     timeouts). The cluster label and the AES key come from the config;
//     nodes whose name is not a configured peer are refused.
//   - Observations: each proxy sends its latest Observations (what it saw
//     of every database node) directly to every member each heartbeat
//     (UDP, or TCP when large). NotifyMsg only copies the message into a
//     channel; one goroutine decodes it and publishes a new map through an
//     atomic pointer, read by PeerObservations.
//   - Decided state: a Raft FSM holding a ShardState per shard. A command
//     is a compare-and-set on the shard's Version; the FSM also refuses a
//     term going back and a decided term changing its primary, so no two
//     nodes can be decided primary in the same term. State returns the
//     applied state lock-free; Watch signals changes.
//   - Lease: see lease.go. LeaseValid is an atomic load and a monotonic
//     clock read.
//
// # Storage
//
// The Raft log and stable store are in memory; snapshots go to data_dir
// when set (else memory). A restarted proxy rejoins with an empty log and
// catches up from the leader; if every proxy restarts, the state is rebuilt
// from the epoch rows the failover package keeps in each database
// (tiergate.ha_epoch). Losing a proxy's log weakens Raft's guarantees for
// that proxy's votes; the epoch check before any promotion is the backstop.
//
// # Usage
//
//	cfg.SetDefaults()
//	node, err := cluster.New(cfg, cluster.Options{Logger: log})
//	go node.Run(ctx)              // heartbeats, lease, re-join; Close on ctx end
//	node.Publish(&obs)            // this proxy's observations
//	st := node.State()            // decided state, lock-free
//	if node.LeaseValid() { ... }  // may this proxy forward writes at all?
//	err = node.Propose(ctx, st.Shards["app"].Version, next) // leader only
//
// Faults is a fault-injection layer for tests: it cuts gossip and Raft
// traffic between chosen proxies of one process.
package cluster
