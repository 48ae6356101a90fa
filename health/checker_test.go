package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// scriptProbe passes or fails as told by its script ('+' pass, '-' fail,
// 'p' panic); after the script it repeats the last step.
type scriptProbe struct {
	script string
	i      int
}

func (p *scriptProbe) Check(context.Context) (Result, error) {
	step := p.script[min(p.i, len(p.script)-1)]
	p.i++
	switch step {
	case '+':
		return Result{Detail: "ok"}, nil
	case 'p':
		panic("probe exploded")
	}
	return Result{}, errors.New("nope")
}

func testChecker(t *testing.T, cfg CheckConfig, probe Probe, rec *recorder) *checker {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	opts := Options{Listener: rec, Clock: newFakeClock()}.withDefaults()
	return newChecker(Target{ID: "a", Address: "127.0.0.1:1"}, probe, &cfg, &opts)
}

// TestRiseFall drives the state machine one result at a time and checks the
// verdict after every step and the exact events.
func TestRiseFall(t *testing.T) {
	tests := []struct {
		name    string
		cfg     CheckConfig
		script  string // one probe result per step
		healthy string // verdict after each step: 'U' up, 'D' down
		events  []Kind
	}{
		{
			name:    "starts unhealthy; the first pass is enough",
			script:  "+",
			healthy: "U",
			events:  []Kind{Up},
		},
		{
			name:    "starts unhealthy; a first failure then needs rise passes",
			script:  "-++",
			healthy: "DDU",
			events:  []Kind{Up},
		},
		{
			name:    "fall failures mark it down, rise passes bring it back",
			script:  "+--" + "-" + "+" + "-" + "++",
			healthy: "UUU" + "D" + "D" + "D" + "DU",
			events:  []Kind{Up, Down, Up},
		},
		{
			name:    "a pass resets the failure run",
			script:  "+--+--+",
			healthy: "UUUUUUU",
			events:  []Kind{Up},
		},
		{
			name:    "rise 3 fall 1",
			cfg:     CheckConfig{Rise: 3, Fall: 1},
			script:  "+-++-+++",
			healthy: "UDDDDDDU",
			events:  []Kind{Up, Down, Up},
		},
		{
			name:    "initial healthy: the first failure is enough",
			cfg:     CheckConfig{Initial: InitialHealthy},
			script:  "-++",
			healthy: "DDU",
			events:  []Kind{Down, Up},
		},
		{
			name:    "initial healthy: a first pass then needs fall failures",
			cfg:     CheckConfig{Initial: InitialHealthy},
			script:  "+---",
			healthy: "UUUD",
			events:  []Kind{Down},
		},
		{
			name:    "a panicking probe counts as a failure",
			cfg:     CheckConfig{Initial: InitialHealthy, Fall: 2},
			script:  "+pp+",
			healthy: "UUDD",
			events:  []Kind{Down},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			c := testChecker(t, tt.cfg, &scriptProbe{script: tt.script}, rec)
			for i := range tt.script {
				c.checkOnce(context.Background())
				st := c.state.Load()
				if want := tt.healthy[i] == 'U'; st.Healthy != want {
					t.Fatalf("after step %d (%q): healthy = %v, want %v", i, tt.script[:i+1], st.Healthy, want)
				}
				if st.Passes != 0 && st.Fails != 0 {
					t.Fatalf("after step %d: passes %d and fails %d both set", i, st.Passes, st.Fails)
				}
			}
			if got := rec.kinds("a"); !equalKinds(got, tt.events) {
				t.Errorf("events = %v, want %v", got, tt.events)
			}
			if st := c.state.Load(); st.Checks != uint64(len(tt.script)) {
				t.Errorf("Checks = %d, want %d", st.Checks, len(tt.script))
			}
		})
	}
}

func equalKinds(a, b []Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCheckerStatusFields(t *testing.T) {
	rec := &recorder{}
	c := testChecker(t, CheckConfig{}, &scriptProbe{script: "+--p"}, rec)
	clk := c.opts.Clock.(*fakeClock)
	start := clk.Now()

	c.checkOnce(context.Background())
	st := c.state.Load()
	if !st.Healthy || st.Passes != 1 || st.LastResult != "ok" || st.LastError != "" || !st.LastCheck.Equal(start) || !st.Since.Equal(start) {
		t.Errorf("after a pass: %+v", st)
	}
	clk.Advance(time.Second)
	c.checkOnce(context.Background())
	c.checkOnce(context.Background())
	st = c.state.Load()
	if !st.Healthy || st.Fails != 2 || st.Passes != 0 || st.LastError != "nope" || st.LastResult != "ok" {
		t.Errorf("after two failures: %+v", st)
	}
	clk.Advance(time.Second)
	c.checkOnce(context.Background())
	st = c.state.Load()
	if st.Healthy || st.Fails != 3 || !strings.Contains(st.LastError, "probe panicked: probe exploded") ||
		!st.Since.Equal(start.Add(2*time.Second)) {
		t.Errorf("after a panic: %+v", st)
	}
	ev := rec.all()
	if len(ev) != 2 || ev[1].Kind != Down || ev[1].Reason != "3 consecutive failures: probe panicked: probe exploded" ||
		!ev[1].At.Equal(start.Add(2*time.Second)) {
		t.Errorf("events = %+v", ev)
	}
}

// slowProbe blocks until ctx is done and reports what ctx said.
type slowProbe struct{}

func (slowProbe) Check(ctx context.Context) (Result, error) {
	<-ctx.Done()
	return Result{}, ctx.Err()
}

func TestCheckTimeoutAndCancel(t *testing.T) {
	rec := &recorder{}
	c := testChecker(t, CheckConfig{Interval: time.Second, Timeout: 20 * time.Millisecond, Initial: InitialHealthy},
		slowProbe{}, rec)
	c.checkOnce(context.Background())
	st := c.state.Load()
	if st.Healthy || !strings.Contains(st.LastError, ErrTimeout.Error()) {
		t.Errorf("after a timeout: %+v", st)
	}

	// A check cut short because the checker is stopping is discarded.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.checkOnce(ctx)
	if got := c.state.Load().Checks; got != 1 {
		t.Errorf("Checks after a cancelled check = %d, want 1", got)
	}
}

func TestCheckerStopBlocksEvents(t *testing.T) {
	rec := &recorder{}
	c := testChecker(t, CheckConfig{}, &scriptProbe{script: "+"}, rec)
	c.stop()
	c.checkOnce(context.Background())
	if ev := rec.all(); len(ev) != 0 {
		t.Errorf("events after stop: %+v", ev)
	}
}

func TestJitter(t *testing.T) {
	tests := []struct {
		name      string
		jitter    float64
		r         float64
		healthy   bool
		wantFirst time.Duration
		wantNext  time.Duration
	}{
		{name: "r=0 shortest", jitter: 0.1, r: 0, healthy: true, wantFirst: 0, wantNext: 900 * time.Millisecond},
		{name: "r=0.5 exact", jitter: 0.1, r: 0.5, healthy: true, wantFirst: 50 * time.Millisecond, wantNext: time.Second},
		{name: "r=1 longest", jitter: 0.2, r: 1, healthy: true, wantFirst: 200 * time.Millisecond, wantNext: 1200 * time.Millisecond},
		{name: "no jitter", jitter: 0, r: 0.9, healthy: true, wantFirst: 0, wantNext: time.Second},
		{name: "unhealthy interval", jitter: 0, r: 0.3, healthy: false, wantFirst: 0, wantNext: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := CheckConfig{Interval: time.Second, UnhealthyInterval: 300 * time.Millisecond, Jitter: ptr(tt.jitter)}
			cfg.SetDefaults()
			opts := Options{Rand: func() float64 { return tt.r }}.withDefaults()
			c := newChecker(Target{Address: "x:1"}, &scriptProbe{script: "+"}, &cfg, &opts)
			c.state.Store(&ActiveStatus{Healthy: tt.healthy})
			if got := c.firstDelay(); got != tt.wantFirst {
				t.Errorf("firstDelay = %v, want %v", got, tt.wantFirst)
			}
			if got := c.nextDelay(); got != tt.wantNext {
				t.Errorf("nextDelay = %v, want %v", got, tt.wantNext)
			}
		})
	}
}

// TestRiseFallRealServer runs the thresholds against a real HTTP server
// whose answer flips between 200, 500 and hanging.
func TestRiseFallRealServer(t *testing.T) {
	srv := newFlipServer(t)
	cfg := ActiveConfig{CheckConfig: CheckConfig{Interval: time.Second, Timeout: 50 * time.Millisecond}}
	probe, err := NewHTTPProbe(srv.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c := testChecker(t, cfg.CheckConfig, probe, rec)
	steps := []struct {
		mode    int32
		healthy bool
		errLike string
	}{
		{modeOK, true, ""},
		{modeFail, true, "HTTP 500"},
		{modeHang, true, "timed out"},
		{modeFail, false, "HTTP 500"},
		{modeOK, false, ""},
		{modeOK, true, ""},
	}
	for i, s := range steps {
		srv.mode.Store(s.mode)
		c.checkOnce(context.Background())
		st := c.state.Load()
		if st.Healthy != s.healthy || !strings.Contains(st.LastError, s.errLike) || (s.errLike == "" && st.LastError != "") {
			t.Fatalf("step %d: healthy=%v err=%q, want healthy=%v err~%q", i, st.Healthy, st.LastError, s.healthy, s.errLike)
		}
	}
	if got := rec.kinds("a"); !equalKinds(got, []Kind{Up, Down, Up}) {
		t.Errorf("events = %v", got)
	}
}
