package health

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// fastCheck is a schedule for tests with real servers.
func fastCheck() ActiveConfig {
	return ActiveConfig{CheckConfig: CheckConfig{
		Interval: 20 * time.Millisecond,
		Timeout:  10 * time.Millisecond,
		Rise:     2,
		Fall:     3,
	}}
}

func TestManagerDetectsDeadAndRecoveredBackend(t *testing.T) {
	srv := newFlipServer(t)
	rec := &recorder{}
	cfg := fastCheck()
	m, err := NewHTTPManager(cfg, Options{Listener: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]Target{{ID: "web-1", Address: srv.addr}}); err != nil {
		t.Fatal(err)
	}
	if m.Healthy("web-1") {
		t.Fatal("a new target is healthy before its first check")
	}
	runManager(t, m)
	eventually(t, 2*time.Second, "first pass marks the target up", func() bool { return m.Healthy("web-1") })

	// Failing answers: down after fall (3) checks, i.e. about 3 intervals.
	srv.mode.Store(modeFail)
	start := time.Now()
	limit := time.Duration(cfg.Fall)*(cfg.Interval+cfg.Timeout) + 500*time.Millisecond
	eventually(t, limit, "500s mark the target down", func() bool { return !m.Healthy("web-1") })
	if took := time.Since(start); took < time.Duration(cfg.Fall-1)*cfg.Interval*3/4 {
		t.Errorf("down after %v: faster than fall=%d checks allow", took, cfg.Fall)
	}
	st, _ := m.Status("web-1")
	if st.Fails < cfg.Fall {
		t.Errorf("Fails = %d when marked down, want >= %d", st.Fails, cfg.Fall)
	}

	srv.mode.Store(modeOK)
	eventually(t, 2*time.Second, "rise passes bring it back", func() bool { return m.Healthy("web-1") })
	st, _ = m.Status("web-1")
	if st.Passes < cfg.Rise {
		t.Errorf("Passes = %d when marked up, want >= %d", st.Passes, cfg.Rise)
	}

	// A killed server (connection refused) is detected within fall × interval.
	srv.kill()
	start = time.Now()
	eventually(t, limit, "a killed server is marked down", func() bool { return !m.Healthy("web-1") })
	t.Logf("killed server detected after %v (limit %v)", time.Since(start), limit)
	st, _ = m.Status("web-1")
	if st.LastError == "" {
		t.Error("LastError is empty for a dead server")
	}
	if got := rec.kinds("web-1"); !equalKinds(got, []Kind{Up, Down, Up, Down}) {
		t.Errorf("events = %v", got)
	}
}

func TestManagerHangingBackendTimesOut(t *testing.T) {
	srv := newFlipServer(t)
	cfg := fastCheck()
	cfg.Initial = InitialHealthy
	m, err := NewHTTPManager(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]Target{{Address: srv.addr}}); err != nil {
		t.Fatal(err)
	}
	srv.mode.Store(modeHang)
	runManager(t, m)
	eventually(t, 2*time.Second, "a hanging server is marked down", func() bool { return !m.Healthy(srv.addr) })
	st, _ := m.Status(srv.addr)
	if st.LastDuration > 200*time.Millisecond {
		t.Errorf("LastDuration = %v, want about the 10ms timeout", st.LastDuration)
	}
}

// countingProbe counts checks per instance, and can panic.
type countingProbe struct {
	n      atomic.Int64
	panics bool
	closed atomic.Bool
}

func (p *countingProbe) Check(context.Context) (Result, error) {
	p.n.Add(1)
	if p.panics {
		panic("boom")
	}
	return Result{Detail: "ok"}, nil
}

func (p *countingProbe) Close() error {
	p.closed.Store(true)
	return nil
}

func TestManagerUpdate(t *testing.T) {
	base := runtime.NumGoroutine()
	probes := map[string]*countingProbe{}
	var made atomic.Int64
	factory := func(tg Target) (Probe, error) {
		made.Add(1)
		if tg.Address == "bad:1" {
			return nil, errors.New("cannot probe")
		}
		p := &countingProbe{}
		probes[tg.id()+"@"+tg.Address] = p // only written under Manager.mu
		return p, nil
	}
	rec := &recorder{}
	m, err := NewManager(CheckConfig{Interval: 20 * time.Millisecond, Timeout: 5 * time.Millisecond}, factory,
		Options{Listener: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]Target{{ID: "a", Address: "a:1"}, {ID: "b", Address: "b:1"}, {ID: "c", Address: "c:1"}}); err != nil {
		t.Fatal(err)
	}
	stop := runManager(t, m)
	eventually(t, 2*time.Second, "all up", func() bool { return m.Healthy("a") && m.Healthy("b") && m.Healthy("c") })
	eventually(t, 2*time.Second, "a few checks of a", func() bool {
		st, _ := m.Status("a")
		return st.Checks >= 3
	})
	if got := m.running.Load(); got != 3 {
		t.Fatalf("running checkers = %d, want 3", got)
	}
	stA, _ := m.Status("a")

	// Errors change nothing.
	for _, bad := range [][]Target{
		{{ID: "a", Address: "a:1"}, {ID: "a", Address: "x:1"}},
		{{ID: "a", Address: "a:1"}, {ID: "z", Address: "bad:1"}},
		{{}},
	} {
		if err := m.Update(bad); err == nil {
			t.Errorf("Update(%v) = nil error", bad)
		}
	}
	if got := len(m.Snapshot()); got != 3 {
		t.Fatalf("targets after failed updates = %d, want 3", got)
	}

	// Keep a (same address), move b to a new address, drop c, add d.
	before := made.Load()
	if err := m.Update([]Target{{ID: "a", Address: "a:1"}, {ID: "b", Address: "b:2"}, {ID: "d", Address: "d:1"}}); err != nil {
		t.Fatal(err)
	}
	if got := made.Load() - before; got != 2 {
		t.Errorf("probes made by the update = %d, want 2 (b moved, d new)", got)
	}
	if st, _ := m.Status("a"); !st.Healthy || st.Checks < stA.Checks || !st.Since.Equal(stA.Since) {
		t.Errorf("a lost its state: before %+v, after %+v", stA, st)
	}
	if st, _ := m.Status("b"); st.Checks > 1 {
		t.Errorf("b kept its state across an address change: %+v", st)
	}
	if _, ok := m.Status("c"); ok {
		t.Error("c is still known after removal")
	}
	eventually(t, 2*time.Second, "c's probe is closed", func() bool { return probes["c@c:1"].closed.Load() })
	eventually(t, 2*time.Second, "old b's probe is closed", func() bool { return probes["b@b:1"].closed.Load() })
	eventually(t, 2*time.Second, "3 checkers run", func() bool { return m.running.Load() == 3 })
	cChecks := probes["c@c:1"].n.Load()
	eventually(t, 2*time.Second, "b and d come up", func() bool { return m.Healthy("b") && m.Healthy("d") })
	if n := probes["c@c:1"].n.Load(); n != cChecks {
		t.Errorf("removed c was checked again: %d -> %d", cChecks, n)
	}
	for _, ev := range rec.all() {
		if ev.ID == "c" && ev.Kind != Up {
			t.Errorf("unexpected event for removed c: %+v", ev)
		}
	}

	// Removing everything stops every goroutine, while Run still runs.
	if err := m.Update(nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "no checker runs", func() bool { return m.running.Load() == 0 })
	stop()
	checkNoGoroutineLeak(t, base)
}

func TestManagerRunStopsEverything(t *testing.T) {
	srvs := []*flipServer{newFlipServer(t), newFlipServer(t), newFlipServer(t)}
	base := runtime.NumGoroutine()
	m, err := NewHTTPManager(fastCheck(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for _, s := range srvs {
		targets = append(targets, Target{Address: s.addr})
	}
	srvs[2].mode.Store(modeHang) // a check in flight when Run stops
	if err := m.Update(targets); err != nil {
		t.Fatal(err)
	}
	stop := runManager(t, m)
	eventually(t, 2*time.Second, "two up", func() bool { return m.Healthy(srvs[0].addr) && m.Healthy(srvs[1].addr) })
	stop()
	if got := m.running.Load(); got != 0 {
		t.Errorf("running checkers after Run returned = %d", got)
	}
	checkNoGoroutineLeak(t, base)

	if err := m.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Run = %v, want ErrAlreadyRun", err)
	}
	// Update after Run records targets without starting goroutines.
	if err := m.Update(targets[:1]); err != nil {
		t.Fatal(err)
	}
	if got := m.running.Load(); got != 0 {
		t.Errorf("Update after Run started %d checkers", got)
	}
}

func TestManagerSurvivesPanickingProbe(t *testing.T) {
	p := &countingProbe{panics: true}
	m, err := NewManager(CheckConfig{Interval: 10 * time.Millisecond, Timeout: 5 * time.Millisecond, Initial: InitialHealthy},
		func(Target) (Probe, error) { return p, nil }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]Target{{Address: "x:1"}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	eventually(t, 2*time.Second, "the loop keeps checking after panics", func() bool { return p.n.Load() >= 5 })
	if m.Healthy("x:1") {
		t.Error("a panicking probe left the target healthy")
	}
}

// panickingListener panics on every call; the checker must survive it.
func TestManagerSurvivesPanickingListener(t *testing.T) {
	p := &countingProbe{}
	var calls atomic.Int64
	l := ListenerFunc(func(Change) {
		calls.Add(1)
		panic("listener bug")
	})
	m, err := NewManager(CheckConfig{Interval: 10 * time.Millisecond, Timeout: 5 * time.Millisecond},
		func(Target) (Probe, error) { return p, nil }, Options{Listener: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]Target{{Address: "x:1"}}); err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	eventually(t, 2*time.Second, "checks go on", func() bool { return p.n.Load() >= 3 })
	if calls.Load() != 1 || !m.Healthy("x:1") {
		t.Errorf("listener calls = %d, healthy = %v", calls.Load(), m.Healthy("x:1"))
	}
}

func TestNewManagerErrors(t *testing.T) {
	if _, err := NewManager(CheckConfig{Interval: time.Second, Timeout: 2 * time.Second}, func(Target) (Probe, error) { return nil, nil }, Options{}); err == nil {
		t.Error("NewManager with timeout > interval = nil error")
	}
	if _, err := NewManager(CheckConfig{}, nil, Options{}); err == nil {
		t.Error("NewManager with nil factory = nil error")
	}
	if _, err := NewHTTPManager(ActiveConfig{Method: "DELETE"}, Options{}); err == nil {
		t.Error("NewHTTPManager with DELETE = nil error")
	}
}
