package reshard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/shardmap"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // error lines, none when valid
	}{
		{"defaults", "{}", nil},
		{"all set", "batch_rows: 500\ncopy_from: primary\nparallel: 4\ncatchup_batch: 10\ncatchup_threshold: 5\ncatchup_timeout: 1m\ndelete_batch_rows: 100\nlock_timeout: 2s\nreplica_wait: 5s\nprogress_interval: 100ms", nil},
		{"bad", "batch_rows: -1\ncopy_from: standby\nparallel: 1000\nlock_timeout: -1s", []string{
			`reshard.yaml:1: batch_rows: must be in 1..10000000, got -1`,
			`reshard.yaml:2: copy_from: "standby" is not one of replica, primary`,
			`reshard.yaml:3: parallel: must be in 1..256, got 1000`,
			`reshard.yaml:4: lock_timeout: must not be negative, got -1s`,
		}},
		{"unknown key", "batch_size: 10", []string{"batch_size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := config.Parse("reshard.yaml", []byte(tc.yaml), &c, func(string) (string, bool) { return "", false })
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if c.BatchRows == 0 || c.DeleteBatchRows == 0 || c.CopyFrom == "" || c.ProgressInterval == 0 {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	var c Config
	c.SetDefaults()
	if c.BatchRows != DefaultBatchRows || c.DeleteBatchRows != DefaultBatchRows || c.CopyFrom != CopyFromReplica {
		t.Errorf("defaults %+v", c)
	}
}

func TestQuoting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{quoteIdent(`we"ird`), `"we""ird"`},
		{quoteTable("public.users"), `"public"."users"`},
		{quoteTable("Users"), `"Users"`},
		{must(quoteLiteral(`it's \ fine`)), `'it''s \ fine'`},
		{must(keyLiteral(shardmap.UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")), `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid`},
		{must(keyArray(shardmap.Text, []string{"a", "b'c"})), `ARRAY['a','b''c']::text[]`},
		{must(rangeWhere(&TablePlan{Column: "k", Type: shardmap.Bigint}, ptr("5"), nil, "k > 0")), ` WHERE "k" IS NOT NULL AND "k" > '5'::bigint AND (k > 0)`},
		{keyText(shardmap.Int64Key(-3)), "-3"},
		{keyText(shardmap.TextKey("x y")), "x y"},
		{keyText(shardmap.UUIDKey([16]byte{15: 1})), "00000000-0000-0000-0000-000000000001"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	if _, err := quoteLiteral("nul\x00"); !errors.Is(err, ErrBackend) {
		t.Errorf("NUL literal: %v", err)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestFileStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	fs := &FileStore{Path: path}
	if s, err := fs.Load(ctx); s != nil || err != nil {
		t.Fatalf("missing file: %v, %v", s, err)
	}
	st := &State{Plan: "abc", Phase: PhaseCatchup, Sources: map[string]*SourceState{"t|s0": {CopyLast: ptr("42"), Scanned: 7}}}
	if err := fs.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load(ctx)
	if err != nil || got.Plan != "abc" || got.Phase != PhaseCatchup || *got.Sources["t|s0"].CopyLast != "42" {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Load(ctx); !errors.Is(err, ErrState) {
		t.Errorf("corrupt file: %v", err)
	}
	if err := fs.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(); err != nil {
		t.Fatal(err)
	}

	var ms MemStore
	if err := ms.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.Sources["t|s0"].Scanned = 99 // the store keeps its own copy
	if got, _ := ms.Load(ctx); got.Sources["t|s0"].Scanned != 7 {
		t.Error("MemStore shares the caller's state")
	}
}

func TestNewRejectsOtherJobsState(t *testing.T) {
	ctx := context.Background()
	oldMap := mustMap(t, hashMap(1, "s0, s1"))
	nodes := map[string]Node{"s0": {Primary: "postgres://x"}, "s1": {Primary: "postgres://x"}, "s2": {Primary: "postgres://x"}, "s3": {Primary: "postgres://x"}}
	store := &MemStore{}
	if _, err := New(ctx, Options{Old: oldMap, New: mustMap(t, hashMap(2, "s0, s1, s2")), Nodes: nodes, Store: store}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Options{Old: oldMap, New: mustMap(t, hashMap(2, "s0, s1, s2")), Nodes: nodes, Store: store}); err != nil {
		t.Errorf("same job: %v", err)
	}
	if _, err := New(ctx, Options{Old: oldMap, New: mustMap(t, hashMap(2, "s0, s1, s3")), Nodes: nodes, Store: store}); !errors.Is(err, ErrState) {
		t.Errorf("other job: %v", err)
	}
	if _, err := New(ctx, Options{Old: oldMap, New: mustMap(t, hashMap(2, "s0, s1, s2")), Nodes: map[string]Node{"s0": {Primary: "x"}}}); err == nil || !strings.Contains(err.Error(), "s1 s2") {
		t.Errorf("missing nodes: %v", err)
	}
	r, err := New(ctx, Options{Old: oldMap, New: mustMap(t, hashMap(2, "s0, s1, s2")), Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	// Steps out of order fail with ErrState before touching a database.
	if err := r.CatchUp(ctx); !errors.Is(err, ErrState) {
		t.Errorf("CatchUp before Copy: %v", err)
	}
	if err := r.Delete(ctx); !errors.Is(err, ErrState) {
		t.Errorf("Delete before Cutover: %v", err)
	}
	if err := r.Cutover(ctx, noop, noop); err == nil {
		t.Error("Cutover without Switch succeeded")
	}
	r.opts.Switch = func(context.Context) error { return nil }
	if err := r.Cutover(ctx, noop, noop); !errors.Is(err, ErrState) {
		t.Errorf("Cutover before Copy: %v", err)
	}
	// A plan where nothing moves is done at once.
	r, err = New(ctx, Options{Old: oldMap, New: mustMap(t, hashMap(2, "s0, s1")), Nodes: nodes})
	if err != nil || r.Phase() != PhaseDone {
		t.Fatalf("empty plan: %v, %v", r, err)
	}
	if err := Run(ctx, Options{Old: oldMap, New: mustMap(t, hashMap(3, "s0, s1")), Nodes: nodes}); err != nil {
		t.Errorf("Run of an empty plan: %v", err)
	}
}

func TestParallel(t *testing.T) {
	ctx := context.Background()
	var running, peak atomic.Int32
	err := parallel(ctx, 2, []int{1, 2, 3, 4, 5, 6}, func(ctx context.Context, i int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		return nil
	})
	if err != nil || peak.Load() > 2 {
		t.Errorf("err %v, peak %d", err, peak.Load())
	}
	boom := errors.New("boom")
	var after atomic.Int32
	err = parallel(ctx, 1, []int{1, 2, 3}, func(ctx context.Context, i int) error {
		if i == 1 {
			return boom
		}
		after.Add(1)
		return nil
	})
	if !errors.Is(err, boom) || after.Load() != 0 {
		t.Errorf("err %v, %d ran after the failure", err, after.Load())
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func TestTracker(t *testing.T) {
	ctx := context.Background()
	var clock fakeClock
	clock.Advance(time.Hour)
	var got []Progress
	oldMap, newMap := mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s2"))
	nodes := map[string]Node{"s0": {Primary: "x"}, "s1": {Primary: "x"}, "s2": {Primary: "x"}}
	r, err := New(ctx, Options{Old: oldMap, New: newMap, Nodes: nodes, Now: clock.Now,
		Config:   Config{ProgressInterval: time.Second},
		Progress: func(p Progress) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	tr := r.progress
	tr.startPhase(PhaseCopy)
	for _, k := range []string{"users|s0", "users|s1", "orders|s0", "orders|s1"} {
		tr.totals[k] = 1000
	}
	scan := func(key string, rows int64) {
		_ = r.update(ctx, func(s *State) {
			s.Sources[key].Scanned += rows
			s.Sources[key].Copied += rows / 3
			s.Sources[key].Bytes += rows * 100
		})
	}
	clock.Advance(2 * time.Second)
	scan("users|s0", 1000)
	scan("users|s1", 500)
	tr.report(false)
	tr.report(false) // within the interval: dropped
	if len(got) != 1 {
		t.Fatalf("%d reports", len(got))
	}
	p := got[0]
	if p.Rows != 1500 || p.Total != 4000 || p.Moved != 333+166 || p.Bytes != 150000 || p.Rate != 750 || p.ETA != 3*time.Second {
		t.Errorf("progress %+v", p)
	}
	users := p.Tables[1]
	if users.Table != "users" || users.Rows != 1500 || users.Total != 2000 || users.ETA != time.Second {
		t.Errorf("users %+v", users)
	}
	if p.Percent() != 37.5 {
		t.Errorf("percent %v", p.Percent())
	}
	tr.finish("users|s1") // total shrinks to what was scanned
	tr.report(true)
	if u := got[len(got)-1].Tables[1]; u.Total != 1500 || u.ETA != 0 {
		t.Errorf("after finish: %+v", u)
	}
}

func TestBar(t *testing.T) {
	p := Progress{Phase: PhaseCopy, Rows: 42_000, Total: 100_000, Moved: 14_000, Bytes: 3 << 20, Rate: 21_000, ETA: 3 * time.Second, Elapsed: 2 * time.Second}
	var out bytes.Buffer
	b := NewBar(&out, true)
	b.Width = 10
	want := "copy    [####......]  42.0%  42,000/100,000 rows  14,000 moved  3.0 MiB  21,000 rows/s  ETA 3s"
	if got := b.Line(p); got != want {
		t.Errorf("line\n%q, want\n%q", got, want)
	}
	b.Update(p)
	b.Update(Progress{Phase: PhaseCatchup, Replayed: 1234, Backlog: 5})
	b.Done()
	if got := out.String(); got != "\r"+want+"\x1b[K\n\rcatchup 1,234 changes applied, 5 waiting\x1b[K\n" {
		t.Errorf("tty output %q", got)
	}

	out.Reset()
	b = NewBar(&out, false)
	for _, e := range []time.Duration{0, time.Second, 11 * time.Second, 12 * time.Second} {
		p.Elapsed = e
		b.Update(p)
	}
	p.Phase, p.ETA = PhaseDelete, -1
	b.Update(p)
	b.Done()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "delete  ") || strings.Contains(lines[2], "ETA") || !strings.Contains(lines[2], "deleted") {
		t.Errorf("plain output:\n%s", out.String())
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {-1234567, "-1,234,567"}} {
		if got := count(tc.n); got != tc.want {
			t.Errorf("count(%d) = %s", tc.n, got)
		}
	}
	if got := size(1536); got != "1.5 KiB" {
		t.Errorf("size = %s", got)
	}
}

func BenchmarkBarLine(b *testing.B) {
	bar := NewBar(&bytes.Buffer{}, true)
	p := Progress{Phase: PhaseCopy, Rows: 42_000, Total: 100_000, Moved: 14_000, Bytes: 3 << 20, Rate: 21_000, ETA: 3 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		_ = bar.Line(p)
	}
}

// BenchmarkRoute is the per-row work of a hash copy besides I/O: decode
// the binary key and decide whether and where it moves.
func BenchmarkRoute(b *testing.B) {
	p, err := NewPlan(mustMap(b, hashMap(1, "s0, s1")), mustMap(b, hashMap(2, "s0, s1, s2")))
	if err != nil {
		b.Fatal(err)
	}
	tp := p.Tables[0]
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = int8Field(int64(i * 7919))
	}
	b.ReportAllocs()
	moved := 0
	i := 0
	for b.Loop() {
		k, err := tp.Type.DecodeBinary(keys[i&1023])
		if err != nil {
			b.Fatal(err)
		}
		if _, _, m := tp.route(k); m {
			moved++
		}
		i++
	}
}

// BenchmarkCopyFilter is the copy's per-row CPU work between the source's
// COPY stream and the target buffers: parse the tuple, decode and route
// the key, append the moving rows (a third of them) to their buffer.
func BenchmarkCopyFilter(b *testing.B) {
	p, err := NewPlan(mustMap(b, hashMap(1, "s0, s1")), mustMap(b, hashMap(2, "s0, s1, s2")))
	if err != nil {
		b.Fatal(err)
	}
	tp := p.Tables[1] // users
	// The rows shard s0 holds under the old map.
	var chunks [][]byte
	chunks = append(chunks, copyHeader)
	rows := 0
	for id := int64(1); rows < 1000; id++ {
		if from, _, _ := tp.route(shardmap.Int64Key(id)); from != 0 {
			continue
		}
		chunks = append(chunks, encodeTuple([][]byte{int8Field(id), bytes.Repeat([]byte("x"), 40), nil}))
		rows++
	}
	chunks = append(chunks, copyTrailer)
	bt := &batch{tp: tp, srcIdx: 0, keyIdx: 0, bufs: map[int]*copyBuffer{}}
	b.ReportAllocs()
	for b.Loop() {
		for _, buf := range bt.bufs {
			buf.reset()
		}
		s := newScanner(false, bt.route)
		for _, c := range chunks {
			if _, err := s.Write(c); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
	b.ReportMetric(float64(bt.bufs[2].rows)/float64(rows), "moved/row")
}
