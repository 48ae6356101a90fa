package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiergate/tiergate/health"
)

func TestActiveHealthChecks(t *testing.T) {
	bs := []*testBackend{startBackend(t, "0"), startBackend(t, "1"), startBackend(t, "2")}
	var down atomic.Bool
	bs[1].set(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && down.Load() {
			w.WriteHeader(503)
			return
		}
		fmt.Fprint(w, "ok")
	})
	cfg := baseConfig(bs...)
	interval := 30 * time.Millisecond
	cfg.Upstreams[0].Health.Active = &health.ActiveConfig{CheckConfig: health.CheckConfig{Interval: interval, Rise: 2, Fall: 3}}
	cfg.Upstreams[0].Balancer.SlowStart = 300 * time.Millisecond
	te := startEdge(t, cfg)
	be1 := te.eng.gen.Load().upstreams[0].backends[1].b
	pollUntil(t, 5*time.Second, "backends to pass their first check", func() bool { return te.eng.Ready() == nil && be1.Healthy() })

	down.Store(true)
	start := time.Now()
	pollUntil(t, 5*time.Second, "backend 1 marked down", func() bool { return !be1.Healthy() })
	took := time.Since(start)
	t.Logf("marked down after %v (fall 3 × interval %v)", took, interval)
	before := bs[1].hits.Load()
	c := newHTTPClient()
	for range 60 {
		if resp, _ := get(t, c, te.url+"/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Only health checks reach backend 1 now.
	if got := bs[1].hits.Load() - before; got > 20 {
		t.Errorf("down backend got %d hits", got)
	}
	down.Store(false)
	pollUntil(t, 5*time.Second, "backend 1 back up", func() bool { return be1.Healthy() })
	if since := be1.HealthySince(); since.IsZero() || time.Since(since) > time.Second {
		t.Errorf("slow start not started: healthy since %v", since)
	}
}

func TestPassiveEjection(t *testing.T) {
	bs := []*testBackend{startBackend(t, "0"), startBackend(t, "1"), startBackend(t, "2")}
	bs[2].set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	cfg := baseConfig(bs...)
	zero := 0
	cfg.Upstreams[0].Retry.Attempts = &zero
	cfg.Upstreams[0].Health.Passive.ConsecutiveErrors = 3
	cfg.Upstreams[0].Health.Passive.BaseEjectionTime = time.Minute
	te := startEdge(t, cfg)
	c := newHTTPClient()
	fivexx := 0
	for range 90 {
		resp, _ := get(t, c, te.url+"/")
		if resp.StatusCode == 500 {
			fivexx++
		}
	}
	if fivexx != 3 {
		t.Fatalf("%d 500s reached clients; the backend should be ejected after 3", fivexx)
	}
	st := te.eng.Status()
	if st.Upstreams[0].Backends[2].EjectedUntil == nil {
		t.Fatal("status does not show the ejection")
	}
}

func TestLargeBodiesStream(t *testing.T) {
	const size = 256 << 20
	b := startBackend(t, "a")
	b.set(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	te := startEdge(t, baseConfig(b))
	c := newHTTPClient()

	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	peak := uint64(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	resp, err := c.Get(te.url + "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != size {
		t.Fatalf("downloaded %d of %d bytes", n, size)
	}
	// Upload of unknown length (chunked) and of a known large length.
	for _, chunked := range []bool{true, false} {
		var body io.Reader = io.LimitReader(zeroReader{}, size)
		req, _ := http.NewRequest("POST", te.url+"/up", body)
		if !chunked {
			req.ContentLength = size
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := sha256.New()
		_, _ = io.Copy(h, io.LimitReader(zeroReader{}, size))
		if want := fmt.Sprintf("%d %x", size, h.Sum(nil)); string(got) != want {
			t.Fatalf("chunked=%v: backend got %q", chunked, got)
		}
	}
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&m1)
	growth := int64(peak) - int64(m0.HeapInuse)
	t.Logf("heap in use grew by at most %d KiB while moving 3 × %d MiB", growth>>10, size>>20)
	if growth > 48<<20 {
		t.Fatalf("heap grew by %d MiB: bodies are being buffered", growth>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestWebSocketTunnel(t *testing.T) {
	// An echo server speaking the Upgrade handshake; after 101 it echoes
	// bytes back (the tunnel does not care about WebSocket framing).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.WriteHeader(400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		_, _ = io.Copy(conn, brw)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cfg := &Config{Listeners: []ListenerConfig{{Name: "t", Address: "127.0.0.1:0"}}, Upstreams: []UpstreamConfig{{Name: "ws", Backends: []BackendConfig{{Address: ln.Addr().String()}}}}}
	te := startEdge(t, cfg)

	conn, err := net.Dial("tcp", te.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i := range 50 {
		msg := fmt.Sprintf("message %d\n", i)
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != msg {
			t.Fatalf("echo %d: %q %v", i, line, err)
		}
	}
}

func TestReloadUnderLoad(t *testing.T) {
	bs := []*testBackend{startBackend(t, "0"), startBackend(t, "1"), startBackend(t, "2")}
	te := startEdge(t, baseConfig(bs[:2]...))
	c := newHTTPClient()
	var ok, bad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(te.url + "/")
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		}()
	}
	configs := [][]*testBackend{bs, bs[1:], bs[:2], {bs[2]}, bs}
	for i := range 20 {
		next := baseConfig(configs[i%len(configs)]...)
		next.Upstreams[0].Balancer.Policy = []string{"round_robin", "least_conn", "p2c_ewma"}[i%3]
		if err := te.eng.Reload(mustValid(t, next)); err != nil {
			t.Fatal(err)
		}
		n := ok.Load()
		pollUntil(t, 10*time.Second, "requests on the new config", func() bool { return ok.Load() > n+50 })
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d requests failed across 20 reloads (%d ok)", bad.Load(), ok.Load())
	}
	if bs[2].hits.Load() == 0 {
		t.Fatal("a backend added by reload never got traffic")
	}
}

func TestDrainFinishesInFlight(t *testing.T) {
	b := startBackend(t, "a")
	started := make(chan struct{}, 1)
	b.set(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond) // a slow request in flight during drain
		fmt.Fprint(w, "finished")
	})
	te := startEdge(t, baseConfig(b))
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := newHTTPClient().Get(te.url + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{body: string(body)}
	}()
	<-started
	te.cancel() // SIGTERM: drain
	r := <-res
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request during drain: %q %v", r.body, r.err)
	}
	select {
	case <-te.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after drain")
	}
	if _, err := net.DialTimeout("tcp", te.addr, time.Second); err == nil {
		t.Fatal("listener still accepting after drain")
	}
}

// TestReloadKeepsBackendState: health verdicts, latency estimates and
// counters of unchanged backends survive a reload.
func TestReloadKeepsBackendState(t *testing.T) {
	bs := []*testBackend{startBackend(t, "0"), startBackend(t, "1")}
	bs[1].set(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(503)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mk := func(policy string) *Config {
		cfg := baseConfig(bs...)
		cfg.Upstreams[0].Balancer.Policy = policy
		cfg.Upstreams[0].Health.Active = &health.ActiveConfig{CheckConfig: health.CheckConfig{Interval: 20 * time.Millisecond}}
		return cfg
	}
	te := startEdge(t, mk("round_robin"))
	up := te.eng.gen.Load().upstreams[0]
	b0, b1 := up.backends[0], up.backends[1]
	pollUntil(t, 5*time.Second, "verdicts", func() bool { return b0.b.Healthy() && !b1.b.Healthy() })
	c := newHTTPClient()
	for range 20 {
		get(t, c, te.url+"/")
	}
	served := b0.responses[2].Load()
	if err := te.eng.Reload(mustValid(t, mk("least_conn"))); err != nil {
		t.Fatal(err)
	}
	up2 := te.eng.gen.Load().upstreams[0]
	if up2.backends[0] != b0 || up2.backends[1] != b1 {
		t.Fatal("backends were recreated on reload")
	}
	if !b0.b.Healthy() || b1.b.Healthy() {
		t.Fatal("health verdicts reset by reload")
	}
	if b0.responses[2].Load() != served || b0.b.Latency() == 0 {
		t.Fatal("counters or latency estimate lost")
	}
}
