package health

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMonitorWithoutActiveChecks(t *testing.T) {
	clk := newFakeClock()
	rec := &recorder{}
	m, err := NewMonitor(Config{Passive: PassiveConfig{ConsecutiveErrors: 2, MaxEjectionPercent: ptr(100)}},
		Options{Clock: clk, Listener: rec})
	if err != nil {
		t.Fatal(err)
	}
	if m.Active() != nil {
		t.Fatal("active manager without an active section")
	}
	if err := m.Update([]Target{{ID: "a", Address: "10.0.0.1:80"}, {Address: "10.0.0.2:80"}}); err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	if !m.Usable("a", now) || !m.Usable("10.0.0.2:80", now) || m.Usable("zzz", now) {
		t.Fatal("Usable before any report")
	}
	m.Report("a", Timeout)
	m.Report("a", ConnectError)
	if m.Usable("a", now) {
		t.Fatal("ejected target is usable")
	}
	st, ok := m.Status("a")
	if !ok || !st.Healthy || st.Address != "10.0.0.1:80" || st.Ejections != 1 || !st.EjectedUntil.Equal(now.Add(30*time.Second)) ||
		st.Usable(now) || !st.Usable(now.Add(30*time.Second)) {
		t.Errorf("Status = %+v", st)
	}
	snap := m.Snapshot()
	if len(snap) != 2 || snap[0].ID != "10.0.0.2:80" || snap[1].ID != "a" {
		t.Errorf("Snapshot = %+v", snap)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"id":"a"`, `"healthy":true`, `"ejections":1`, `"ejected_until":`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("JSON %s lacks %s", b, w)
		}
	}
	if strings.Contains(string(b), "last_check") {
		t.Errorf("JSON %s has a zero last_check", b)
	}
}

func TestMonitorWithActiveChecks(t *testing.T) {
	srv := newFlipServer(t)
	rec := &recorder{}
	active := fastCheck()
	m, err := NewMonitor(Config{Active: &active, Passive: PassiveConfig{ConsecutiveErrors: 1, MaxEjectionPercent: ptr(100)}},
		Options{Listener: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]Target{{ID: "web", Address: srv.addr}}); err != nil {
		t.Fatal(err)
	}
	if m.Usable("web", time.Now()) {
		t.Fatal("usable before its first check")
	}
	done := make(chan error, 1)
	ctx, cancel := contextWithCancel()
	go func() { done <- m.Run(ctx) }()
	eventually(t, 2*time.Second, "up after the first pass", func() bool { return m.Usable("web", time.Now()) })
	m.Report("web", ServerError)
	if m.Usable("web", time.Now()) {
		t.Error("usable while ejected")
	}
	st, _ := m.Status("web")
	if !st.Healthy || st.Checks == 0 || st.LastResult != "HTTP 200" || st.EjectedUntil.IsZero() {
		t.Errorf("Status = %+v", st)
	}
	cancel()
	<-done
	if got := m.Passive().EjectedCount(); got != 0 {
		t.Errorf("ejections after Run returned = %d (detector not closed)", got)
	}
	if err := m.Update([]Target{{ID: "x", Address: "x:1"}, {ID: "x", Address: "x:2"}}); err == nil {
		t.Error("duplicate IDs accepted")
	}
}

func TestNewMonitorErrors(t *testing.T) {
	if _, err := NewMonitor(Config{Active: &ActiveConfig{Path: "x"}}, Options{}); err == nil {
		t.Error("bad active config accepted")
	}
	if _, err := NewMonitor(Config{Passive: PassiveConfig{MaxEjectionPercent: ptr(-1)}}, Options{}); err == nil {
		t.Error("bad passive config accepted")
	}
}
