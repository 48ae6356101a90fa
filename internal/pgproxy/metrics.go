package pgproxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus series. With no registry they are
// still updated (cheaply) but not exported.
type metrics struct {
	reg          prometheus.Registerer
	queries      *prometheus.CounterVec   // database, route
	latency      *prometheus.HistogramVec // route
	poolWaits    prometheus.Histogram
	poolTimeouts prometheus.Counter
	errors       *prometheus.CounterVec // sqlstate
	retries      prometheus.Counter
	nodeHealthy  *prometheus.GaugeVec // database, node, role
	lagBytes     *prometheus.GaugeVec // database, node
	lagSeconds   *prometheus.GaugeVec // database, node

	latPrimary, latReplica prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "queries_total",
			Help: "Units of work (a simple query or an extended-protocol batch up to Sync) by database and route.",
		}, []string{"database", "route"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "query_duration_seconds",
			Help:    "Time from routing a unit of work to its last answer, by route.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		poolWaits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "pool_wait_seconds",
			Help:    "Time spent waiting for a server connection when none was idle.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}),
		poolTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "pool_wait_timeouts_total",
			Help: "Checkouts that failed after query_wait_timeout (SQLSTATE 53300).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "errors_total",
			Help: "ErrorResponses sent to clients (relayed or the proxy's own), by SQLSTATE.",
		}, []string{"sqlstate"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "read_retries_total",
			Help: "Reads retried on another node after a connection error.",
		}),
		nodeHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "node_healthy",
			Help: "1 when the node passes its health checks.",
		}, []string{"database", "node", "role"}),
		lagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "replica_lag_bytes",
			Help: "WAL bytes the replica's replay is behind the primary.",
		}, []string{"database", "node"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "replica_lag_seconds",
			Help: "Age of the last replayed transaction while the replica is behind (0 when caught up).",
		}, []string{"database", "node"}),
	}
	m.latPrimary = m.latency.WithLabelValues(rolePrimary)
	m.latReplica = m.latency.WithLabelValues(roleReplica)
	if reg != nil {
		reg.MustRegister(m.queries, m.latency, m.poolWaits, m.poolTimeouts, m.errors, m.retries, m.nodeHealthy, m.lagBytes, m.lagSeconds)
	}
	return m
}

// registerGauges adds the gauges read from the server's state.
func (m *metrics) registerGauges(srv *Server) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "client_connections",
			Help: "Connected clients.",
		}, func() float64 { return float64(srv.nclients.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "server_connections",
			Help: "Open server connections (idle and in use).",
		}, func() float64 {
			n := 0
			for _, p := range srv.rt.Load().allPools() {
				n += p.stats().total
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tiergate", Subsystem: "dbproxy", Name: "server_connections_active",
			Help: "Server connections lent to clients.",
		}, func() float64 {
			n := 0
			for _, p := range srv.rt.Load().allPools() {
				n += int(p.active.Load())
			}
			return float64(n)
		}),
	)
}

func (m *metrics) query(db string, replica bool, d time.Duration) {
	route, obs := rolePrimary, m.latPrimary
	if replica {
		route, obs = roleReplica, m.latReplica
	}
	m.queries.WithLabelValues(db, route).Inc()
	obs.Observe(d.Seconds())
}

func (m *metrics) poolWait(d time.Duration) { m.poolWaits.Observe(d.Seconds()) }
func (m *metrics) poolTimeout()             { m.poolTimeouts.Inc() }
func (m *metrics) retry()                   { m.retries.Inc() }

func (m *metrics) error(code string) {
	if code == "" {
		code = "unknown"
	}
	m.errors.WithLabelValues(code).Inc()
}

func (m *metrics) nodeState(n *node) {
	v := 0.0
	if n.healthy.Load() {
		v = 1
	}
	m.nodeHealthy.WithLabelValues(n.db, n.addr, n.role).Set(v)
	if n.role == roleReplica {
		m.lagBytes.WithLabelValues(n.db, n.addr).Set(float64(n.lagBytes.Load()))
		m.lagSeconds.WithLabelValues(n.db, n.addr).Set(n.lagSec())
	}
}
