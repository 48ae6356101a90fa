package reshard

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/shardmap"
)

const usersSchema = `
CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, balance numeric(12,2), created timestamptz, tags text[], note text);
CREATE TABLE orders (user_id bigint NOT NULL, order_id int NOT NULL, amount float8, PRIMARY KEY (user_id, order_id));
CREATE TABLE countries (code text PRIMARY KEY, name text);`

func hashMap(version int, shards string) string {
	return fmt.Sprintf(`
version: %d
shards: [%s]
key_spaces:
  - {name: users, type: bigint, function: hash, partitions: 256}
tables:
  - {table: users, column: id, key_space: users}
  - {table: orders, column: user_id, key_space: users}
reference_tables: [countries]
`, version, shards)
}

// load inserts users 1..n (and 3 orders for every 10th user) on the shard
// m places them on, and the countries on every shard of m.
func (e *env) load(ctx context.Context, m *shardmap.Map, n int) {
	e.t.Helper()
	users := map[string][][]any{}
	orders := map[string][][]any{}
	tbl, _ := m.Table("users")
	base := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for id := int64(1); id <= int64(n); id++ {
		s, err := tbl.ShardFor(shardmap.Int64Key(id))
		if err != nil {
			e.t.Fatal(err)
		}
		name := m.ShardName(s)
		var note any
		if id%7 != 0 {
			note = fmt.Sprintf("note %d with\ttab, 'quote' and \\ backslash", id)
		}
		users[name] = append(users[name], []any{id, fmt.Sprintf("user-%d", id), fmt.Sprintf("%d.%02d", id%10000, id%100),
			base.Add(time.Duration(id) * time.Second), []string{"a", fmt.Sprint(id % 5)}, note})
		if id%10 == 0 {
			for o := int32(1); o <= 3; o++ {
				orders[name] = append(orders[name], []any{id, o, float64(id) / 3})
			}
		}
	}
	for name, rows := range users {
		c := e.shard(name)
		if _, err := c.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "name", "balance", "created", "tags", "note"}, pgx.CopyFromRows(rows)); err != nil {
			e.t.Fatal(err)
		}
		if _, err := c.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"user_id", "order_id", "amount"}, pgx.CopyFromRows(orders[name])); err != nil {
			e.t.Fatal(err)
		}
	}
	for i := 0; i < m.Shards(); i++ {
		c := e.shard(m.ShardName(i))
		if _, err := c.Exec(ctx, `INSERT INTO countries SELECT 'c' || g, 'Country ' || g FROM generate_series(1, 50) g`); err != nil {
			e.t.Fatal(err)
		}
	}
}

// switcher records map switches.
type switcher struct {
	n    atomic.Int32
	fail atomic.Int32 // fail this many calls first
}

func (s *switcher) Switch(context.Context) error {
	if s.fail.Add(-1) >= 0 {
		return errors.New("proxy reload failed")
	}
	s.n.Add(1)
	return nil
}

func noop() {}

// captureLeft reports whether the capture schema exists on any shard.
func (e *env) captureLeft(ctx context.Context) bool {
	e.t.Helper()
	for _, c := range e.direct {
		var ok bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, captureSchema).Scan(&ok); err != nil {
			e.t.Fatal(err)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestReshardHash2To3(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	e.exec(ctx, usersSchema)
	oldMap, newMap := mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s2"))
	const n = 100_000
	e.load(ctx, oldMap, n)
	wantUsers := union(t, e.rowsOf(ctx, "users", "id", "id"))
	wantOrders := union(t, e.rowsOf(ctx, "orders", "user_id", "user_id, order_id"))
	if len(wantUsers) != n {
		t.Fatalf("loaded %d users", len(wantUsers))
	}

	// bypass is a user that moves s1 → s2; the switch callback updates it
	// on s1 directly, as a client bypassing the proxies' pause would.
	d := shardmap.Diff(oldMap, newMap)
	bypass := int64(1)
	for ; ; bypass++ {
		if from, to, moved := d.Moves("users", shardmap.Int64Key(bypass)); moved && from == 1 && to == 2 {
			break
		}
	}
	var sw switcher
	var last Progress
	var reports int
	var copyTime, paused time.Duration
	var pausedAt time.Time
	opts := Options{
		Old: oldMap, New: newMap, Nodes: e.nodes,
		Store: &FileStore{Path: filepath.Join(t.TempDir(), "state.json")},
		Switch: func(ctx context.Context) error {
			if _, err := e.shard("s1").Exec(ctx, `UPDATE users SET name = 'bypass' WHERE id = $1`, bypass); err != nil {
				return err
			}
			return sw.Switch(ctx)
		},
		Pause:   func() { pausedAt = time.Now() },
		Resume:  func() { paused = time.Since(pausedAt) },
		Cutover: true,
		Progress: func(p Progress) {
			reports++
			if p.Phase == PhaseCopy {
				last = p
				copyTime = p.Elapsed
			}
		},
	}
	start := time.Now()
	if err := Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	if sw.n.Load() != 1 {
		t.Errorf("switched %d times", sw.n.Load())
	}
	var row string
	if err := e.shard("s2").QueryRow(ctx, `SELECT t::text FROM users t WHERE id = $1 AND name = 'bypass'`, bypass).Scan(&row); err != nil {
		t.Fatalf("the write that bypassed the pause is not on s2: %v", err)
	}
	wantUsers[fmt.Sprint(bypass)] = []string{row}
	checkPlacement(t, newMap, "users", wantUsers, e.rowsOf(ctx, "users", "id", "id"))
	checkPlacement(t, newMap, "orders", wantOrders, e.rowsOf(ctx, "orders", "user_id", "user_id, order_id"))
	refs := e.rowsOf(ctx, "countries", "code", "code")
	if len(refs["s2"]) != 50 || fmt.Sprint(refs["s2"]) != fmt.Sprint(refs["s0"]) {
		t.Errorf("countries on s2 = %d rows, want s0's 50", len(refs["s2"]))
	}
	if e.captureLeft(ctx) {
		t.Error("change capture left installed")
	}
	movedUsers := 0
	for id := int64(1); id <= n; id++ {
		if _, _, m := d.Moves("users", shardmap.Int64Key(id)); m {
			movedUsers++
		}
	}
	var up TableProgress
	for _, tp := range last.Tables {
		if tp.Table == "users" {
			up = tp
		}
	}
	if up.Rows != n || up.Total != n || up.Moved != int64(movedUsers) || !up.Done {
		t.Errorf("last users progress = %+v, want %d rows scanned, %d moved", up, n, movedUsers)
	}
	t.Logf("100k users + %d orders: %d moving users; copy phase %v (%.0f source rows/s, %.0f moved rows/s), writes paused %v, whole job %v, %d progress reports",
		len(wantOrders)*3, movedUsers, copyTime, float64(last.Rows)/copyTime.Seconds(), float64(last.Moved)/copyTime.Seconds(), paused, total, reports)
}
