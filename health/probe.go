package health

import (
	"context"
	"errors"
)

// Sentinel errors wrapped by probes, so logs and the engine can tell the
// failure classes apart with errors.Is.
var (
	// ErrTimeout: the check did not finish before its deadline.
	ErrTimeout = errors.New("check timed out")
	// ErrConnect: the target could not be reached (refused, unreachable).
	ErrConnect = errors.New("cannot connect")
	// ErrUnexpectedStatus: the target answered with a status outside the
	// expected ranges.
	ErrUnexpectedStatus = errors.New("unexpected status")
	// ErrBodyMismatch: the answer did not contain the expected text.
	ErrBodyMismatch = errors.New("body does not match")
	// ErrProbePanic: the probe panicked; the loop recovered and counted a
	// failure.
	ErrProbePanic = errors.New("probe panicked")
)

// Target is one node to watch.
type Target struct {
	// ID is the stable identity the engine uses (e.g. the balancer backend
	// ID). Empty means Address.
	ID string
	// Address is what the probe connects to (host:port). A target whose
	// address changes is checked afresh from the initial state.
	Address string
}

func (t Target) id() string {
	if t.ID == "" {
		return t.Address
	}
	return t.ID
}

// Result describes a passing check.
type Result struct {
	// Detail is a short description for status pages, e.g. "HTTP 200".
	Detail string
}

// Probe checks one target once. It is the seam between the generic checker
// loop (schedule, timeout, rise/fall, events) and a protocol: HTTPProbe is
// the HTTP implementation; a Postgres probe implements the same method.
//
// Check is called from one goroutine at a time (the target's checker). It
// must return by ctx's deadline (the check timeout) and should return early
// when ctx is cancelled. A nil error is a pass; a failure should wrap one of
// the package's sentinels (ErrTimeout, ErrConnect, ...) when one fits. A
// probe that holds resources may implement io.Closer; Close is called once
// when its checker stops.
type Probe interface {
	Check(ctx context.Context) (Result, error)
}

// ProbeFactory makes the probe for a target; the Manager calls it for every
// new target and every target whose address changed.
type ProbeFactory func(Target) (Probe, error)

func isTimeout(err error) bool { return errors.Is(err, ErrTimeout) }
