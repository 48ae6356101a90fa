package pgproxy

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/tiergate/tiergate/balancer"
)

// Node roles as configured.
const (
	rolePrimary = "primary"
	roleReplica = "replica"
)

// node is one PostgreSQL server of a cluster. Its health state lives in
// atomics written by its checker (and by sessions that see it fail) and
// read on every routing decision; the node object is kept across reloads
// while its address and role stay, so the state survives.
type node struct {
	db   string // proxy database name
	addr string
	role string // configured role

	healthy    atomic.Bool
	inRecovery atomic.Bool
	checked    atomic.Bool   // at least one check finished
	lsn        atomic.Uint64 // replay LSN (replica) or current LSN (primary)
	lagBytes   atomic.Int64
	lagSeconds atomic.Uint64 // float64 bits
	lastCheck  atomic.Int64  // unix ns
	lastErr    atomic.Pointer[string]
	downUntil  atomic.Int64 // unix ns: taken out by a session's connection error until then

	// be is the node as a balancer member (replicas); its health mirrors
	// readable(0).
	be *balancer.Backend

	// pools by proxy user; replaced as a whole on reload.
	pools atomic.Pointer[map[string]*pool]

	// maxLagBytes / maxLag are the routing limits in force.
	maxLagBytes atomic.Int64
	maxLag      atomic.Int64
}

func newNode(db, addr, role string) *node {
	n := &node{db: db, addr: addr, role: role, be: &balancer.Backend{ID: addr, Address: addr}}
	n.healthy.Store(true) // optimistic until the first check says otherwise
	n.inRecovery.Store(role == roleReplica)
	empty := map[string]*pool{}
	n.pools.Store(&empty)
	return n
}

// usable reports whether the node may take new connections at all.
func (n *node) usable() bool { return n.healthy.Load() && !n.passivelyDown() }

// passivelyDown reports whether a session saw the node fail recently.
func (n *node) passivelyDown() bool {
	until := n.downUntil.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() < until {
		return true
	}
	n.downUntil.CompareAndSwap(until, 0)
	return false
}

// readable reports whether the node may serve reads that need at least
// minLSN replayed (0: no floor).
func (n *node) readable(minLSN uint64) bool {
	if !n.usable() {
		return false
	}
	if n.role == rolePrimary {
		return true
	}
	if !n.inRecovery.Load() {
		return false // a replica that is not in recovery is in the wrong role
	}
	if max := n.maxLagBytes.Load(); max > 0 && n.lagBytes.Load() > max {
		return false
	}
	if max := n.maxLag.Load(); max > 0 && n.lagSec() > time.Duration(max).Seconds() {
		return false
	}
	return minLSN == 0 || n.lsn.Load() >= minLSN
}

func (n *node) lagSec() float64 { return math.Float64frombits(n.lagSeconds.Load()) }

// publish mirrors the node's read eligibility into its balancer member.
func (n *node) publish() { n.be.SetHealthy(n.readable(0), time.Now()) }

func (n *node) pool(user string) *pool { return (*n.pools.Load())[user] }

// markDown takes the node out of rotation for a while (a session saw a
// connection to it fail): until the next health check interval, so a node
// that is really down is confirmed by the checks and one that is fine comes
// back by itself.
func (n *node) markDown(reason string, d time.Duration) {
	n.lastErr.Store(&reason)
	n.downUntil.Store(time.Now().Add(d).UnixNano())
	n.publish()
	for _, p := range *n.pools.Load() {
		p.purgeIdle()
	}
}

func (n *node) errString() string {
	if p := n.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// cluster is one configured database, or one shard of a sharded database:
// a primary and its replicas.
type cluster struct {
	name     string // the database name, or database/shard
	db       string // the database clients name
	shard    int    // the shard number, -1 for an unsharded database
	serverDB string
	primary  *node
	replicas []*node
	rr       atomic.Uint32
	stats    *clusterStats

	bal       *balancer.Balancer // over the replicas
	byBackend map[*balancer.Backend]*node
}

// knownParams returns the reported parameters of user's connections
// (primary first), or nil before any connection was made.
func (c *cluster) knownParams(user string) map[string]string {
	for _, n := range c.nodes() {
		if p := n.pool(user); p != nil {
			if m := p.params.Load(); m != nil {
				return *m
			}
		}
	}
	return nil
}

// clusterStats are the console's SHOW STATS counters; they survive
// reloads with the cluster name.
type clusterStats struct {
	primaryQueries atomic.Int64
	replicaQueries atomic.Int64
	errors         atomic.Int64
	retries        atomic.Int64
	rywPrimary     atomic.Int64 // reads sent to the primary for read-your-writes
	fallbacks      atomic.Int64 // reads sent to the primary: no replica usable
	waitNanos      atomic.Int64
	waits          atomic.Int64
	// shardStatements counts the units of work routed to a shard (fan-out
	// targets included), counted before they run; 0 for unsharded
	// databases.
	shardStatements atomic.Int64
}

// pickReplica chooses a replica that has replayed minLSN, skipping
// exclude. The balancer picks among the replicas it considers available;
// when its pick has not replayed minLSN (read-your-writes) or is excluded,
// a round-robin scan finds one that fits. It returns nil when none does; a
// non-zero PickResult must be ended with Done.
func (c *cluster) pickReplica(minLSN uint64, exclude map[*node]bool) (*node, balancer.PickResult) {
	if len(c.replicas) == 0 {
		return nil, balancer.PickResult{}
	}
	if c.bal != nil {
		var ex *balancer.Backend
		for n := range exclude {
			ex = n.be
			break
		}
		if res, err := c.bal.Pick(balancer.PickInfo{Exclude: ex}); err == nil {
			if n := c.byBackend[res.Backend]; n != nil && !exclude[n] && n.readable(minLSN) {
				return n, res
			}
			res.Done(nil, 0)
		}
	}
	n := len(c.replicas)
	start := int(c.rr.Add(1))
	for i := 0; i < n; i++ {
		r := c.replicas[(start+i)%n]
		if exclude[r] || !r.readable(minLSN) {
			continue
		}
		return r, balancer.PickResult{}
	}
	return nil, balancer.PickResult{}
}

// anyReplicaBehind reports whether some usable replica has not replayed
// minLSN (so read-your-writes kept a read on the primary).
func (c *cluster) anyReplicaReadable() bool {
	for _, r := range c.replicas {
		if r.readable(0) {
			return true
		}
	}
	return false
}

func (c *cluster) nodes() []*node {
	return append([]*node{c.primary}, c.replicas...)
}
