package httpproxy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/httpcache"
	"github.com/tiergate/tiergate/router/httproute"
)

func TestMetrics(t *testing.T) {
	b := startBackend(t, "a")
	cfg := mustValid(t, baseConfig(b))
	cfg.Routes = []httproute.RouteConfig{{Name: "r", Upstream: "web", Cache: &httpcache.Config{Enabled: true}}}
	mustValid(t, cfg)
	reg := prometheus.NewRegistry()
	eng, err := New(cfg, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, name := range []string{"tiergate_edge_backend_responses_total", "tiergate_edge_backend_healthy", "tiergate_edge_backend_in_flight", "tiergate_edge_cache_lookups_total", "tiergate_edge_cache_bytes"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tiergate_edge_backend_healthy 1 when the backend passes health checks.
# TYPE tiergate_edge_backend_healthy gauge
tiergate_edge_backend_healthy{backend="`+b.addr+`",upstream="web"} 1
`), "tiergate_edge_backend_healthy")
	if err != nil {
		t.Error(err)
	}
}
