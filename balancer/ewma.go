package balancer

import (
	"math"
	"sync/atomic"
)

// latency is a peak-EWMA latency estimate in nanoseconds, updated lock-free.
//
// A sample above the current estimate replaces it (peak sensitivity: one slow
// response makes the backend look slow at once); a lower one is blended in
// with weight 1-exp(-gap/tau), gap being the time since the previous sample,
// so the estimate has time constant tau whatever the request rate. Reads decay
// the estimate toward a neutral value with the same time constant, so a
// backend that was slow and is no longer picked drifts back to "average" and
// gets probed again instead of starving.
//
// The value and its time stamp are separate atomics: a racing pair of updates
// may keep the stamp of either, which only shifts the decay by the race
// window.
type latency struct {
	bits  atomic.Uint64 // math.Float64bits(estimate ns); 0 = no sample yet
	stamp atomic.Int64  // unix nanos of the last sample
}

func (l *latency) stored() float64 { return math.Float64frombits(l.bits.Load()) }

// estimate returns the estimate at now, decayed toward neutral. A backend with
// no sample yet is assumed to be neutral.
func (l *latency) estimate(now int64, tau, neutral float64) float64 {
	bits := l.bits.Load()
	if bits == 0 {
		return neutral
	}
	return decay(math.Float64frombits(bits), l.stamp.Load(), now, tau, neutral)
}

// observe folds a sample (ns) taken at now into the estimate.
func (l *latency) observe(sample float64, now int64, tau, neutral float64) {
	for {
		bits := l.bits.Load()
		next := sample
		if bits != 0 {
			w := weightSince(l.stamp.Load(), now, tau)
			base := neutral + (math.Float64frombits(bits)-neutral)*w // decayed
			if sample < base {
				next = base*w + sample*(1-w)
			}
		}
		nb := math.Float64bits(next)
		if nb == 0 {
			nb = math.Float64bits(math.SmallestNonzeroFloat64) // keep "has a sample"
		}
		if l.bits.CompareAndSwap(bits, nb) {
			l.stamp.Store(now)
			return
		}
	}
}

// decay moves v toward neutral by the time elapsed since stamp.
func decay(v float64, stamp, now int64, tau, neutral float64) float64 {
	return neutral + (v-neutral)*weightSince(stamp, now, tau)
}

// weightSince is exp(-(now-stamp)/tau): 1 for no elapsed time, toward 0 after
// many tau.
func weightSince(stamp, now int64, tau float64) float64 {
	gap := now - stamp
	if gap <= 0 {
		return 1
	}
	return math.Exp(-float64(gap) / tau)
}
