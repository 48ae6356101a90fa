package balancer

import (
	"errors"
	"time"
)

// ErrNoBackend is returned by Pick when no member is eligible: none is
// available (or, in panic mode, none is not draining) other than
// PickInfo.Exclude. The edge maps it to 503, dbproxy to an ErrorResponse.
var ErrNoBackend = errors.New("balancer: no backend available")

// Picker chooses a backend for one request or statement.
//
// Pick is safe for concurrent use, never blocks and does not allocate. On
// success the caller must call PickResult.Done exactly once when the attempt
// ends; on error there is nothing to release.
type Picker interface {
	Pick(PickInfo) (PickResult, error)
}

// PickInfo is what the engine knows about the request that a policy may use.
type PickInfo struct {
	// Key is the consistent_hash key (header value, cookie, client IP, ...),
	// extracted by the engine as Config.HashKey says. It is read during Pick
	// only and never retained. Other policies ignore it; consistent_hash with
	// an empty Key falls back to a weighted random pick.
	Key []byte
	// Exclude is never returned: a retry passes the backend of the attempt
	// that just failed so it cannot be picked twice in a row.
	Exclude *Backend
	// Now is the time of the pick when the caller has already read the clock
	// (it needs a start time to measure latency anyway); the zero value means
	// Options.Clock. Saves a clock read per pick.
	Now time.Time
}

// PickResult is a chosen backend plus what Done needs to account for it. It is
// a plain value: copying it is fine, but Done must run once per successful
// Pick. The zero PickResult's Done is a no-op.
type PickResult struct {
	Backend *Backend

	start int64 // unix nanos at Pick
	bal   *Balancer
}

// Done ends the attempt: it decrements the backend's in-flight count and feeds
// latency (measured by the caller from about the time of Pick) into its
// peak-EWMA. A non-nil err marks the attempt failed (connect error, timeout,
// or whatever the engine counts as a failure); a failure faster than
// Options.FailureLatency is recorded as that latency, so a backend that fails
// fast does not look fast. Pass nil for outcomes that say nothing about the
// backend, such as a client cancel.
func (r PickResult) Done(err error, latency time.Duration) {
	if r.Backend == nil {
		return
	}
	r.Backend.inflight.Add(-1)
	if r.bal != nil {
		r.bal.observe(r.Backend, r.start, latency, err)
	}
}
