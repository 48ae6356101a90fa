// Package balancer owns the choice of one backend out of a set: the HTTP edge
// uses it to pick a web server per request, dbproxy to pick a replica per
// read. It knows nothing about HTTP or Postgres.
//
// A [Balancer] holds an immutable snapshot of its members behind an
// atomic.Pointer; [Balancer.Update] publishes a new one when membership
// changes, and [Balancer.Pick] never blocks and never takes a mutex. Each
// policy (round_robin, weighted_round_robin, least_conn, p2c_ewma,
// consistent_hash, random) is a constructor in an explicit name→constructor
// table that precomputes what it needs from the snapshot.
//
// # Runtime state and how pickers see it
//
// A [Backend] carries identity (ID, Address, Weight, Zone) and runtime state
// in atomics: in-flight count and limit, peak-EWMA latency, health, ejection
// deadline, drain flag and the time it last became healthy. That
// state lives on the Backend, not in the snapshot, so it survives snapshot
// swaps and config reloads as long as the engine keeps the same *Backend for
// the same ID.
//
// Design choice: snapshots hold membership only. Pickers call
// [Backend.Available] (a few atomic loads) on every candidate, so a health
// flip, an ejection, its expiry and a drain take effect on the very next pick
// without any rebuild, timer or change callback (so there is no Rebuild
// method: Update is for membership only). When a candidate is
// rejected, round-robin style policies draw a fresh counter value (and random
// ones a fresh number) instead of sliding to the neighbour, so an unavailable
// backend's share spreads evenly over the others rather than doubling its
// neighbour's.
//
// # Slow start
//
// With Config.SlowStart > 0, a backend that became healthy (or whose ejection
// ended) less than SlowStart ago has its effective weight ramped linearly from
// 10% to 100%. Sampling policies (round_robin, weighted_round_robin, random)
// accept such a candidate with that probability; cost policies (least_conn,
// p2c_ewma) multiply its weight by it. consistent_hash ignores slow start:
// key affinity wins.
//
// # Panic mode
//
// When no backend is eligible (available and not PickInfo.Exclude), Pick
// returns [ErrNoBackend]. With Config.PanicMode the policy runs once more over
// every member that is not draining, ignoring health, ejection and in-flight
// limits: the edge prefers trying a possibly-down server to failing every
// request when health checking itself is what broke. Draining members and
// Exclude are never picked.
package balancer
