package health

import (
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

func TestCheckConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   CheckConfig
		want CheckConfig
	}{
		{
			name: "empty",
			want: CheckConfig{Interval: 2 * time.Second, UnhealthyInterval: 2 * time.Second, Timeout: time.Second,
				Jitter: ptr(0.1), Rise: 2, Fall: 3, Initial: "unhealthy"},
		},
		{
			name: "short interval shortens the default timeout",
			in:   CheckConfig{Interval: 500 * time.Millisecond},
			want: CheckConfig{Interval: 500 * time.Millisecond, UnhealthyInterval: 500 * time.Millisecond,
				Timeout: 250 * time.Millisecond, Jitter: ptr(0.1), Rise: 2, Fall: 3, Initial: "unhealthy"},
		},
		{
			name: "short unhealthy interval shortens the default timeout",
			in:   CheckConfig{Interval: 10 * time.Second, UnhealthyInterval: 400 * time.Millisecond, Jitter: ptr(0.0)},
			want: CheckConfig{Interval: 10 * time.Second, UnhealthyInterval: 400 * time.Millisecond,
				Timeout: 200 * time.Millisecond, Jitter: ptr(0.0), Rise: 2, Fall: 3, Initial: "unhealthy"},
		},
		{
			name: "explicit values are kept",
			in: CheckConfig{Interval: time.Second, UnhealthyInterval: 3 * time.Second, Timeout: 100 * time.Millisecond,
				Jitter: ptr(0.2), Rise: 1, Fall: 1, Initial: "healthy"},
			want: CheckConfig{Interval: time.Second, UnhealthyInterval: 3 * time.Second, Timeout: 100 * time.Millisecond,
				Jitter: ptr(0.2), Rise: 1, Fall: 1, Initial: "healthy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			got.SetDefaults()
			if got.Interval != tt.want.Interval || got.UnhealthyInterval != tt.want.UnhealthyInterval ||
				got.Timeout != tt.want.Timeout || *got.Jitter != *tt.want.Jitter || got.Rise != tt.want.Rise ||
				got.Fall != tt.want.Fall || got.Initial != tt.want.Initial {
				t.Errorf("SetDefaults = %+v (jitter %v), want %+v (jitter %v)", got, *got.Jitter, tt.want, *tt.want.Jitter)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("defaults do not validate: %v", err)
			}
		})
	}
}

func TestActiveAndPassiveDefaults(t *testing.T) {
	var a ActiveConfig
	a.SetDefaults()
	if a.Path != "/healthz" || a.Method != "GET" || len(a.ExpectStatus) != 1 || a.ExpectStatus[0] != "200-399" || a.Host != "" {
		t.Errorf("ActiveConfig defaults: %+v", a)
	}
	var p PassiveConfig
	p.SetDefaults()
	if !p.IsEnabled() || p.ConsecutiveErrors != 5 || p.BaseEjectionTime != 30*time.Second ||
		p.MaxEjectionTime != 300*time.Second || *p.MaxEjectionPercent != 50 || p.EjectionDecay != 30*time.Second {
		t.Errorf("PassiveConfig defaults: %+v", p)
	}
	p = PassiveConfig{BaseEjectionTime: 10 * time.Minute}
	p.SetDefaults()
	if p.MaxEjectionTime != 10*time.Minute {
		t.Errorf("max_ejection_time default with a long base = %v, want the base", p.MaxEjectionTime)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error, "" = valid
	}{
		{name: "no active section", cfg: Config{}},
		{name: "empty active section", cfg: Config{Active: &ActiveConfig{}}},
		{
			name: "timeout not below interval",
			cfg:  Config{Active: &ActiveConfig{CheckConfig: CheckConfig{Interval: time.Second, Timeout: time.Second}}},
			want: []string{"active.timeout: 1s must be shorter than interval 1s"},
		},
		{
			name: "timeout not below unhealthy interval",
			cfg: Config{Active: &ActiveConfig{CheckConfig: CheckConfig{Interval: 5 * time.Second,
				UnhealthyInterval: time.Second, Timeout: 2 * time.Second}}},
			want: []string{"active.timeout: 2s must be shorter than unhealthy_interval 1s"},
		},
		{
			name: "interval too short",
			cfg:  Config{Active: &ActiveConfig{CheckConfig: CheckConfig{Interval: time.Millisecond, Timeout: time.Microsecond}}},
			want: []string{"active.interval: 1ms is shorter than 10ms", "active.unhealthy_interval"},
		},
		{
			name: "bad thresholds, jitter and initial",
			cfg: Config{Active: &ActiveConfig{CheckConfig: CheckConfig{Rise: -1, Fall: 101, Jitter: ptr(0.9),
				Initial: "maybe"}}},
			want: []string{"active.rise: -1 is outside 1..100", "active.fall: 101 is outside 1..100",
				"active.jitter: 0.9 is outside 0..0.5", `active.initial: "maybe" is not one of unhealthy, healthy`},
		},
		{
			name: "bad request",
			cfg: Config{Active: &ActiveConfig{Path: "healthz", Method: "POST", Host: "a b",
				ExpectStatus: []string{"200", "99", "500-400", "6xx"}}},
			want: []string{`active.path: "healthz" must start with /`, `active.method: "POST" is not one of GET, HEAD, OPTIONS`,
				`active.host: "a b" is not a host name`, "active.expect_status[1]:", "active.expect_status[2]:",
				"active.expect_status[3]:"},
		},
		{
			name: "body with HEAD",
			cfg:  Config{Active: &ActiveConfig{Method: "HEAD", ExpectBody: "ok"}},
			want: []string{"active.expect_body: cannot be checked with method HEAD"},
		},
		{
			name: "passive bounds",
			cfg: Config{Passive: PassiveConfig{ConsecutiveErrors: -3, BaseEjectionTime: time.Minute,
				MaxEjectionTime: time.Second, MaxEjectionPercent: ptr(101), EjectionDecay: -time.Second}},
			want: []string{"passive.consecutive_errors: -3 is outside 1..10000",
				"passive.max_ejection_time: 1s is shorter than base_ejection_time 1m0s",
				"passive.max_ejection_percent: 101 is outside 0..100", "passive.ejection_decay: must be positive"},
		},
		{name: "zero percent is valid", cfg: Config{Passive: PassiveConfig{MaxEjectionPercent: ptr(0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// upstreamFile is how a parent section embeds Config, for the YAML test.
type upstreamFile struct {
	Upstreams []struct {
		Name   string `yaml:"name"`
		Health Config `yaml:"health"`
	} `yaml:"upstreams"`
}

func (f *upstreamFile) SetDefaults() {
	for i := range f.Upstreams {
		f.Upstreams[i].Health.SetDefaults()
	}
}

func (f *upstreamFile) Validate() error {
	var errs []error
	for i := range f.Upstreams {
		errs = append(errs, config.At("upstreams", i, config.In("health", f.Upstreams[i].Health.Validate())))
	}
	return config.Join(errs...)
}

func TestConfigYAML(t *testing.T) {
	const good = `
upstreams:
  - name: web
    health:
      active:
        path: /ready
        interval: 500ms
        unhealthy_interval: 250ms
        jitter: 0
        rise: 1
        fall: 2
        initial: healthy
        expect_status: ["200", "3xx"]
        expect_body: ok
        host: app.internal
      passive:
        consecutive_errors: 3
        base_ejection_time: 10s
        max_ejection_percent: 100
`
	var f upstreamFile
	if err := config.Parse("edge.yaml", []byte(good), &f, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	h := f.Upstreams[0].Health
	a := h.Active
	if a == nil || a.Path != "/ready" || a.Interval != 500*time.Millisecond || a.UnhealthyInterval != 250*time.Millisecond ||
		a.Timeout != 125*time.Millisecond || *a.Jitter != 0 || a.Rise != 1 || a.Fall != 2 || a.Initial != "healthy" ||
		a.Host != "app.internal" || a.ExpectBody != "ok" || len(a.ExpectStatus) != 2 {
		t.Errorf("active = %+v", a)
	}
	if h.Passive.ConsecutiveErrors != 3 || h.Passive.BaseEjectionTime != 10*time.Second ||
		h.Passive.MaxEjectionTime != 300*time.Second || *h.Passive.MaxEjectionPercent != 100 || !h.Passive.IsEnabled() {
		t.Errorf("passive = %+v", h.Passive)
	}

	const bad = `
upstreams:
  - name: web
    health:
      active:
        interval: 1s
        timeout: 2s
        expect_status: ["200", "20x"]
      passive:
        enabled: false
        max_ejection_percent: 150
`
	err := config.Parse("edge.yaml", []byte(bad), &f, nil)
	if err == nil {
		t.Fatal("Parse of a bad file = nil")
	}
	for _, w := range []string{
		"edge.yaml:7: upstreams[0].health.active.timeout: 2s must be shorter than interval 1s",
		"edge.yaml:8: upstreams[0].health.active.expect_status[1]:",
		"edge.yaml:11: upstreams[0].health.passive.max_ejection_percent: 150 is outside 0..100",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\nwant it to contain %q", err, w)
		}
	}

	const unknown = `
upstreams:
  - name: web
    health:
      active:
        intervall: 1s
`
	if err := config.Parse("edge.yaml", []byte(unknown), &f, nil); err == nil || !strings.Contains(err.Error(), `did you mean "interval"`) {
		t.Errorf("unknown key: %v", err)
	}
}
