// Package failover owns dbproxy's high availability: it probes every node
// of every shard, shares what it sees with the other proxies (through
// package cluster), fences writes on this proxy, and — on the Raft leader
// only — detects a dead primary, promotes exactly one replica, repoints the
// others, and runs the operator's commands (FAILOVER TO, SWITCHOVER TO,
// REJOIN). Each shard (a primary and its replicas) fails over on its own.
//
// # What pgproxy calls
//
// Construct one Manager per process next to the cluster node and run both:
//
//	node, _ := cluster.New(cfg.Cluster, cluster.Options{Logger: log, Registerer: reg})
//	mgr, _ := failover.New(cfg.Failover, node, failover.Options{
//		Logger: log.Named("failover"), Registerer: reg,
//		OnChange: func(c failover.Change) {
//			for _, n := range c.Demoted { // old primary, newly stale nodes
//				srv.closeServerConns(c.Shard, n.Address) // every pooled conn, now
//			}
//		},
//	})
//	go node.Run(ctx)
//	go mgr.Run(ctx)
//
// Before forwarding any unit of work to a primary (and before handing out
// a primary connection in transaction pooling), ask the fence:
//
//	tgt, err := mgr.CheckWrite(shard) // lock-free, no allocation
//	if err != nil {
//		// errors.Is(err, failover.ErrFenced); *FencedError says why.
//		// Answer 25006 (read_only_sql_transaction), or 57P01 when the
//		// session is closed; never queue the write.
//	}
//	conn := pool(tgt.Addr).get()        // tgt.Node, tgt.Addr: the primary now
//	if conn.term != tgt.Term { ... }    // never reuse a connection opened
//	                                    // under another term for a write
//
// Reads are not fenced. Route them with Topology(shard): Replicas excludes
// the primary and the stale nodes (a former primary is never routed to
// again, reads included, until REJOIN). Primary(shard) returns the decided
// primary without the fence check.
//
// Admin console commands map to (all on the Raft leader; elsewhere the
// error matches ErrNotLeader and names the leader):
//
//	FAILOVER TO <node>   mgr.FailoverTo(ctx, shard, node)   // force, ignores lag
//	SWITCHOVER TO <node> mgr.SwitchoverTo(ctx, shard, node) // planned, no lost writes
//	REJOIN <node>        mgr.Rejoin(ctx, shard, node)       // rewind a stale node
//	SHOW NODES           mgr.Status()                       // per shard and node
//
// Status().Shards[i].Blocked is set on every proxy when automatic failover
// is refused (lag above max_failover_lag, no candidate, too few
// synchronous standbys answered): show it loudly. The metric
// tiergate_failover_blocked{shard} is 1 meanwhile.
//
// # The protocol
//
// Detection. Every proxy probes every node each check_interval on a fresh
// connection (reachable, in recovery, timeline, WAL positions, WAL
// receiver, epoch row) and sends its observations to the other proxies.
// The leader starts a failover when a majority of the configured proxies
// (not of the live members) has seen the primary unreachable for
// failover_after, no replica still receives WAL from it (a replica
// streaming from it with a message younger than veto_window vetoes: then
// the proxies' network is at fault, not the primary), and a first check of
// the candidates passes.
//
// Fence first. The leader commits, through Raft, the next term as pending
// (from then on every proxy that applies it refuses writes), empties
// primary_conninfo on the replicas (their positions stop moving) and waits
// lease + 20% + 100ms: every write lease granted under the previous term
// has ended (see package cluster), so no proxy still forwards a write to
// the old primary.
//
// Choose. Among reachable, non-stale replicas in recovery, not in
// no_failover, the highest max(receive, replay) position wins (ties: config
// order). Automatic failover is refused when the winner is more than
// max_failover_lag behind the highest position any proxy saw on the
// primary, or when, with synchronous replication (ANY/FIRST k of M), fewer
// than M-k+1 listed standbys answered (an acknowledged commit could be on
// the missing ones). The candidate is committed in the pending state
// before pg_promote, so a new leader finishes the same promotion instead
// of starting another.
//
// Promote. pg_promote(wait => true), check pg_is_in_recovery() is false,
// CHECKPOINT (pg_rewind of the old primary needs the new timeline in
// pg_control), carry synchronous_standby_names over (same method and count
// over the other nodes), write the term in tiergate.ha_epoch on the new
// primary (synchronous_commit = local), then commit the decision in Raft:
// term, primary, timeline, and the old primary (plus replicas that were
// ahead of the choice and cannot follow it) in the stale list. The other
// replicas are repointed (ALTER SYSTEM SET primary_conninfo, reload).
//
// Verify. A proxy opens its fence for a term only after its own probe saw
// the decided primary writable with that term's epoch row, and while it
// holds a lease. If the old primary answers again before a candidate was
// chosen, the pending term goes to it instead (nothing was promoted).
//
// Stale nodes. A former primary is never routed to, even when it comes
// back writable; the leader sets default_transaction_read_only on it (no
// session is terminated). Rejoin rewinds it through a Rewinder (host
// access to its data directory: rejoin_command, or the test harness) and
// takes it off the list once it streams from the primary.
//
// Restart. The Raft log lives in memory. If every proxy restarts, each
// shard is bootstrapped from the databases: the writable node holding the
// newest epoch row is the primary; other writable nodes are stale.
//
// # Timeline of the last change
//
// Status().Shards[i].LastFailover is the shard's last change of primary
// (or the last automatic failover refused), on every proxy: the leader
// records each step it performs (primary seen down by a quorum, fence
// committed, replicas frozen, lease grace over, candidate chosen with the
// others' positions or why they were skipped, pg_promote, CHECKPOINT,
// epoch written, old primary marked stale, the Raft commit, replicas
// repointed and streaming again, or why it refused) in the shard's
// committed state (cluster.ChangeLog, at most cluster.MaxEvents short
// events), so followers see the steps once committed. Steps after the
// decision (repointing) are committed in one extra Raft entry per batch,
// for postCommitWindow after the decision. Each proxy adds its own events
// (its probes of the primary failing, the states it applied, its fence
// closing and reopening); they are not shared. A refused automatic
// failover has a log of its own, which the operator's FAILOVER TO
// continues.
//
// # Not done here
//
// Replication slots on the new primary (P13: wal_keep_size must cover a
// repointed replica's gap), cascading replication, quorum commit with a
// standby list that differs from the shard's nodes, stopping or rewinding
// an old primary without a Rewinder, and fencing clients that bypass the
// proxies (beyond the soft default_transaction_read_only). An unreachable
// primary alone does not close the fence (writes fail with connection
// errors until a failover); a primary found in recovery does.
//
// # Example configuration (three proxies)
//
//	cluster:
//	  node_name: proxy-a                  # proxy-b / proxy-c on the others
//	  bind: 10.0.0.11:7946
//	  raft_bind: 10.0.0.11:7947
//	  seeds: [10.0.0.11:7946, 10.0.0.12:7946, 10.0.0.13:7946]
//	  peers:
//	    - {name: proxy-a, raft: 10.0.0.11:7947}
//	    - {name: proxy-b, raft: 10.0.0.12:7947}
//	    - {name: proxy-c, raft: 10.0.0.13:7947}
//	  label: tiergate-prod
//	  encryption_key: ${TIERGATE_GOSSIP_KEY}   # base64 of 32 random bytes
//	  lease: 3s
//	  data_dir: /var/lib/tiergate
//	failover:
//	  failover_after: 5s
//	  max_failover_lag: 1MiB
//	  check_interval: 1s
//	  no_failover: [db-c]
//	  user: tiergate_ha
//	  password: ${TIERGATE_HA_PASSWORD}
//	  rejoin_command: [/usr/local/bin/tiergate-rejoin]
//	  shards:
//	    - name: app
//	      primary: db-a
//	      nodes:
//	        - {name: db-a, address: 10.0.1.1:5432}
//	        - {name: db-b, address: 10.0.1.2:5432}
//	        - {name: db-c, address: 10.0.1.3:5432}
//
// Node names are the application_name each replica streams with, so they
// are what synchronous_standby_names lists. On the servers, keep
// wal_log_hints (or data checksums) on for pg_rewind, and
// wal_retrieve_retry_interval short (e.g. 1s) so repointed replicas resume
// quickly.
package failover
