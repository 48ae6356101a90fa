package health

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestDetector(t testing.TB, cfg PassiveConfig, ids ...string) (*OutlierDetector, *fakeClock, *recorder) {
	t.Helper()
	clk := newFakeClock()
	rec := &recorder{}
	d, err := NewOutlierDetector(cfg, Options{Clock: clk, Listener: rec})
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for _, id := range ids {
		targets = append(targets, Target{ID: id, Address: id + ":80"})
	}
	d.Update(targets)
	t.Cleanup(d.Close)
	return d, clk, rec
}

func fail(d *OutlierDetector, id string, n int) {
	for range n {
		d.Report(id, ServerError)
	}
}

func TestOutlierEjectsAfterConsecutiveErrors(t *testing.T) {
	outcomes := []Outcome{ConnectError, Timeout, ServerError}
	for _, o := range outcomes {
		t.Run(o.String(), func(t *testing.T) {
			d, clk, rec := newTestDetector(t, PassiveConfig{ConsecutiveErrors: 3, MaxEjectionPercent: ptr(100)}, "a", "b")
			now := clk.Now()
			d.Report("a", o)
			d.Report("a", o)
			if d.Ejected("a", now) {
				t.Fatal("ejected after 2 of 3 errors")
			}
			d.Report("a", o)
			if !d.Ejected("a", now) || d.Ejected("b", now) {
				t.Fatalf("after 3 errors: a ejected %v, b ejected %v", d.Ejected("a", now), d.Ejected("b", now))
			}
			if got, want := d.EjectedUntil("a"), now.Add(30*time.Second); !got.Equal(want) {
				t.Errorf("EjectedUntil = %v, want %v", got, want)
			}
			ev := rec.all()
			if len(ev) != 1 || ev[0].Kind != Ejected || ev[0].ID != "a" || !ev[0].Until.Equal(now.Add(30*time.Second)) ||
				ev[0].Reason != "3 consecutive errors, last: "+o.String() {
				t.Errorf("events = %+v", ev)
			}
		})
	}
}

func TestOutlierSuccessResets(t *testing.T) {
	d, clk, _ := newTestDetector(t, PassiveConfig{ConsecutiveErrors: 3, MaxEjectionPercent: ptr(100)}, "a")
	for range 10 {
		fail(d, "a", 2)
		d.Report("a", Success)
	}
	if d.Ejected("a", clk.Now()) {
		t.Fatal("ejected although no run reached 3 errors")
	}
	if st, _ := d.Status("a"); st.ConsecutiveErrors != 0 {
		t.Errorf("ConsecutiveErrors after a success = %d", st.ConsecutiveErrors)
	}
	fail(d, "a", 2)
	if st, _ := d.Status("a"); st.ConsecutiveErrors != 2 {
		t.Errorf("ConsecutiveErrors = %d, want 2", st.ConsecutiveErrors)
	}
	if StatusOutcome(404) != Success || StatusOutcome(503) != ServerError || StatusOutcome(200) != Success {
		t.Error("StatusOutcome mapping")
	}
}

func TestOutlierExpiryAndGrowingEjection(t *testing.T) {
	cfg := PassiveConfig{ConsecutiveErrors: 2, BaseEjectionTime: 10 * time.Second, MaxEjectionTime: 35 * time.Second,
		EjectionDecay: time.Minute, MaxEjectionPercent: ptr(100)}
	d, clk, rec := newTestDetector(t, cfg, "a")

	// Each ejection right after the previous one ends lasts one base longer,
	// up to the cap: 10s, 20s, 30s, 35s, 35s.
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 35 * time.Second, 35 * time.Second} {
		start := clk.Now()
		fail(d, "a", 2)
		if got := d.EjectedUntil("a").Sub(start); got != want {
			t.Fatalf("ejection %d lasts %v, want %v", i+1, got, want)
		}
		if clk.pending() != 1 {
			t.Fatalf("ejection %d: %d timers armed, want 1", i+1, clk.pending())
		}
		fail(d, "a", 5) // errors from requests in flight while ejected change nothing
		if got := d.EjectedUntil("a").Sub(start); got != want {
			t.Fatalf("ejection %d extended to %v by errors while ejected", i+1, got)
		}
		clk.Advance(want - time.Nanosecond)
		if !d.Ejected("a", clk.Now()) {
			t.Fatalf("ejection %d ended early", i+1)
		}
		clk.Advance(time.Nanosecond)
		if d.Ejected("a", clk.Now()) || !d.EjectedUntil("a").IsZero() {
			t.Fatalf("ejection %d did not end on time", i+1)
		}
		if st, _ := d.Status("a"); st.ConsecutiveErrors != 0 {
			t.Fatalf("ConsecutiveErrors after expiry = %d, want 0", st.ConsecutiveErrors)
		}
	}
	kinds := rec.kinds("a")
	if len(kinds) != 10 {
		t.Fatalf("events = %v, want 5 × (ejected, returned)", kinds)
	}
	for i, k := range kinds {
		if want := []Kind{Ejected, Returned}[i%2]; k != want {
			t.Fatalf("event %d = %v, want %v (all: %v)", i, k, want, kinds)
		}
	}
	if st, _ := d.Status("a"); st.Ejections != 5 || st.EjectionLevel != 5 {
		t.Errorf("status = %+v, want 5 ejections at level 5", st)
	}
}

func TestOutlierMultiplierDecays(t *testing.T) {
	cfg := PassiveConfig{ConsecutiveErrors: 1, BaseEjectionTime: 10 * time.Second, EjectionDecay: time.Minute,
		MaxEjectionPercent: ptr(100)}
	d, clk, _ := newTestDetector(t, cfg, "a")
	ejectFor := func() time.Duration {
		start := clk.Now()
		d.Report("a", Timeout)
		dur := d.EjectedUntil("a").Sub(start)
		clk.Advance(dur)
		return dur
	}
	for i, want := range []time.Duration{10, 20, 30} {
		if got := ejectFor(); got != want*time.Second {
			t.Fatalf("ejection %d = %v, want %vs", i+1, got, want)
		}
	}
	// One decay period clean: one level less (3 → 2, so the next is 30s).
	clk.Advance(time.Minute)
	if st, _ := d.Status("a"); st.EjectionLevel != 2 {
		t.Errorf("EjectionLevel after one decay = %d, want 2", st.EjectionLevel)
	}
	if got := ejectFor(); got != 30*time.Second {
		t.Errorf("after one decay period: %v, want 30s", got)
	}
	// Long clean: back to the base.
	clk.Advance(10 * time.Minute)
	if st, _ := d.Status("a"); st.EjectionLevel != 0 {
		t.Errorf("EjectionLevel after a long time = %d, want 0", st.EjectionLevel)
	}
	if got := ejectFor(); got != 10*time.Second {
		t.Errorf("after a long clean run: %v, want 10s", got)
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		pct     int
		targets int
		want    int // max ejected at once
	}{
		{pct: 50, targets: 4, want: 2},
		{pct: 50, targets: 5, want: 2},
		{pct: 50, targets: 2, want: 1},
		{pct: 50, targets: 1, want: 0},
		{pct: 100, targets: 1, want: 1},
		{pct: 100, targets: 3, want: 3},
		{pct: 34, targets: 3, want: 1},
		{pct: 0, targets: 3, want: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d%% of %d", tt.pct, tt.targets), func(t *testing.T) {
			var ids []string
			for i := range tt.targets {
				ids = append(ids, "t"+strconv.Itoa(i))
			}
			d, clk, rec := newTestDetector(t, PassiveConfig{ConsecutiveErrors: 2, MaxEjectionPercent: ptr(tt.pct)}, ids...)
			for _, id := range ids {
				fail(d, id, 2)
			}
			ejected := 0
			for _, id := range ids {
				if d.Ejected(id, clk.Now()) {
					ejected++
				}
			}
			if ejected != tt.want || d.EjectedCount() != tt.want || len(rec.all()) != tt.want {
				t.Fatalf("ejected %d (count %d, events %d), want %d", ejected, d.EjectedCount(), len(rec.all()), tt.want)
			}
			if tt.want == 0 || tt.want == tt.targets {
				return
			}
			// When one ejection ends, a capped target can be ejected by its
			// next error (its run is still at the threshold).
			var capped string
			for _, id := range ids {
				if !d.Ejected(id, clk.Now()) {
					capped = id
					break
				}
			}
			clk.Advance(30 * time.Second)
			if d.EjectedCount() != 0 {
				t.Fatalf("EjectedCount after expiry = %d", d.EjectedCount())
			}
			d.Report(capped, Timeout)
			if !d.Ejected(capped, clk.Now()) {
				t.Errorf("capped target %s not ejected once a slot freed", capped)
			}
		})
	}
}

func TestOutlierUpdate(t *testing.T) {
	d, clk, rec := newTestDetector(t, PassiveConfig{ConsecutiveErrors: 2, MaxEjectionPercent: ptr(50)}, "a", "b", "c", "d")
	fail(d, "a", 2)
	fail(d, "b", 2)
	fail(d, "c", 1)
	if d.EjectedCount() != 2 {
		t.Fatalf("EjectedCount = %d, want 2", d.EjectedCount())
	}
	// Keep a and c, move b to a new address (fresh state), drop d, add e.
	d.Update([]Target{{ID: "a", Address: "a:80"}, {ID: "b", Address: "b:81"}, {ID: "c", Address: "c:80"}, {ID: "e", Address: "e:80"}})
	now := clk.Now()
	if !d.Ejected("a", now) || d.Ejected("b", now) || d.EjectedCount() != 1 {
		t.Fatalf("after update: a %v b %v count %d", d.Ejected("a", now), d.Ejected("b", now), d.EjectedCount())
	}
	if st, _ := d.Status("c"); st.ConsecutiveErrors != 1 {
		t.Errorf("c lost its error run: %+v", st)
	}
	if st, _ := d.Status("b"); st.Ejections != 0 {
		t.Errorf("moved b kept its history: %+v", st)
	}
	if clk.pending() != 1 {
		t.Errorf("timers armed = %d, want 1 (a's)", clk.pending())
	}
	d.Report("d", Timeout) // unknown now: ignored
	if _, ok := d.Status("d"); ok {
		t.Error("d still known")
	}
	clk.Advance(time.Hour)
	if got := rec.kinds("b"); !equalKinds(got, []Kind{Ejected}) {
		t.Errorf("b events = %v: no Returned after removal", got)
	}
	if got := rec.kinds("a"); !equalKinds(got, []Kind{Ejected, Returned}) {
		t.Errorf("a events = %v", got)
	}
	snap := d.Snapshot()
	if len(snap) != 4 || snap[0].ID != "a" || snap[3].ID != "e" || snap[1].Address != "b:81" || snap[0].Ejections != 1 {
		t.Errorf("Snapshot = %+v", snap)
	}
}

func TestOutlierDisabledAndClose(t *testing.T) {
	d, clk, rec := newTestDetector(t, PassiveConfig{Enabled: ptr(false), ConsecutiveErrors: 1}, "a", "b")
	fail(d, "a", 10)
	if d.Ejected("a", clk.Now()) || len(rec.all()) != 0 {
		t.Fatal("a disabled detector ejected")
	}

	d, clk, rec = newTestDetector(t, PassiveConfig{ConsecutiveErrors: 1, MaxEjectionPercent: ptr(100)}, "a", "b")
	d.Report("a", Timeout)
	d.Close()
	if clk.pending() != 0 {
		t.Errorf("timers after Close = %d", clk.pending())
	}
	d.Report("b", Timeout)
	clk.Advance(time.Hour)
	if got := len(rec.all()); got != 1 {
		t.Errorf("events = %+v, want only a's ejection", rec.all())
	}
	d.Close() // idempotent
	d.Update([]Target{{Address: "x:1"}})
	if _, ok := d.Status("x:1"); ok {
		t.Error("Update after Close took effect")
	}
}

func TestOutlierRealClockExpiry(t *testing.T) {
	rec := &recorder{}
	d, err := NewOutlierDetector(PassiveConfig{ConsecutiveErrors: 1, BaseEjectionTime: 20 * time.Millisecond,
		MaxEjectionPercent: ptr(100)}, Options{Listener: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Update([]Target{{Address: "a:1"}})
	d.Report("a:1", ConnectError)
	if !d.Ejected("a:1", time.Now()) {
		t.Fatal("not ejected")
	}
	eventually(t, 2*time.Second, "Returned from the timer", func() bool { return len(rec.kinds("a:1")) == 2 })
	if d.Ejected("a:1", time.Now()) || d.EjectedCount() != 0 {
		t.Error("still ejected after Returned")
	}
}

// TestOutlierConcurrentReports hammers Report from many goroutines while
// timers expire and Update runs: the ejected count must never exceed the
// cap and must return to a consistent value (run with -race).
func TestOutlierConcurrentReports(t *testing.T) {
	clk := newFakeClock()
	var maxSeen atomic.Int64
	var d *OutlierDetector
	l := ListenerFunc(func(c Change) {
		if n := int64(d.EjectedCount()); n > maxSeen.Load() {
			maxSeen.Store(n)
		}
	})
	d, err := NewOutlierDetector(PassiveConfig{ConsecutiveErrors: 3, BaseEjectionTime: time.Second, MaxEjectionPercent: ptr(50)},
		Options{Clock: clk, Listener: l})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ids := []string{"a", "b", "c", "d", "e", "f"}
	var targets []Target
	for _, id := range ids {
		targets = append(targets, Target{ID: id, Address: id})
	}
	d.Update(targets)

	var wg sync.WaitGroup
	var reports atomic.Int64
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(g+i)%len(ids)]
				o := Outcome(1 + i%3) // mostly errors, of every kind
				if i%16 == 0 {
					o = Success
				}
				d.Report(id, o)
				reports.Add(1)
				_ = d.Ejected(id, clk.Now())
				if n := int64(d.EjectedCount()); n > 3 {
					t.Errorf("EjectedCount = %d > 50%% of 6", n)
					return
				}
			}
		}()
	}
	eventually(t, 5*time.Second, "reporters get going", func() bool { return reports.Load() > 10000 })
	for i := range 200 {
		clk.Advance(300 * time.Millisecond)
		if i%50 == 0 {
			d.Update(targets[:4+i%3])
			d.Update(targets)
		}
		_ = d.Snapshot()
	}
	close(stop)
	wg.Wait()
	var total uint64
	for _, st := range d.Snapshot() {
		total += st.Ejections
	}
	if total == 0 {
		t.Error("no ejection happened: the test exercised nothing")
	}
	t.Logf("%d reports, %d ejections", reports.Load(), total)
	clk.Advance(time.Hour)
	if n := d.EjectedCount(); n != 0 {
		t.Errorf("EjectedCount after every ejection ended = %d", n)
	}
	if maxSeen.Load() > 3 {
		t.Errorf("max ejected seen = %d", maxSeen.Load())
	}
}

func BenchmarkReport(b *testing.B) {
	ids := make([]string, 16)
	var targets []Target
	for i := range ids {
		ids[i] = "10.0.0." + strconv.Itoa(i) + ":8080"
		targets = append(targets, Target{Address: ids[i]})
	}
	d, err := NewOutlierDetector(PassiveConfig{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	d.Update(targets)
	b.Run("success", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d.Report(ids[i&15], Success)
		}
	})
	b.Run("error_then_success", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			o := Success
			if i&3 == 0 {
				o = ServerError
			}
			d.Report(ids[i&15], o)
		}
	})
	b.Run("success_parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				d.Report(ids[i&15], Success)
				i++
			}
		})
	})
	b.Run("ejected_check", func(b *testing.B) {
		b.ReportAllocs()
		now := time.Now()
		for i := 0; b.Loop(); i++ {
			_ = d.Ejected(ids[i&15], now)
		}
	})
}
