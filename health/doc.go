// Package health owns the answer to "is this node usable?" for both tiergate
// binaries: active checks that probe each target on a schedule, and passive
// outlier detection fed with the outcome of real requests.
//
// It does not import balancer/: every verdict is published through a
// [Listener] and through lock-free status reads, and the engine
// (internal/httpproxy, internal/pgproxy) turns a change into
// balancer.Backend.SetHealthy / Backend.Eject and a snapshot rebuild.
//
// # Pieces
//
//   - [Probe] is one check of one target ("is it answering?"). [HTTPProbe]
//     is the HTTP implementation on fasthttp; a Postgres probe plugs in the
//     same way through a [ProbeFactory] without touching the loop.
//   - [Manager] owns one checker goroutine per [Target]: it runs the probe
//     every interval (± jitter) with a timeout and applies the rise/fall
//     thresholds. [Manager.Update] reconciles the target set on reload,
//     keeping the state of targets whose address did not change.
//   - [OutlierDetector] counts consecutive failed requests per target on
//     the hot path (atomics only, no allocation) and ejects a target for a
//     growing time, never ejecting more than max_ejection_percent of the
//     group at once.
//   - [Monitor] is the two together for one upstream, with one [Status] per
//     target for status pages and metrics.
//
// # Initial state
//
// A target that is new (or whose address changed) starts in the state named
// by initial (default unhealthy), like HAProxy's init-state: the first check
// result is decisive. With initial: unhealthy the first passing check marks
// the target up at once (not rise passes), so a new backend gets no traffic
// before it has answered once; with initial: healthy the first failing check
// marks it down at once. After the first result the usual rise/fall
// thresholds apply. Events report changes only: read [Manager.Status] right
// after Update to learn the initial verdict.
//
// # Concurrency
//
// Status reads, [OutlierDetector.Report] and [OutlierDetector.Ejected] are
// lock-free. Update, Run and Close take a mutex that is never held on the
// request path nor while a probe runs. Listener calls are synchronous: see
// [Listener] for who calls them and what they must not do.
package health
