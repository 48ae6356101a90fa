package reshard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tiergate/tiergate/shardmap"
)

// fakeProxy routes single-key writes by the current map, the way dbproxy
// does, and can pause them: writers hold the read lock per statement,
// Pause takes the write lock (waiting for statements in flight).
type fakeProxy struct {
	e      *env
	gate   sync.RWMutex
	m      atomic.Pointer[shardmap.Map]
	paused atomic.Bool
}

func (p *fakeProxy) Pause()  { p.gate.Lock(); p.paused.Store(true) }
func (p *fakeProxy) Resume() { p.paused.Store(false); p.gate.Unlock() }

// writer owns the user ids ≡ w (mod writers) and mirrors their expected
// names.
type writer struct {
	p      *fakeProxy
	w, of  int
	conns  map[string]*pgx.Conn
	want   map[int64]string // id → name; absent = deleted
	nextID int64
	ops    [3]int // inserts, updates, deletes
	rng    *rand.Rand
}

func (wr *writer) conn(ctx context.Context, shard string) (*pgx.Conn, error) {
	if c := wr.conns[shard]; c != nil {
		return c, nil
	}
	c, err := pgx.Connect(ctx, wr.p.e.nodes[shard].Primary)
	if err != nil {
		return nil, err
	}
	wr.conns[shard] = c
	return c, nil
}

func (wr *writer) close() {
	for _, c := range wr.conns {
		closeConn(c)
	}
}

// refWrite inserts a country on every shard of the current map, as the
// proxy does for a reference table.
func (wr *writer) refWrite(ctx context.Context, seq int) error {
	wr.p.gate.RLock()
	defer wr.p.gate.RUnlock()
	m := wr.p.m.Load()
	for i := 0; i < m.Shards(); i++ {
		c, err := wr.conn(ctx, m.ShardName(i))
		if err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `INSERT INTO countries VALUES ($1, 'written during the job')`, fmt.Sprintf("w%d-%d", wr.w, seq)); err != nil {
			return err
		}
	}
	return nil
}

// step runs one random insert, update or delete of an owned key through
// the proxy, and every 50th time a reference table write.
func (wr *writer) step(ctx context.Context, seq int) error {
	if seq%50 == 49 {
		return wr.refWrite(ctx, seq)
	}
	var id int64
	var q string
	var args []any
	op := wr.rng.IntN(3)
	existing := make([]int64, 0, 1)
	if op != 0 {
		// pick an existing key
		for k := range wr.want {
			existing = append(existing, k)
			break
		}
		if len(existing) == 0 {
			op = 0
		}
	}
	switch op {
	case 0:
		id = wr.nextID
		wr.nextID += int64(wr.of)
		name := fmt.Sprintf("ins-%d-%d", wr.w, seq)
		q, args = `INSERT INTO users (id, name) VALUES ($1, $2)`, []any{id, name}
		wr.want[id] = name
	case 1:
		id = existing[0]
		name := fmt.Sprintf("upd-%d-%d", wr.w, seq)
		q, args = `UPDATE users SET name = $2 WHERE id = $1`, []any{id, name}
		wr.want[id] = name
	case 2:
		id = existing[0]
		q, args = `DELETE FROM users WHERE id = $1`, []any{id}
		delete(wr.want, id)
	}
	wr.ops[op]++
	wr.p.gate.RLock()
	defer wr.p.gate.RUnlock()
	m := wr.p.m.Load()
	s, err := m.ShardFor("users", shardmap.Int64Key(id))
	if err != nil {
		return err
	}
	c, err := wr.conn(ctx, m.ShardName(s))
	if err != nil {
		return err
	}
	tag, err := c.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s id %d on %s: %w", q, id, m.ShardName(s), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%s id %d on %s: %d rows", q, id, m.ShardName(s), tag.RowsAffected())
	}
	return nil
}

// TestReshardOnlineWrites runs inserts, updates and deletes through a
// proxy during the copy, the catch-up and after the cutover; every one is
// reflected at the end, on the shard the new map names.
func TestReshardOnlineWrites(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	e.exec(ctx, usersSchema)
	oldMap, newMap := mustMap(t, hashMap(1, "s0, s1")), mustMap(t, hashMap(2, "s0, s1, s2"))
	const n, writers = 20_000, 3
	e.load(ctx, oldMap, n)
	initial := union(t, e.rowsOf(ctx, "users", "id", "id"))

	p := &fakeProxy{e: e}
	p.m.Store(oldMap)
	ws := make([]*writer, writers)
	for w := range ws {
		ws[w] = &writer{p: p, w: w, of: writers, conns: map[string]*pgx.Conn{}, want: map[int64]string{},
			nextID: int64(1_000_000 + w), rng: rand.New(rand.NewPCG(uint64(w), 7))}
		for id := int64(w + 1); id <= n; id += writers {
			ws[w].want[id] = fmt.Sprintf("user-%d", id)
		}
	}
	_ = initial

	// Writers run until told to stop; afterSwitch counts their statements
	// once the new map is live.
	stop := make(chan struct{})
	var afterSwitch atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for _, wr := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer wr.close()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := wr.step(ctx, seq); err != nil {
					errs <- err
					return
				}
				if p.m.Load() == newMap {
					afterSwitch.Add(1)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	var sw switcher
	r, err := New(ctx, Options{
		Old: oldMap, New: newMap, Nodes: e.nodes,
		Config: Config{BatchRows: 2000, CatchupThreshold: 50},
		Switch: func(ctx context.Context) error {
			p.m.Store(newMap)
			return sw.Switch(ctx)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	var pausedAt time.Time
	var paused time.Duration
	pause := func() { p.Pause(); pausedAt = time.Now() }
	resume := func() { paused = time.Since(pausedAt); p.Resume() }
	if err := r.Cutover(ctx, pause, resume); err != nil {
		t.Fatal(err)
	}
	// Let the writers run on the new map before deleting.
	deadline := time.Now().Add(30 * time.Second)
	for afterSwitch.Load() < 200 && time.Now().Before(deadline) {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := r.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	want := map[string][]string{}
	var ops [3]int
	for _, wr := range ws {
		for id, name := range wr.want {
			want[fmt.Sprint(id)] = []string{name}
		}
		for i := range ops {
			ops[i] += wr.ops[i]
		}
	}
	got := e.valuesOf(ctx, "users", "id", "name", "id")
	checkPlacement(t, newMap, "users", want, got)
	refs := e.rowsOf(ctx, "countries", "code", "code")
	if len(refs["s0"]) <= 50 || fmt.Sprint(refs["s2"]) != fmt.Sprint(refs["s0"]) || fmt.Sprint(refs["s1"]) != fmt.Sprint(refs["s0"]) {
		t.Errorf("countries: s0 %d rows, s1 %d, s2 %d; want equal, with the ones written during the job", len(refs["s0"]), len(refs["s1"]), len(refs["s2"]))
	}
	t.Logf("%d inserts, %d updates, %d deletes during the job (%d after the switch); %d users at the end; writes paused %v",
		ops[0], ops[1], ops[2], afterSwitch.Load(), len(want), paused)
	if ops[0] == 0 || ops[1] == 0 || ops[2] == 0 {
		t.Error("the writers did not exercise every operation")
	}
}
