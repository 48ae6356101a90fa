package pgproxy

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/querycache"
)

// Status is the JSON document served at the admin listener's /status: the
// console's SHOW NODES, POOLS and STATS tables as lists of objects (column
// name → value), for the dashboard and for scripts.
type Status struct {
	Time    time.Time           `json:"time"`
	Clients int                 `json:"clients"`
	Nodes   []map[string]string `json:"nodes"`
	Pools   []map[string]string `json:"pools"`
	Stats   []map[string]string `json:"stats"`
	// Failover is the peers' decided state per database (empty without
	// failover): term, primary, whether this proxy's write fence is open.
	Failover []map[string]string `json:"failover,omitempty"`
	// LastFailover is each shard's last change of primary with its timeline
	// of events (leader steps and this proxy's own); absent without failover.
	LastFailover []*failover.FailoverTimeline `json:"last_failover,omitempty"`
	// Cache is the query cache's counters per database; absent when the
	// cache is off.
	Cache *CacheStatus `json:"Cache,omitempty"`
}

// CacheStatus is the query cache part of Status.
type CacheStatus struct {
	Databases []querycache.Stats
}

// Status returns the live state of the proxy.
func (srv *Server) Status() Status {
	return Status{
		Time:     time.Now().UTC(),
		Clients:  srv.Clients(),
		Nodes:    srv.showNodes().objects(),
		Pools:    srv.showPools().objects(),
		Stats:    srv.showStats().objects(),
		Failover: srv.showFailover().objects(),
		Cache:    srv.cacheStatus(),

		LastFailover: srv.lastFailovers(),
	}
}

func (srv *Server) lastFailovers() []*failover.FailoverTimeline {
	if srv.ha == nil {
		return nil
	}
	return srv.ha.mgr.Status().LastFailovers()
}

func (srv *Server) cacheStatus() *CacheStatus {
	qc := srv.qcache.Load()
	if qc == nil {
		return nil
	}
	return &CacheStatus{Databases: qc.Stats()}
}

// StatusHandler serves Status as JSON.
func (srv *Server) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(srv.Status())
	})
}

// objects turns the table's rows into column-keyed objects.
func (t *table) objects() []map[string]string {
	out := make([]map[string]string, 0, len(t.rows))
	for _, r := range t.rows {
		m := make(map[string]string, len(t.cols))
		for i, c := range t.cols {
			if i < len(r) {
				m[c] = r[i]
			}
		}
		out = append(out, m)
	}
	return out
}
