package reshard

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiergate/tiergate/shardmap"
)

const moduloOld = `
version: 1
shards: [s0, s1]
tables:
  - {table: events, column: k, function: modulo}
  - table: accounts
    column: region
    type: text
    function: list
    list:
      - {values: [us, ca], shard: s0}
      - {values: [de, fr, "it's", 'x\y'], shard: s1}
`

const moduloNew = `
version: 2
shards: [s0, s1, s2]
tables:
  - {table: events, column: k, function: modulo}
  - table: accounts
    column: region
    type: text
    function: list
    list:
      - {values: [us], shard: s0}
      - {values: [de], shard: s1}
      - {values: [ca, fr, "it's", 'x\y'], shard: s2}
`

// TestReshardModulo moves a modulo table (negative keys included, the
// predicate pushed down to SQL) and a list table with text keys that need
// quoting, 2 → 3 shards, copying from the primaries.
func TestReshardModulo(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 2*time.Minute)
	// s2 creates a type first, so the user types below get other OIDs
	// there than on s0 and s1: their binary arrays and composites would
	// not load, and the table is copied in the text format.
	if _, err := e.shard("s2").Exec(ctx, `CREATE TYPE filler AS (x int)`); err != nil {
		t.Fatal(err)
	}
	e.exec(ctx,
		`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
		`CREATE TYPE pt AS (x int, y text)`,
		`CREATE TABLE events (k bigint NOT NULL, seq int NOT NULL, payload jsonb, at date, moods mood[], p pt, PRIMARY KEY (k, seq))`,
		`CREATE TABLE accounts (region text NOT NULL, id int NOT NULL, owner uuid, PRIMARY KEY (region, id))`)
	oldMap, newMap := mustMap(t, moduloOld), mustMap(t, moduloNew)
	for i := 0; i < 2; i++ {
		if _, err := e.direct[i].Exec(ctx, fmt.Sprintf(`
			INSERT INTO events SELECT k, s, jsonb_build_object('k', k, 's', s), date '2024-01-01' + (k %% 300)::int,
				ARRAY['ok', (ARRAY['sad','happy'])[1 + abs(k) %% 2]]::mood[], ROW(k::int, E'tab\there ' || s)::pt
			FROM generate_series(-2500, 2500) k, generate_series(1, 2) s WHERE ((k %% 2) + 2) %% 2 = %d`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.shard("s0").Exec(ctx, `INSERT INTO accounts SELECT r, g, md5(r || g)::uuid FROM unnest(ARRAY['us','ca']) r, generate_series(1, 300) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.shard("s1").Exec(ctx, `INSERT INTO accounts SELECT r, g, md5(r || g)::uuid FROM unnest(ARRAY['de','fr','it''s','x\y']) r, generate_series(1, 300) g`); err != nil {
		t.Fatal(err)
	}
	wantEvents := union(t, e.rowsOf(ctx, "events", "k", "k, seq"))
	wantAccounts := union(t, e.rowsOf(ctx, "accounts", "region", "region, id"))

	var sw switcher
	r, err := New(ctx, Options{Old: oldMap, New: newMap, Nodes: e.nodes, Config: Config{BatchRows: 700, CopyFrom: CopyFromPrimary}, Switch: sw.Switch})
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	w := bytesWriter{&b}
	if err := r.Plan().Describe(w); err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%s", b)
	for _, tp := range r.Plan().Tables {
		if tp.Name == "events" && (len(tp.Sources) != 2 || tp.Sources[0].Predicate == "" || tp.TargetPredicate["s2"] == "") {
			t.Errorf("events plan = %+v, want predicates on both sources", tp)
		}
	}
	if err := r.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.text["events"] || r.text["accounts"] {
		t.Errorf("text format: %v, want events only", r.text)
	}
	if err := r.Cutover(ctx, noop, noop); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	checkPlacement(t, newMap, "events", wantEvents, e.rowsOf(ctx, "events", "k", "k, seq"))
	checkPlacement(t, newMap, "accounts", wantAccounts, e.rowsOf(ctx, "accounts", "region", "region, id"))
	st := r.State()
	if st.Phase != PhaseDone || len(st.Verified) == 0 {
		t.Errorf("state = %s, %d verified sets", st.Phase, len(st.Verified))
	}
	for _, v := range st.Verified {
		t.Logf("verified %s %s→%s: %d rows", v.Table, v.From, v.To, v.Sum.Rows)
	}
}

type bytesWriter struct{ b *[]byte }

func (w bytesWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// flakyStore fails the n-th Save (after the database change it records
// was committed), like a crash between the two.
type flakyStore struct {
	Store
	saves, failAt atomic.Int32
}

var errCrash = errors.New("simulated crash")

func (f *flakyStore) Save(ctx context.Context, s *State) error {
	if f.saves.Add(1) == f.failAt.Load() {
		return errCrash
	}
	return f.Store.Save(ctx, s)
}

// TestReshardResume interrupts a job three ways and re-runs it each time:
// a context cancelled mid-copy, a checkpoint lost after its batch
// committed (the batch is copied again), and a failed switch at cutover.
// The end state has every row once, on its new shard.
func TestReshardResume(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	e.exec(ctx, usersSchema)
	oldMap, newMap := mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s2"))
	const n = 30_000
	e.load(ctx, oldMap, n)
	wantUsers := union(t, e.rowsOf(ctx, "users", "id", "id"))
	wantOrders := union(t, e.rowsOf(ctx, "orders", "user_id", "user_id, order_id"))

	file := &FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
	var sw switcher
	sw.fail.Store(1)
	opts := Options{
		Old: oldMap, New: newMap, Nodes: e.nodes, Store: file,
		Config: Config{BatchRows: 1000, Parallel: 1, ProgressInterval: time.Nanosecond},
		Switch: sw.Switch, Pause: noop, Resume: noop, Cutover: true,
	}

	// 1. Cancel once 8000 rows were scanned.
	cctx, cancel := context.WithCancel(ctx)
	opts.Progress = func(p Progress) {
		if p.Rows >= 8000 {
			cancel()
		}
	}
	if err := Run(cctx, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	st, err := file.Load(ctx)
	if err != nil || st == nil {
		t.Fatalf("state after cancel: %v, %v", st, err)
	}
	if st.Phase != PhaseCopy {
		t.Fatalf("phase after cancel = %s", st.Phase)
	}
	var scanned int64
	for _, ss := range st.Sources {
		scanned += ss.Scanned
	}
	if scanned < 8000 || scanned >= 2*n {
		t.Fatalf("scanned %d rows before the cancel", scanned)
	}

	// 2. Lose the checkpoint of the next committed batch.
	opts.Progress = nil
	flaky := &flakyStore{Store: file}
	flaky.failAt.Store(2)
	opts.Store = flaky
	if err := Run(ctx, opts); !errors.Is(err, errCrash) {
		t.Fatalf("crashed run: %v", err)
	}

	// 3. The switch fails: the job stays in cutover, verified.
	opts.Store = file
	if err := Run(ctx, opts); err == nil || sw.n.Load() != 0 {
		t.Fatalf("run with failing switch: %v (switched %d)", err, sw.n.Load())
	}
	if st, _ := file.Load(ctx); st.Phase != PhaseCutover || len(st.Verified) == 0 {
		t.Fatalf("after the failed switch: phase %s, %d verified", st.Phase, len(st.Verified))
	}
	// Moved rows are still on the old shards: nothing is deleted before
	// the switch.
	var left int64
	for _, s := range []string{"s0", "s1"} {
		var c int64
		if err := e.shard(s).QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		left += c
	}
	if left != n {
		t.Fatalf("old shards hold %d users before the switch, want %d", left, n)
	}

	// 4. Finish.
	if err := Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if sw.n.Load() != 1 {
		t.Errorf("switched %d times", sw.n.Load())
	}
	checkPlacement(t, newMap, "users", wantUsers, e.rowsOf(ctx, "users", "id", "id"))
	checkPlacement(t, newMap, "orders", wantOrders, e.rowsOf(ctx, "orders", "user_id", "user_id, order_id"))
	if st, _ := file.Load(ctx); st.Phase != PhaseDone {
		t.Errorf("final phase %s", st.Phase)
	}
	// A finished job is a no-op when run again.
	if err := Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
}

// TestReshardVerifyCatchesTamper deletes one copied row, then changes
// another, on the target before the cutover: verification fails, nothing
// is switched or deleted; Abort then removes the copies and the capture.
func TestReshardVerifyCatchesTamper(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 2*time.Minute)
	e.exec(ctx, usersSchema)
	oldMap, newMap := mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s2"))
	const n = 5000
	e.load(ctx, oldMap, n)
	var sw switcher
	r, err := New(ctx, Options{Old: oldMap, New: newMap, Nodes: e.nodes, Switch: sw.Switch})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(shard, table string) int64 {
		var c int64
		if err := e.shard(shard).QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	onS2 := count("s2", "users")
	if onS2 == 0 {
		t.Fatal("nothing copied to s2")
	}
	// The tampered row is one that moved from s1; restore puts its
	// original back after each case.
	var id int64
	var orig string
	if err := e.shard("s2").QueryRow(ctx, `SELECT id, t::text FROM users t ORDER BY id LIMIT 1`).Scan(&id, &orig); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		t.Helper()
		if _, err := e.shard("s2").Exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if _, err := e.shard("s2").Exec(ctx, `INSERT INTO users SELECT ($1::text::users).*`, orig); err != nil {
			t.Fatal(err)
		}
	}
	// extra is a key that is not in the table and would move s1 → s2.
	d := shardmap.Diff(oldMap, newMap)
	extra := int64(n + 1)
	for ; ; extra++ {
		if from, to, moved := d.Moves("users", shardmap.Int64Key(extra)); moved && from == 1 && to == 2 {
			break
		}
	}
	tamper := []struct {
		name, sql string
	}{
		{"deleted row", `DELETE FROM users WHERE id = $1`},
		{"changed row", `UPDATE users SET note = 'tampered' WHERE id = $1`},
		{"extra row", fmt.Sprintf(`INSERT INTO users SELECT %d, name, balance, created, tags, note FROM users WHERE id = $1`, extra)},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			defer restore()
			if _, err := e.shard("s2").Exec(ctx, tc.sql, id); err != nil {
				t.Fatal(err)
			}
			paused := 0
			err := r.Cutover(ctx, func() { paused++ }, func() { paused-- })
			var ve *VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, ErrVerify) || len(ve.Mismatches) != 1 {
				t.Fatalf("Cutover = %v, want one mismatch", err)
			}
			m := ve.Mismatches[0]
			if m.Table != "users" || m.To != "s2" {
				t.Errorf("mismatch %v", m)
			}
			t.Log(err)
			if paused != 0 || sw.n.Load() != 0 || r.Phase() != PhaseCatchup {
				t.Errorf("after the failed cutover: paused %d, switched %d, phase %s", paused, sw.n.Load(), r.Phase())
			}
			if got := count("s0", "users") + count("s1", "users"); got != n {
				t.Errorf("sources hold %d users, want %d", got, n)
			}
			if err := r.Delete(ctx); !errors.Is(err, ErrState) {
				t.Errorf("Delete before the cutover = %v, want ErrState", err)
			}
		})
	}
	if err := r.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if c := count("s2", "users") + count("s2", "orders") + count("s2", "countries"); c != 0 {
		t.Errorf("s2 holds %d rows after Abort", c)
	}
	if got := count("s0", "users") + count("s1", "users"); got != n {
		t.Errorf("sources hold %d users after Abort, want %d", got, n)
	}
	if e.captureLeft(ctx) {
		t.Error("capture left after Abort")
	}
	if r.Phase() != PhaseCopy {
		t.Errorf("phase after Abort = %s", r.Phase())
	}
	// The aborted job starts over and finishes.
	if err := r.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Cutover(ctx, noop, noop); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if c := count("s2", "users"); c != onS2 {
		t.Errorf("s2 holds %d users after the second run, want %d", c, onS2)
	}
}
