package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tiergate_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	s := New(cfg, zap.NewNop(), reg)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("admin server did not stop")
		}
	})
	return s, "http://" + ln.Addr().String()
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	s, base := start(t, Config{Token: "sekret"})
	s.Handle("GET /status", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) }))
	tests := []struct {
		path, token string
		code        int
		body        string
	}{
		{"/healthz", "", 200, "ok"},
		{"/readyz", "", 200, "ready"},
		{"/metrics", "", 401, "unauthorized"},
		{"/metrics", "wrong", 401, "unauthorized"},
		{"/metrics", "sekret", 200, "tiergate_test_total 1"},
		{"/metrics", "sekret", 200, "go_goroutines"},
		{"/status", "", 401, ""},
		{"/status", "sekret", 200, `{"ok":true}`},
		{"/status?token=sekret", "", 200, `{"ok":true}`},
		{"/status?token=nope", "", 401, ""},
	}
	for _, tc := range tests {
		code, body := get(t, base+tc.path, tc.token)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s (token %q): %d %q", tc.path, tc.token, code, body)
		}
	}
	s.SetReady(func() error { return errors.New("no healthy backend in upstream web") })
	if code, body := get(t, base+"/readyz", ""); code != 503 || !strings.Contains(body, "upstream web") {
		t.Errorf("readyz: %d %q", code, body)
	}
}

func TestNoToken(t *testing.T) {
	_, base := start(t, Config{})
	if code, _ := get(t, base+"/metrics", ""); code != 200 {
		t.Fatalf("metrics without token configured: %d", code)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{Listen: "127.0.0.1:9"}, ""},
		{Config{Listen: "[::1]:9"}, ""},
		{Config{Listen: "0.0.0.0:9"}, "not a loopback address"},
		{Config{Listen: ":9"}, "not a loopback address"},
		{Config{Listen: ":9", Token: "x"}, ""},
		{Config{Listen: ":9", AllowInsecure: true}, ""},
		{Config{Listen: "127.0.0.1"}, "has no port"},
	}
	for _, tc := range tests {
		tc.cfg.SetDefaults()
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}
