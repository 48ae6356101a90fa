package balancer

import (
	"sync/atomic"
	"time"
)

// maxWeight caps Backend.Weight so weight sums cannot overflow.
const maxWeight = 1 << 20

const (
	flagUnhealthy uint32 = 1 << iota
	flagDraining
)

// Backend is one target: a web server for the edge, a replica for dbproxy.
//
// The exported identity fields are set before the Backend is first given to
// [Balancer.Update] and then read only by Update (snapshots copy what they
// need); pickers never read them. To change a weight on reload, set it from
// the goroutine that calls Update, then call Update on every Balancer that
// holds the Backend.
//
// The runtime state is kept in atomics and shared by every snapshot and every
// Balancer the Backend belongs to; keep one *Backend per ID across config
// reloads to keep its health, load and latency history. The zero value is a
// healthy backend with no history. A Backend must not be copied.
type Backend struct {
	// ID is the stable identity, e.g. the address; consistent_hash hashes it,
	// so it must not change between reloads. Empty means Address.
	ID string
	// Address is where the engine connects (host:port); opaque here.
	Address string
	// Weight is the relative share for weighted policies. 0 or less means 1;
	// values above 1<<20 are clamped. Use SetDraining to stop new traffic.
	Weight int
	// Zone is the locality label (e.g. "eu-west-1a"); informational here.
	Zone string

	// Read on every pick, written rarely.
	flags        atomic.Uint32 // flagUnhealthy | flagDraining
	maxInFlight  atomic.Int64  // 0 = unlimited
	ejectedUntil atomic.Int64  // unix nanos; 0 = not ejected
	healthySince atomic.Int64  // unix nanos; 0 = no slow start

	_ [64]byte // keep the write-hot fields below off the read-mostly line

	// Written on every pick and every Done.
	inflight atomic.Int64
	lat      latency

	_ [64]byte // and off the next object's first line
}

// Available reports whether the backend may take new traffic at now: healthy,
// not draining, not ejected, and below its in-flight limit. Every policy uses
// it.
func (b *Backend) Available(now time.Time) bool {
	return b.available(unixNano(now))
}

func (b *Backend) available(now int64) bool {
	if b.flags.Load() != 0 || b.ejectedUntil.Load() > now {
		return false
	}
	limit := b.maxInFlight.Load()
	return limit <= 0 || b.inflight.Load() < limit
}

// SetMaxInFlight makes the backend unavailable while n picks are outstanding;
// 0 or less means unlimited (the default). It is a soft limit: picks racing on
// the last slot can overshoot it by the number of racing goroutines.
func (b *Backend) SetMaxInFlight(n int64) { b.maxInFlight.Store(n) }

// MaxInFlight returns the limit set by SetMaxInFlight (0 = unlimited).
func (b *Backend) MaxInFlight() int64 { return b.maxInFlight.Load() }

// SetHealthy records the verdict of a health check at now and reports whether
// it changed. A change from unhealthy to healthy starts the slow-start ramp at
// now.
func (b *Backend) SetHealthy(healthy bool, now time.Time) (changed bool) {
	for {
		old := b.flags.Load()
		nw := old | flagUnhealthy
		if healthy {
			nw = old &^ flagUnhealthy
		}
		if nw == old {
			return false
		}
		if b.flags.CompareAndSwap(old, nw) {
			if healthy {
				b.healthySince.Store(unixNano(now))
			}
			return true
		}
	}
}

// Healthy reports the last health verdict (true until SetHealthy(false)).
func (b *Backend) Healthy() bool { return b.flags.Load()&flagUnhealthy == 0 }

// SetDraining stops (true) or resumes (false) new picks of the backend, even in
// panic mode. Outstanding picks finish normally.
func (b *Backend) SetDraining(draining bool) {
	for {
		old := b.flags.Load()
		nw := old &^ flagDraining
		if draining {
			nw = old | flagDraining
		}
		if nw == old || b.flags.CompareAndSwap(old, nw) {
			return
		}
	}
}

// Draining reports whether SetDraining(true) is in effect.
func (b *Backend) Draining() bool { return b.flags.Load()&flagDraining != 0 }

// Eject makes the backend unavailable until the given time (passive outlier
// detection); the zero time lifts an ejection. The slow-start ramp restarts
// when the ejection ends.
func (b *Backend) Eject(until time.Time) {
	u := unixNano(until)
	b.ejectedUntil.Store(u)
	if u != 0 {
		b.healthySince.Store(u)
	}
}

// EjectedUntil returns the end of the current or last ejection, or the zero
// time.
func (b *Backend) EjectedUntil() time.Time { return fromUnixNano(b.ejectedUntil.Load()) }

// StartSlowStart restarts the slow-start ramp at now, e.g. for a backend added
// at runtime that did not go through SetHealthy(false) then SetHealthy(true).
func (b *Backend) StartSlowStart(now time.Time) { b.healthySince.Store(unixNano(now)) }

// HealthySince returns when the current slow-start ramp started, or the zero
// time when the backend has not changed state since it was created.
func (b *Backend) HealthySince() time.Time { return fromUnixNano(b.healthySince.Load()) }

// InFlight returns the number of picks whose Done has not been called yet.
func (b *Backend) InFlight() int64 { return b.inflight.Load() }

// Latency returns the stored peak-EWMA latency (0 before the first sample),
// without the decay pickers apply for time passed since the last sample.
func (b *Backend) Latency() time.Duration { return time.Duration(b.lat.stored()) }

func (b *Backend) key() string {
	if b.ID != "" {
		return b.ID
	}
	return b.Address
}

func (b *Backend) weight() uint64 {
	switch w := b.Weight; {
	case w <= 0:
		return 1
	case w > maxWeight:
		return maxWeight
	default:
		return uint64(w)
	}
}

// unixNano is t.UnixNano with the zero time mapped to 0. Times are wall-clock
// nanoseconds so they can live in atomics; a clock step only shifts ejection
// ends and ramps by the step.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
