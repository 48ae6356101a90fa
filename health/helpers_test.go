package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server modes for flipServer.
const (
	modeOK int32 = iota
	modeFail
	modeHang
)

// flipServer is a real HTTP backend on 127.0.0.1 whose answer a test can
// flip between 200, 500 and hanging.
type flipServer struct {
	*httptest.Server
	mode  atomic.Int32
	hits  atomic.Int64
	body  atomic.Pointer[string]
	host  atomic.Pointer[string]
	hang  chan struct{} // closed at cleanup to release hanging handlers
	once  sync.Once
	addr  string
	close func()
}

func newFlipServer(t *testing.T) *flipServer {
	t.Helper()
	s := &flipServer{hang: make(chan struct{})}
	ok := "status: ok"
	s.body.Store(&ok)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h := r.Host
		s.host.Store(&h)
		switch s.mode.Load() {
		case modeFail:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("boom"))
		case modeHang:
			select {
			case <-s.hang:
			case <-r.Context().Done():
			}
		default:
			_, _ = w.Write([]byte(*s.body.Load()))
		}
	}))
	s.addr = s.Listener.Addr().String()
	s.close = func() {
		s.once.Do(func() {
			close(s.hang)
			s.Server.Close()
		})
	}
	t.Cleanup(s.close)
	return s
}

// kill closes the server: its address now refuses connections.
func (s *flipServer) kill() { s.close() }

// recorder is a Listener that keeps every change.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) HealthChanged(c Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) all() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.changes...)
}

func (r *recorder) kinds(id string) []Kind {
	var out []Kind
	for _, c := range r.all() {
		if c.ID == id {
			out = append(out, c.Kind)
		}
	}
	return out
}

// fakeClock is a manual Clock: AfterFunc callbacks run synchronously inside
// Advance, in deadline order.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers map[int]*fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
	id int
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), timers: map[int]*fakeTimer{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	id := c.seq
	c.timers[id] = &fakeTimer{at: c.now.Add(d), f: f, id: id}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.timers[id]
		delete(c.timers, id)
		return ok
	}
}

// pending returns how many timers are armed.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves time forward by d, firing due timers one by one at their
// own deadlines.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due []*fakeTimer
		for _, t := range c.timers {
			if !t.at.After(end) {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		sort.Slice(due, func(i, j int) bool {
			if due[i].at.Equal(due[j].at) {
				return due[i].id < due[j].id
			}
			return due[i].at.Before(due[j].at)
		})
		t := due[0]
		delete(c.timers, t.id)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

var _ Clock = (*fakeClock)(nil)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond) // polling step, not a wait for state
	}
}

// checkNoGoroutineLeak fails when the goroutine count does not come back to
// base (plus slack for runtime helpers) before the deadline.
func checkNoGoroutineLeak(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, want <= %d\n%s", n, base, buf)
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
}

// runManager runs m in the background and returns a stop function that
// cancels it and waits for Run to return.
func runManager(t *testing.T, m *Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != context.Canceled {
					t.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func ptr[T any](v T) *T { return &v }

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
