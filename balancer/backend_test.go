package balancer

import (
	"testing"
	"time"
)

func TestBackendZeroValueIsAvailable(t *testing.T) {
	var b Backend
	now := time.Now()
	if !b.Available(now) || !b.Healthy() || b.Draining() || !b.HealthySince().IsZero() {
		t.Fatalf("zero Backend: available=%v healthy=%v draining=%v since=%v",
			b.Available(now), b.Healthy(), b.Draining(), b.HealthySince())
	}
}

func TestBackendAvailable(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		setup func(b *Backend)
		want  bool
	}{
		{"healthy", func(*Backend) {}, true},
		{"unhealthy", func(b *Backend) { b.SetHealthy(false, now) }, false},
		{"healthy again", func(b *Backend) { b.SetHealthy(false, now); b.SetHealthy(true, now) }, true},
		{"draining", func(b *Backend) { b.SetDraining(true) }, false},
		{"drain lifted", func(b *Backend) { b.SetDraining(true); b.SetDraining(false) }, true},
		{"draining and unhealthy", func(b *Backend) { b.SetDraining(true); b.SetHealthy(false, now) }, false},
		{"ejected", func(b *Backend) { b.Eject(now.Add(time.Second)) }, false},
		{"ejection over", func(b *Backend) { b.Eject(now) }, true},
		{"ejection lifted", func(b *Backend) { b.Eject(now.Add(time.Hour)); b.Eject(time.Time{}) }, true},
		{"full", func(b *Backend) { b.SetMaxInFlight(2); b.inflight.Store(2) }, false},
		{"below max", func(b *Backend) { b.SetMaxInFlight(2); b.inflight.Store(1) }, true},
		{"unlimited", func(b *Backend) { b.inflight.Store(1 << 40) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Backend{ID: "a"}
			tt.setup(b)
			if got := b.Available(now); got != tt.want {
				t.Errorf("Available = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackendSetHealthyTransitions(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Backend{}
	steps := []struct {
		healthy     bool
		at          time.Time
		wantChanged bool
		wantSince   time.Time
	}{
		{true, t0, false, time.Time{}}, // already healthy: no ramp
		{false, t0.Add(time.Second), true, time.Time{}},
		{false, t0.Add(2 * time.Second), false, time.Time{}},
		{true, t0.Add(3 * time.Second), true, t0.Add(3 * time.Second)},
		{true, t0.Add(4 * time.Second), false, t0.Add(3 * time.Second)}, // no restart
	}
	for i, s := range steps {
		if got := b.SetHealthy(s.healthy, s.at); got != s.wantChanged {
			t.Errorf("step %d: SetHealthy(%v) changed = %v, want %v", i, s.healthy, got, s.wantChanged)
		}
		if got := b.HealthySince(); !got.Equal(s.wantSince) {
			t.Errorf("step %d: HealthySince = %v, want %v", i, got, s.wantSince)
		}
	}
}

func TestBackendEjectRestartsRamp(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Backend{}
	b.Eject(t0.Add(30 * time.Second))
	if got := b.EjectedUntil(); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("EjectedUntil = %v", got)
	}
	if got := b.HealthySince(); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("HealthySince = %v, want the ejection end", got)
	}
	if b.Available(t0.Add(29*time.Second)) || !b.Available(t0.Add(30*time.Second)) {
		t.Error("ejection does not end at its deadline")
	}
}

func TestBackendWeight(t *testing.T) {
	tests := []struct {
		weight int
		want   uint64
	}{{-3, 1}, {0, 1}, {1, 1}, {7, 7}, {maxWeight + 1, maxWeight}}
	for _, tt := range tests {
		if got := (&Backend{Weight: tt.weight}).weight(); got != tt.want {
			t.Errorf("weight(%d) = %d, want %d", tt.weight, got, tt.want)
		}
	}
}
