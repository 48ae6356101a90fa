package failover

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the failover series. With no registry they are still
// updated but not exported.
type metrics struct {
	term     *prometheus.GaugeVec     // shard
	blocked  *prometheus.GaugeVec     // shard
	fenced   *prometheus.CounterVec   // shard
	changes  *prometheus.CounterVec   // shard, kind
	duration *prometheus.HistogramVec // kind
	nodeUp   *prometheus.GaugeVec     // shard, node
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		term: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tiergate", Subsystem: "failover", Name: "term",
			Help: "Decided term of the shard (increases with every change of primary)."}, []string{"shard"}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tiergate", Subsystem: "failover", Name: "blocked",
			Help: "1 while automatic failover of the shard is refused (lag too high, no candidate, ...); an operator must act."}, []string{"shard"}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tiergate", Subsystem: "failover", Name: "fenced_writes_total",
			Help: "Writes refused by the fence on this proxy."}, []string{"shard"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tiergate", Subsystem: "failover", Name: "changes_total",
			Help: "Completed changes of primary led by this proxy, by kind (failover, forced, switchover)."}, []string{"shard", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tiergate", Subsystem: "failover", Name: "change_duration_seconds",
			Help:    "Time from fencing writes to the decided new primary.",
			Buckets: []float64{.5, 1, 2, 3, 5, 8, 13, 21, 34, 60}}, []string{"kind"}),
		nodeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tiergate", Subsystem: "failover", Name: "node_up",
			Help: "1 when this proxy's last probe of the node succeeded."}, []string{"shard", "node"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.term, m.blocked, m.fenced, m.changes, m.duration, m.nodeUp} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("failover: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// observe records a probe round.
func (mt *metrics) observe(m *Manager, nodes map[string]nodeView) {
	for _, nv := range nodes {
		mt.nodeUp.WithLabelValues(nv.obs.Shard, nv.obs.Node).Set(b2f(nv.obs.Up))
	}
}
