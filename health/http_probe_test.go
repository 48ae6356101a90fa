package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPProbe(t *testing.T) {
	big := strings.Repeat("x", 200<<10) + "needle" // beyond the 64 KiB scanned
	tests := []struct {
		name    string
		cfg     ActiveConfig
		handler http.HandlerFunc
		wantErr error // nil = pass
		detail  string
	}{
		{
			name:    "200 passes the default 200-399",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) },
			detail:  "HTTP 200",
		},
		{
			name:    "302 passes the default",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusFound) },
			detail:  "HTTP 302",
		},
		{
			name:    "500 fails",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
			wantErr: ErrUnexpectedStatus,
		},
		{
			name:    "404 fails",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) },
			wantErr: ErrUnexpectedStatus,
		},
		{
			name:    "404 passes when expected",
			cfg:     ActiveConfig{ExpectStatus: []string{"2xx", "404"}},
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) },
			detail:  "HTTP 404",
		},
		{
			name:    "204 fails an exact 200",
			cfg:     ActiveConfig{ExpectStatus: []string{"200"}},
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
			wantErr: ErrUnexpectedStatus,
		},
		{
			name:    "body match",
			cfg:     ActiveConfig{ExpectBody: `"status":"up"`},
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"up"}`)) },
			detail:  "HTTP 200",
		},
		{
			name:    "body mismatch",
			cfg:     ActiveConfig{ExpectBody: `"status":"up"`},
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"down"}`)) },
			wantErr: ErrBodyMismatch,
		},
		{
			name: "body match on a chunked body",
			cfg:  ActiveConfig{ExpectBody: "ready"},
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte("almost "))
				w.(http.Flusher).Flush()
				_, _ = w.Write([]byte("ready"))
			},
			detail: "HTTP 200",
		},
		{
			name:    "only the first 64 KiB are scanned",
			cfg:     ActiveConfig{ExpectBody: "needle"},
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(big)) },
			wantErr: ErrBodyMismatch,
		},
		{
			name:    "a large body without body check passes",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(big)) },
			detail:  "HTTP 200",
		},
		{
			name:    "status checked before body",
			cfg:     ActiveConfig{ExpectBody: "ok"},
			handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "ok", http.StatusServiceUnavailable) },
			wantErr: ErrUnexpectedStatus,
		},
		{
			name: "method, path, host and connection close are sent",
			cfg:  ActiveConfig{Method: "HEAD", Path: "/ready?deep=1", Host: "app.internal"},
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method != "HEAD" || r.URL.RequestURI() != "/ready?deep=1" || r.Host != "app.internal" ||
					!r.Close || r.UserAgent() != "tiergate-health" {
					t.Errorf("request: %s %s host=%s close=%v ua=%q", r.Method, r.URL.RequestURI(), r.Host, r.Close, r.UserAgent())
					w.WriteHeader(http.StatusTeapot)
				}
			},
			detail: "HTTP 200",
		},
		{
			name: "hanging server times out",
			cfg:  ActiveConfig{CheckConfig: CheckConfig{Interval: time.Second, Timeout: 50 * time.Millisecond}},
			handler: func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			wantErr: ErrTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			p, err := NewHTTPProbe(addr, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if tt.cfg.Timeout != 0 {
				cancel()
				ctx, cancel = context.WithTimeout(context.Background(), tt.cfg.Timeout)
			}
			defer cancel()
			start := time.Now()
			res, err := p.Check(ctx)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Check = %v, want a pass", err)
				}
				if res.Detail != tt.detail {
					t.Errorf("Detail = %q, want %q", res.Detail, tt.detail)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Check = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == ErrTimeout && time.Since(start) > 500*time.Millisecond {
				t.Errorf("timeout took %v, want about %v", time.Since(start), tt.cfg.Timeout)
			}
		})
	}
}

func TestHTTPProbeDeadBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now

	p, err := NewHTTPProbe(addr, ActiveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := p.Check(ctx); !errors.Is(err, ErrConnect) {
		t.Fatalf("Check of a closed port = %v, want ErrConnect", err)
	}

	// A cancelled context is not even dialled.
	cancel()
	if _, err := p.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestHTTPProbeNoDeadlineUsesTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	p, err := NewHTTPProbe(srv.Listener.Addr().String(),
		ActiveConfig{CheckConfig: CheckConfig{Interval: time.Second, Timeout: 30 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Check(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Check = %v, want ErrTimeout", err)
	}
}

func TestNewHTTPProbeRejectsBadConfig(t *testing.T) {
	if _, err := NewHTTPProbe("127.0.0.1:1", ActiveConfig{ExpectStatus: []string{"abc"}}); err == nil {
		t.Error("NewHTTPProbe with a bad expect_status = nil error")
	}
	if _, err := HTTPProbes(ActiveConfig{Path: "nope"}); err == nil {
		t.Error("HTTPProbes with a bad path = nil error")
	}
}
