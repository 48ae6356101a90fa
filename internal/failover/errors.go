package failover

import (
	"errors"
	"fmt"

	"github.com/tiergate/tiergate/internal/cluster"
)

// ErrFenced is matched (errors.Is) by every *FencedError: the proxy must
// not forward a write now. It is retryable: pgproxy answers with a
// retryable SQLSTATE (25006 read_only_sql_transaction, or 57P01 if it
// closes the session), never queues the write.
var ErrFenced = errors.New("failover: writes are fenced")

// ErrUnknownShard is returned for a shard that is not configured.
var ErrUnknownShard = errors.New("failover: unknown shard")

// ErrUnknownNode is returned by admin commands naming a node that is not
// in the shard.
var ErrUnknownNode = errors.New("failover: unknown node")

// ErrNotLeader is matched (errors.Is) by the error of an admin command run
// on a proxy that is not the Raft leader, or that lost the leadership while
// running it: run it on the leader the message names. It is the
// coordinator's own sentinel (cluster.ErrNotLeader), so leadership lost in
// the middle of a command matches too.
var ErrNotLeader = cluster.ErrNotLeader

// ErrRefused is returned (wrapped, with the reason) by admin commands
// whose preconditions do not hold, e.g. SwitchoverTo a node that is not a
// streaming replica.
var ErrRefused = errors.New("failover: refused")

// ErrNoRewinder is returned by Rejoin when neither Options.Rewinder nor
// rejoin_command is configured.
var ErrNoRewinder = errors.New("failover: no rewinder configured (set rejoin_command)")

// Fence reasons, in FencedError.Reason.
const (
	// ReasonNoLease: this proxy has not heard from the Raft leader within
	// the lease (it may be cut off from the majority).
	ReasonNoLease = "no lease from the cluster leader"
	// ReasonChanging: a change of primary is in progress.
	ReasonChanging = "primary change in progress"
	// ReasonUnverified: the decided primary was not yet verified writable
	// with the current term's epoch row.
	ReasonUnverified = "primary not verified for the current term"
	// ReasonNoState: no primary has been decided yet (bootstrapping).
	ReasonNoState = "no primary decided yet"
)

// FencedError says why writes to a shard are refused on this proxy.
type FencedError struct {
	Shard  string
	Term   uint64
	Reason string // one of the Reason constants
	Detail string // more context, may be empty
}

func (e *FencedError) Error() string {
	s := fmt.Sprintf("failover: writes to shard %s fenced (term %d): %s", e.Shard, e.Term, e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is makes errors.Is(err, ErrFenced) true.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// SafeToRetry is always true: nothing was sent; the client may retry.
func (e *FencedError) SafeToRetry() bool { return true }
