package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// defaultLatencyDecay is the peak-EWMA time constant (as in Finagle and
// Linkerd).
const defaultLatencyDecay = 10 * time.Second

// failureFactor: with Options.FailureLatency unset, a failed attempt counts as
// at least this many times the pool's mean latency.
const failureFactor = 10

// Options are code-level knobs the engine sets; the zero value is ready to use.
type Options struct {
	// Clock returns the current time; nil means time.Now. Tests inject a fake.
	Clock func() time.Time
	// Rand returns uniformly random 64-bit values and must be safe for
	// concurrent use; nil means math/rand/v2.Uint64.
	Rand func() uint64
	// LatencyDecay is the peak-EWMA time constant: how fast the estimate
	// follows lower samples and how fast an idle backend's estimate returns
	// to the pool mean. Default 10s.
	LatencyDecay time.Duration
	// FailureLatency is the least latency recorded for a failed attempt.
	// Default 0: ten times the pool's mean latency.
	FailureLatency time.Duration
}

// Balancer picks among its current members with one policy. It implements
// Picker; Pick is lock-free, Update publishes a new snapshot atomically, and
// both may be called concurrently from any goroutine.
type Balancer struct {
	policy    string
	build     newPolicy
	slowStart int64 // ns; 0 = off
	panicMode bool
	clock     func() time.Time
	rnd       func() uint64
	tau       float64 // ns
	failure   float64 // ns; 0 = failureFactor × mean

	// mean is the pool's mean successful latency (float64 bits, ns), the
	// neutral value idle estimates decay toward. Updated on a sample of
	// Done calls without CAS: losing an update is harmless.
	mean atomic.Uint64

	cur atomic.Pointer[snapshot]
}

var _ Picker = (*Balancer)(nil)

// New returns a Balancer with no members for cfg (defaults applied, then
// validated) and opts. Call Update before Pick.
func New(cfg Config, opts Options) (*Balancer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("balancer config: %w", err)
	}
	b := &Balancer{
		policy:    cfg.Policy,
		build:     policies[cfg.Policy],
		slowStart: int64(cfg.SlowStart),
		panicMode: cfg.PanicMode,
		clock:     opts.Clock,
		rnd:       opts.Rand,
		tau:       float64(opts.LatencyDecay),
		failure:   float64(opts.FailureLatency),
	}
	if b.clock == nil {
		b.clock = time.Now
	}
	if b.rnd == nil {
		b.rnd = rand.Uint64
	}
	if b.tau <= 0 {
		b.tau = float64(defaultLatencyDecay)
	}
	b.cur.Store(b.newSnapshot(nil))
	return b, nil
}

// Policy returns the policy name.
func (b *Balancer) Policy() string { return b.policy }

// Update replaces the members. nil entries and repeated pointers are skipped;
// the slice is copied. Members keep their runtime state. Picks already in
// progress finish on the previous snapshot.
func (b *Balancer) Update(backends []*Backend) {
	s := b.newSnapshot(backends)
	if b.mean.Load() == 0 {
		b.seedMean(s.backends)
	}
	b.cur.Store(s)
}

// Backends returns the current members in Update order. The slice is shared:
// do not modify it.
func (b *Balancer) Backends() []*Backend { return b.cur.Load().backends }

// Pick chooses an eligible member with the policy, or in panic mode falls back
// to any member that is not draining (see the package doc), and counts it in
// flight. It returns ErrNoBackend when there is none.
func (b *Balancer) Pick(info PickInfo) (PickResult, error) {
	s := b.cur.Load()
	if len(s.backends) == 0 {
		return PickResult{}, ErrNoBackend
	}
	t := info.Now
	if t.IsZero() {
		t = b.clock()
	}
	now := t.UnixNano()
	i := s.pol.pick(s, info, now, false)
	if i < 0 && b.panicMode {
		i = s.pol.pick(s, info, now, true)
	}
	if i < 0 {
		return PickResult{}, ErrNoBackend
	}
	be := s.backends[i]
	be.inflight.Add(1)
	return PickResult{Backend: be, start: now, bal: b}, nil
}

// observe feeds one finished attempt into the backend's estimate and the pool
// mean.
func (b *Balancer) observe(be *Backend, start int64, d time.Duration, err error) {
	sample := math.Max(float64(d), 0)
	mean := b.meanLatency()
	if err != nil {
		floor := b.failure
		if floor == 0 {
			floor = failureFactor * mean
		}
		sample = math.Max(sample, floor)
	} else if mean == 0 || b.rnd()&7 == 0 {
		next := sample
		if mean != 0 {
			next = mean + (sample-mean)/16
		}
		b.mean.Store(math.Float64bits(math.Max(next, 1)))
	}
	be.lat.observe(sample, start+int64(d), b.tau, mean)
}

func (b *Balancer) meanLatency() float64 { return math.Float64frombits(b.mean.Load()) }

// seedMean starts the pool mean from the members' stored estimates, so a
// Balancer built on reload does not treat every idle member as free.
func (b *Balancer) seedMean(members []*Backend) {
	var sum float64
	var n int
	for _, be := range members {
		if v := be.lat.stored(); v > 0 {
			sum += v
			n++
		}
	}
	if n > 0 {
		b.mean.CompareAndSwap(0, math.Float64bits(math.Max(sum/float64(n), 1)))
	}
}
