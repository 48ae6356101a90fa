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
		newCacheCollector(srv),
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

// cacheCollector exports the query cache's per-database counters at
// scrape time.
type cacheCollector struct {
	srv   *Server
	descs map[string]*prometheus.Desc
}

func newCacheCollector(srv *Server) cacheCollector {
	c := cacheCollector{srv: srv, descs: map[string]*prometheus.Desc{}}
	for _, n := range [...]struct{ name, help string }{
		{"query_cache_hits_total", "Query cache lookups answered from the cache."},
		{"query_cache_misses_total", "Query cache lookups of cacheable statements that ran on a server."},
		{"query_cache_stores_total", "Results stored in the query cache."},
		{"query_cache_skipped_total", "Results not stored: too big, or a table they read was invalidated while they ran."},
		{"query_cache_invalidations_total", "Invalidations by writes through this proxy."},
		{"query_cache_remote_invalidations_total", "Invalidation messages applied from peer proxies."},
		{"query_cache_evictions_total", "Results evicted to stay within query_cache.max_size."},
		{"query_cache_coalesced_total", "Hits answered after waiting for a concurrent miss of the same query."},
		{"query_cache_bytes", "Bytes charged for cached results."},
		{"query_cache_entries", "Cached results."},
	} {
		c.descs[n.name] = prometheus.NewDesc("tiergate_dbproxy_"+n.name, n.help, []string{"database"}, nil)
	}
	return c
}

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	qc := c.srv.qcache.Load()
	if qc == nil {
		return
	}
	for _, st := range qc.Stats() {
		for name, v := range map[string]uint64{
			"query_cache_hits_total": st.Hits, "query_cache_misses_total": st.Misses,
			"query_cache_stores_total": st.Stores, "query_cache_skipped_total": st.Skipped,
			"query_cache_invalidations_total": st.Invalidations, "query_cache_remote_invalidations_total": st.RemoteInvalidations,
			"query_cache_evictions_total": st.Evictions, "query_cache_coalesced_total": st.Coalesced,
		} {
			ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), st.Database)
		}
		ch <- prometheus.MustNewConstMetric(c.descs["query_cache_bytes"], prometheus.GaugeValue, float64(st.Bytes), st.Database)
		ch <- prometheus.MustNewConstMetric(c.descs["query_cache_entries"], prometheus.GaugeValue, float64(st.Entries), st.Database)
	}
}
