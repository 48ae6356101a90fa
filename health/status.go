package health

import "time"

// ActiveStatus is what active checks know about a target.
type ActiveStatus struct {
	// Healthy is the current verdict.
	Healthy bool `json:"healthy"`
	// Since is when Healthy last changed, or when the target was added.
	Since time.Time `json:"since"`
	// Checks is the number of completed checks.
	Checks uint64 `json:"checks"`
	// LastCheck is when the last check started; zero before the first.
	LastCheck time.Time `json:"last_check,omitzero"`
	// LastDuration is how long the last check took.
	LastDuration time.Duration `json:"last_duration"`
	// LastResult is the last passing check's detail, e.g. "HTTP 200".
	LastResult string `json:"last_result,omitempty"`
	// LastError is the last check's error; empty when it passed.
	LastError string `json:"last_error,omitempty"`
	// Passes and Fails are the current run of consecutive results; at most
	// one of them is non-zero.
	Passes int `json:"passes"`
	Fails  int `json:"fails"`
}

// PassiveStatus is what outlier detection knows about a target.
type PassiveStatus struct {
	// ConsecutiveErrors is the current run of failed requests.
	ConsecutiveErrors int64 `json:"consecutive_errors"`
	// EjectedUntil is the end of the current ejection; zero when the target
	// is not ejected.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// EjectionLevel is the ejection multiplier: the current ejection's while
	// ejected, else the last one's after decay (0 = none recently). The next
	// ejection lasts base_ejection_time × (EjectionLevel+1), capped.
	EjectionLevel int64 `json:"ejection_level"`
	// Ejections is how many times the target was ejected since it was added.
	Ejections uint64 `json:"ejections"`
}

// Status is everything known about one target, for status pages and
// metrics. With no active checks, Healthy is always true.
type Status struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	ActiveStatus
	PassiveStatus
}

// Usable reports whether the target should take traffic at now: healthy and
// not ejected.
func (s Status) Usable(now time.Time) bool {
	return s.Healthy && !s.EjectedUntil.After(now)
}
