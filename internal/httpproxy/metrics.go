package httpproxy

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports the engine's counters. Per-backend numbers live in
// atomics on the backend and are read at scrape time by a collector, so the
// request path touches no Prometheus locks or label maps; the latency
// histograms are resolved once per upstream.
type metrics struct {
	e         *Engine
	latency   *prometheus.HistogramVec
	mu        sync.Mutex
	latencyOf map[string]prometheus.Observer
	requests  *prometheus.Desc
	retries   *prometheus.Desc
	healthy   *prometheus.Desc
	inflight  *prometheus.Desc
	ewma      *prometheus.Desc
	ejected   *prometheus.Desc
	weight    *prometheus.Desc
	cacheReq  *prometheus.Desc
	cacheMem  *prometheus.Desc
}

var statusClass = [6]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

func newMetrics(e *Engine, reg prometheus.Registerer) *metrics {
	lbl := []string{"upstream", "backend"}
	m := &metrics{
		e: e,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tiergate", Subsystem: "edge", Name: "upstream_response_seconds",
			Help:    "Time from sending a request to a backend until its response head arrived.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"upstream"}),
		latencyOf: map[string]prometheus.Observer{},
		requests:  prometheus.NewDesc("tiergate_edge_backend_responses_total", "Attempts per backend by status class (error = no response).", append(lbl, "class"), nil),
		retries:   prometheus.NewDesc("tiergate_edge_backend_retries_total", "Attempts on this backend that were retried elsewhere.", lbl, nil),
		healthy:   prometheus.NewDesc("tiergate_edge_backend_healthy", "1 when the backend passes health checks.", lbl, nil),
		inflight:  prometheus.NewDesc("tiergate_edge_backend_in_flight", "Requests in flight to the backend.", lbl, nil),
		ewma:      prometheus.NewDesc("tiergate_edge_backend_latency_ewma_seconds", "Peak-EWMA latency estimate.", lbl, nil),
		ejected:   prometheus.NewDesc("tiergate_edge_backend_ejected", "1 while passive outlier detection ejects the backend.", lbl, nil),
		weight:    prometheus.NewDesc("tiergate_edge_backend_weight", "Configured weight.", lbl, nil),
		cacheReq:  prometheus.NewDesc("tiergate_edge_cache_lookups_total", "Response cache lookups by result.", []string{"route", "result"}, nil),
		cacheMem:  prometheus.NewDesc("tiergate_edge_cache_bytes", "Bytes held by the response cache.", []string{"route"}, nil),
	}
	if reg != nil {
		reg.MustRegister(m.latency, m)
	}
	return m
}

func (m *metrics) upstreamLatency(name string) prometheus.Observer {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.latencyOf[name]
	if !ok {
		o = m.latency.WithLabelValues(name)
		m.latencyOf[name] = o
	}
	return o
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.requests, m.retries, m.healthy, m.inflight, m.ewma, m.ejected, m.weight, m.cacheReq, m.cacheMem} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the current generation.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	g := m.e.gen.Load()
	if g == nil {
		return
	}
	now := time.Now()
	for _, up := range g.upstreams {
		for _, be := range up.backends {
			lv := []string{up.name, be.b.Address}
			for i, c := range statusClass {
				ch <- prometheus.MustNewConstMetric(m.requests, prometheus.CounterValue, float64(be.responses[i].Load()), up.name, be.b.Address, c)
			}
			ch <- prometheus.MustNewConstMetric(m.retries, prometheus.CounterValue, float64(be.retries.Load()), lv...)
			ch <- prometheus.MustNewConstMetric(m.healthy, prometheus.GaugeValue, b2f(be.b.Healthy()), lv...)
			ch <- prometheus.MustNewConstMetric(m.inflight, prometheus.GaugeValue, float64(be.b.InFlight()), lv...)
			ch <- prometheus.MustNewConstMetric(m.ewma, prometheus.GaugeValue, be.b.Latency().Seconds(), lv...)
			ch <- prometheus.MustNewConstMetric(m.ejected, prometheus.GaugeValue, b2f(be.b.EjectedUntil().After(now)), lv...)
			ch <- prometheus.MustNewConstMetric(m.weight, prometheus.GaugeValue, float64(be.b.Weight), lv...)
		}
	}
	for name, st := range m.e.CacheStats() {
		for _, r := range []struct {
			result string
			n      uint64
		}{{"hit", st.Hits}, {"miss", st.Misses}, {"stale", st.Stale}, {"revalidated", st.Revalidated}, {"bypass", st.Bypass}} {
			ch <- prometheus.MustNewConstMetric(m.cacheReq, prometheus.CounterValue, float64(r.n), name, r.result)
		}
		ch <- prometheus.MustNewConstMetric(m.cacheMem, prometheus.GaugeValue, float64(st.Bytes), name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
