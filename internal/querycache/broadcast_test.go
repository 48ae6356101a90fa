package querycache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// sortedOps returns m's ops sorted by database, tables sorted.
func sortedOps(m message) []remoteOp {
	ops := slices.Clone(m.ops)
	for i := range ops {
		ops[i].tables = slices.Clone(ops[i].tables)
		sort.Strings(ops[i].tables)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].db < ops[j].db })
	return ops
}

func opsEqual(a, b []remoteOp) bool {
	return slices.EqualFunc(a, b, func(x, y remoteOp) bool {
		return x.db == y.db && x.all == y.all && slices.Equal(x.tables, y.tables)
	})
}

// pendingMessage encodes what Publish calls queue, as Run would send it.
func pendingMessage(c *Cache, publish func(b *Broadcaster)) []byte {
	b := NewBroadcaster(c, nil)
	publish(b)
	return c.encode(b.pending)
}

func TestEncodeDecode(t *testing.T) {
	c := newTestCache(t, Config{}, newFakeClock())
	msg := pendingMessage(c, func(b *Broadcaster) {
		b.Publish("app", []string{"shop.products", `"a.b"`, `"Q""x"`}, false)
		b.Publish("app", []string{"products", "orders"}, false)
		b.Publish("other", []string{"x"}, false)
		b.Publish("other", nil, true)
		b.Publish("other", []string{"y"}, false)
		b.Publish("", nil, false)
	})
	m, err := decodeMessage(msg)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if m.version != msgVersion || m.origin != c.origin || m.seq != 1 {
		t.Fatalf("header = %d %x %d", m.version, m.origin, m.seq)
	}
	want := []remoteOp{
		{db: ""},
		{db: "app", tables: []string{`Q"x`, "a.b", "orders", "products"}},
		{db: "other", all: true},
	}
	if got := sortedOps(m); !opsEqual(got, want) {
		t.Fatalf("ops = %+v, want %+v", got, want)
	}
	// The documented format, written independently, decodes the same.
	again := encodeMsg(msgVersion, m.origin, m.seq, m.ops...)
	if !bytes.Equal(again, msg) {
		t.Fatalf("encodeMsg differs:\n%x\n%x", again, msg)
	}
	if m2, _ := decodeMessage(pendingMessage(c, func(b *Broadcaster) { b.Publish("x", nil, true) })); m2.seq != 2 {
		t.Fatalf("second message seq = %d, want 2", m2.seq)
	}
}

func TestPendingTablesOverflow(t *testing.T) {
	c := newTestCache(t, Config{}, newFakeClock())
	tables := func(from, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprint("t", from+i))
		}
		return out
	}
	tests := []struct {
		name    string
		publish func(b *Broadcaster)
		want    remoteOp
	}{
		{"at the limit", func(b *Broadcaster) { b.Publish("app", tables(0, maxPendingTables), false) },
			remoteOp{db: "app", tables: tables(0, maxPendingTables)}},
		{"same tables twice", func(b *Broadcaster) {
			b.Publish("app", tables(0, maxPendingTables), false)
			b.Publish("app", tables(0, maxPendingTables), false)
		}, remoteOp{db: "app", tables: tables(0, maxPendingTables)}},
		{"one call over", func(b *Broadcaster) { b.Publish("app", tables(0, 300), false) },
			remoteOp{db: "app", all: true}},
		{"several calls over", func(b *Broadcaster) {
			b.Publish("app", tables(0, 200), false)
			b.Publish("app", tables(200, 57), false)
			b.Publish("app", tables(500, 3), false) // stays all
		}, remoteOp{db: "app", all: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeMessage(pendingMessage(c, tt.publish))
			if err != nil {
				t.Fatal(err)
			}
			want := []remoteOp{tt.want}
			sort.Strings(want[0].tables)
			if got := sortedOps(m); !opsEqual(got, want) {
				t.Fatalf("got %d ops, all=%v, %d tables; want all=%v, %d tables",
					len(got), len(got) > 0 && got[0].all, len(got[0].tables), tt.want.all, len(tt.want.tables))
			}
		})
	}
}

func TestApplyRemote(t *testing.T) {
	clk := newFakeClock()
	peer := newTestCache(t, Config{}, clk)
	c := newTestCache(t, Config{}, clk)
	app, other := c.DB("app"), c.DB("other")
	put(app, 1, "k1", "v", []string{"shop.products"}, time.Hour)
	put(app, 2, "k2", "v", []string{`"a.b"`}, time.Hour)
	put(app, 3, "k3", "v", []string{`s."Q""x"`}, time.Hour)
	put(app, 4, "k4", "v", []string{"users"}, time.Hour)
	put(app, 5, "k5", "v", []string{"b"}, time.Hour) // not "a.b"
	put(other, 1, "k1", "v", []string{"users"}, time.Hour)

	msg := pendingMessage(peer, func(b *Broadcaster) {
		b.Publish("app", []string{"products", `x."a.b"`, `"Q""x"`}, false)
		b.Publish("other", nil, true)
		b.Publish("unknown", []string{"t"}, false)
	})
	if err := c.ApplyRemote(msg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d    *DB
		hash uint64
		key  string
		hit  bool
	}{{app, 1, "k1", false}, {app, 2, "k2", false}, {app, 3, "k3", false}, {app, 4, "k4", true}, {app, 5, "k5", true}, {other, 1, "k1", false}} {
		if _, ok := get(tc.d, tc.hash, tc.key); ok != tc.hit {
			t.Errorf("%s %s: hit = %v, want %v", tc.d.Name(), tc.key, ok, tc.hit)
		}
	}
	if c.lookupDB("unknown") != nil {
		t.Error("a remote message created a database")
	}
	if s := app.Stats(); s.RemoteInvalidations != 1 || s.Invalidations != 0 {
		t.Errorf("app Stats = %+v", s)
	}
	if s := other.Stats(); s.RemoteInvalidations != 1 {
		t.Errorf("other Stats = %+v", s)
	}

	// A remote invalidation also starts the grace period.
	var tk Ticket
	app.Begin(&tk, []string{"products"})
	if app.Put(&tk, 1, []byte("k1"), []byte("v"), time.Hour) {
		t.Error("stored a result within the grace period of a remote invalidation")
	}

	// The duplicate (the resent copy) is not applied again.
	clk.Advance(time.Minute)
	put(app, 1, "k1", "v", []string{"products"}, time.Hour)
	if err := c.ApplyRemote(msg); err != nil {
		t.Fatal(err)
	}
	if _, ok := get(app, 1, "k1"); !ok {
		t.Error("a duplicate message invalidated again")
	}
	if s := app.Stats(); s.RemoteInvalidations != 1 {
		t.Errorf("duplicate counted: %+v", s)
	}

	// Own messages are ignored.
	own := pendingMessage(c, func(b *Broadcaster) { b.Publish("app", nil, true) })
	if err := c.ApplyRemote(own); err != nil {
		t.Fatal(err)
	}
	if _, ok := get(app, 1, "k1"); !ok {
		t.Error("an own message was applied")
	}
}

func TestApplyRemoteOrdering(t *testing.T) {
	const origin = 0xfeed
	tests := []struct {
		name    string
		seqs    []uint64
		applied []bool
	}{
		{"in order", []uint64{1, 2, 3}, []bool{true, true, true}},
		{"duplicates", []uint64{1, 1, 2, 1, 2}, []bool{true, false, true, false, false}},
		{"reordered within the window", []uint64{5, 3, 4, 3, 1}, []bool{true, true, true, false, true}},
		{"gap then old ones", []uint64{10, 70, 7, 9, 11}, []bool{true, true, true, true, true}},
		{"63 back is in the window", []uint64{100, 37, 37}, []bool{true, true, false}},
		{"64 back is too old", []uint64{100, 36}, []bool{true, false}},
		{"far jump clears the window", []uint64{1, 1000, 1, 999, 1000}, []bool{true, true, false, true, false}},
		{"seq 0", []uint64{0, 0, 1}, []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Config{}, newFakeClock())
			d := c.DB("app")
			for i, seq := range tt.seqs {
				before := d.Stats().RemoteInvalidations
				if err := c.ApplyRemote(encodeMsg(msgVersion, origin, seq, remoteOp{db: "app", all: true})); err != nil {
					t.Fatal(err)
				}
				if applied := d.Stats().RemoteInvalidations > before; applied != tt.applied[i] {
					t.Fatalf("message %d (seq %d): applied = %v, want %v", i, seq, applied, tt.applied[i])
				}
			}
		})
	}
}

func TestSeenWindowsOrigins(t *testing.T) {
	var s seenWindows
	if !s.first(1, 5) || !s.first(2, 5) || s.first(1, 5) || s.first(2, 5) {
		t.Fatal("origins are not kept apart")
	}
	for o := uint64(3); o < 2000; o++ { // many restarted peers
		s.first(o, 1)
	}
	if len(s.m) > 1025 {
		t.Fatalf("%d origins remembered", len(s.m))
	}
}

func TestApplyRemoteRejects(t *testing.T) {
	good := encodeMsg(msgVersion, 1, 1, remoteOp{db: "app", tables: []string{"t"}})
	tests := []struct {
		name string
		msg  []byte
		err  error
	}{
		{"empty", nil, ErrBadMessage},
		{"version only", []byte{msgVersion}, ErrBadMessage},
		{"short header", good[:12], ErrBadMessage},
		{"no count", good[:17], ErrBadMessage},
		{"truncated db", good[:19], ErrBadMessage},
		{"truncated table", good[:len(good)-1], ErrBadMessage},
		{"trailing byte", append(slices.Clone(good), 0), ErrBadMessage},
		{"count beyond the message", append(encodeMsg(msgVersion, 1, 1)[:17:17], 3, 1, 'a', 0, 0), ErrBadMessage},
		{"huge op count", append(encodeMsg(msgVersion, 1, 1)[:17:17], 0xff, 0xff, 0xff, 0xff, 0x0f), ErrBadMessage},
		{"huge table count", append(encodeMsg(msgVersion, 1, 1)[:17:17], 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f), ErrBadMessage},
		{"huge string length", append(encodeMsg(msgVersion, 1, 1)[:17:17], 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), ErrBadMessage},
		{"uvarint overflow", append(encodeMsg(msgVersion, 1, 1)[:17:17], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), ErrBadMessage},
		{"bad all flag", append(encodeMsg(msgVersion, 1, 1)[:17:17], 1, 0, 2, 0), ErrBadMessage},
		{"newer version", []byte{msgVersion + 1, 0xde, 0xad}, nil},
		{"version zero", []byte{0}, nil},
		{"good", good, nil},
		{"no databases", encodeMsg(msgVersion, 9, 9), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Config{}, newFakeClock())
			d := c.DB("app")
			err := c.ApplyRemote(tt.msg)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("ApplyRemote = %v, want %v", err, tt.err)
			}
			if tt.name != "good" && d.Stats().RemoteInvalidations != 0 {
				t.Fatal("a rejected or ignored message was applied")
			}
		})
	}
}

// fakeSender records what a Broadcaster sends.
type fakeSender struct {
	mu   sync.Mutex
	msgs [][]byte
	sent chan struct{} // a token after each send
}

func newFakeSender() *fakeSender { return &fakeSender{sent: make(chan struct{}, 1)} }

func (s *fakeSender) SendToPeers(p []byte) {
	s.mu.Lock()
	s.msgs = append(s.msgs, slices.Clone(p))
	s.mu.Unlock()
	select {
	case s.sent <- struct{}{}:
	default:
	}
}

// wait returns the first n messages once they were sent.
func (s *fakeSender) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got := slices.Clone(s.msgs)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.sent:
		case <-deadline.C:
			t.Fatalf("%d messages sent, want %d", len(got), n)
		}
	}
}

var _ Sender = (*fakeSender)(nil)

func TestBroadcasterRun(t *testing.T) {
	c := newTestCache(t, Config{BroadcastDelay: 200 * time.Millisecond}, newFakeClock())
	s := newFakeSender()
	b := NewBroadcaster(c, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})

	// Queued before Run starts: one batch.
	b.Publish("app", []string{"products"}, false)
	b.Publish("app", []string{"shop.orders"}, false)
	b.Publish("other", nil, true)
	go func() { b.Run(ctx); close(done) }()

	msgs := s.wait(t, 2) // the batch and its copy ~100ms later
	if !bytes.Equal(msgs[0], msgs[1]) {
		t.Fatal("the resent copy differs")
	}
	m, err := decodeMessage(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []remoteOp{{db: "app", tables: []string{"orders", "products"}}, {db: "other", all: true}}
	if got := sortedOps(m); !opsEqual(got, want) || m.seq != 1 {
		t.Fatalf("first batch = seq %d %+v, want %+v", m.seq, got, want)
	}

	// Published within the delay while Run waits: one batch.
	b.Publish("app", []string{"a"}, false)
	b.Publish("app", []string{"b"}, false)
	msgs = s.wait(t, 4)
	if !bytes.Equal(msgs[2], msgs[3]) {
		t.Fatalf("messages 3 and 4 differ: %d messages", len(msgs))
	}
	m, err = decodeMessage(msgs[2])
	if err != nil {
		t.Fatal(err)
	}
	want = []remoteOp{{db: "app", tables: []string{"a", "b"}}}
	if got := sortedOps(m); !opsEqual(got, want) || m.seq != 2 {
		t.Fatalf("second batch = seq %d %+v, want %+v", m.seq, got, want)
	}

	// A peer applies it once although it arrives twice.
	peer := newTestCache(t, Config{}, newFakeClock())
	pd := peer.DB("app")
	for _, msg := range msgs {
		if err := peer.ApplyRemote(msg); err != nil {
			t.Fatal(err)
		}
	}
	if got := pd.Stats().RemoteInvalidations; got != 2 {
		t.Fatalf("peer applied %d messages, want 2", got)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := len(s.wait(t, 4)); n != 4 {
		t.Fatalf("%d messages sent, want 4", n)
	}
}

func TestBroadcasterStops(t *testing.T) {
	tests := []struct {
		name    string
		publish bool
	}{
		{"idle", false},
		{"waiting for the delay", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Config{BroadcastDelay: time.Second}, newFakeClock())
			s := newFakeSender()
			b := NewBroadcaster(c, s)
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { b.Run(ctx); close(done) }()
			if tt.publish {
				b.Publish("app", []string{"t"}, false)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines, %d before Run", runtime.NumGoroutine(), before)
				}
				runtime.Gosched()
			}
		})
	}
}
