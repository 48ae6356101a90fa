package health

import (
	"math/rand/v2"

	"go.uber.org/zap"
)

// Options are the collaborators shared by Manager, OutlierDetector and
// Monitor. Every field is optional.
type Options struct {
	// Logger receives transitions (info/warn), recovered panics (error) and
	// per-check failures (debug). Nil means no logging.
	Logger *zap.Logger
	// Listener is told about every change; nil means nobody.
	Listener Listener
	// Clock is the time source; nil means the system clock. The Manager uses
	// it for timestamps only; its schedule runs on real timers.
	Clock Clock
	// Rand returns a number in [0, 1) for check jitter; it is called from
	// every checker goroutine, so it must be safe for concurrent use. Nil
	// means math/rand/v2.Float64.
	Rand func() float64
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Listener == nil {
		o.Listener = nopListener{}
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return o
}
