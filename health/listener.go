package health

import "time"

// Kind says what changed about a target.
type Kind uint8

// Kinds of change. Up and Down come from active checks, Ejected and Returned
// from outlier detection; the two are independent (a target can be up and
// ejected), so the engine keeps both flags and a target takes traffic only
// when it is up and not ejected.
const (
	// Up: active checks now pass (rise passes, or the first pass of a
	// target that started unhealthy).
	Up Kind = iota + 1
	// Down: active checks now fail (fall failures, or the first failure of
	// a target that started healthy).
	Down
	// Ejected: outlier detection took the target out until Change.Until.
	Ejected
	// Returned: the ejection ended (its timer fired).
	Returned
)

var kindNames = [...]string{Up: "up", Down: "down", Ejected: "ejected", Returned: "returned"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Change is one state change of one target.
type Change struct {
	// ID is the target's Target.ID.
	ID   string
	Kind Kind
	// At is when the change happened (the check's or the report's time).
	At time.Time
	// Until is the end of the ejection, for Kind Ejected.
	Until time.Time
	// Reason is a short human-readable cause for logs and status pages,
	// e.g. "3 consecutive failures: unexpected status: HTTP 500".
	Reason string
}

// Listener learns about state changes; the engine implements it to call
// balancer.Backend.SetHealthy (Up/Down) or Backend.Eject(Until) (Ejected)
// and to rebuild its snapshot.
//
// Blocking contract: HealthChanged is called synchronously and must return
// quickly without blocking (set an atomic, send on a buffered channel).
//   - Up and Down are called from the target's checker goroutine, one at a
//     time and in order per target; no call for a target starts after the
//     Manager.Update that removed it (or Run) has returned.
//   - Ejected is called on the goroutine that called
//     OutlierDetector.Report, i.e. on the request path.
//   - Returned is called from the ejection's timer goroutine.
//
// Calls for different targets may run concurrently, so the implementation
// must be safe for concurrent use. It must not call Manager.Update,
// OutlierDetector.Update or Close (they wait for running calls). Events for
// IDs the engine no longer knows should be ignored.
type Listener interface {
	HealthChanged(Change)
}

// ListenerFunc adapts a function to Listener.
type ListenerFunc func(Change)

// HealthChanged calls f(c).
func (f ListenerFunc) HealthChanged(c Change) { f(c) }

type nopListener struct{}

func (nopListener) HealthChanged(Change) {}

var (
	_ Listener = ListenerFunc(nil)
	_ Listener = nopListener{}
)
