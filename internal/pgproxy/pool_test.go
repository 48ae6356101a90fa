package pgproxy

import (
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

func newTestPool(t *testing.T, cfg PoolConfig) *pool {
	t.Helper()
	fake := newFakePG(t)
	cfg.SetDefaults()
	var ids atomic.Uint64
	p := newPool(newNode("app", fake.addr(), rolePrimary), "fuzz", "app", "fuzz", "", cfg, 1<<20, &ids)
	t.Cleanup(p.close)
	return p
}

func TestPoolMaintain(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		cfg       PoolConfig
		lend      int
		age       time.Duration // how long ago the lent connections were last used
		wantIdle  int
		wantTotal int
	}{
		{"min idle opens connections", PoolConfig{Size: 4, MinIdle: 2}, 0, 0, 2, 2},
		{"idle timeout closes above min idle", PoolConfig{Size: 4, MinIdle: 1, ServerIdleTimeout: time.Minute}, 3, 2 * time.Minute, 1, 1},
		{"fresh idle connections stay", PoolConfig{Size: 4, ServerIdleTimeout: time.Minute}, 3, 0, 3, 3},
		{"lifetime closes old connections", PoolConfig{Size: 4, ServerLifetime: time.Millisecond}, 2, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPool(t, tc.cfg)
			var lent []*serverConn
			for i := 0; i < tc.lend; i++ {
				sc, err := p.acquire(ctx, time.Now().Add(time.Second), nil)
				if err != nil {
					t.Fatal(err)
				}
				lent = append(lent, sc)
			}
			for _, sc := range lent {
				p.release(sc)
				sc.lastUsed.Store(time.Now().Add(-tc.age).UnixNano())
			}
			if tc.cfg.ServerLifetime > 0 {
				for _, sc := range lent {
					sc.created = time.Now().Add(-time.Hour)
				}
			}
			p.maintain(ctx)
			st := p.stats()
			if st.idle != tc.wantIdle || st.total != tc.wantTotal || st.active != 0 {
				t.Fatalf("idle %d total %d active %d, want idle %d total %d", st.idle, st.total, st.active, tc.wantIdle, tc.wantTotal)
			}
		})
	}
}

func TestPoolTimeoutAndReuse(t *testing.T) {
	ctx := context.Background()
	p := newTestPool(t, PoolConfig{Size: 1})
	a, err := p.acquire(ctx, time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.acquire(ctx, time.Now().Add(50*time.Millisecond), nil); err != ErrPoolTimeout {
		t.Fatalf("full pool: %v", err)
	}
	cancel := make(chan struct{}, 1)
	cancel <- struct{}{}
	if _, err := p.acquire(ctx, time.Now().Add(time.Minute), cancel); err != ErrCanceled {
		t.Fatalf("cancelled wait: %v", err)
	}
	done := make(chan *serverConn)
	go func() {
		b, _ := p.acquire(ctx, time.Now().Add(10*time.Second), nil)
		done <- b
	}()
	waitFor(t, ctxT(t, 10*time.Second), "a waiter", func() bool { return p.waiting.Load() == 1 })
	p.release(a)
	if b := <-done; b != a {
		t.Fatal("waiter did not get the released connection")
	}
	// A connection left in a transaction is closed, not reused.
	a.txStatus = 'T'
	p.release(a)
	if st := p.stats(); st.total != 0 || st.idle != 0 {
		t.Fatalf("after releasing a connection in a transaction: %+v", st)
	}
}

func TestMaxClientConn(t *testing.T) {
	fake := newFakePG(t)
	cfg := fakeConfig(fake.addr())
	cfg.MaxClientConn = 1
	p := startProxy(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	first, err := pgconn.Connect(ctx, "postgres://fuzz@"+p.addr+"/app?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close(ctx)
	_, err = pgconn.Connect(ctx, "postgres://fuzz@"+p.addr+"/app?sslmode=disable")
	if !isPgCode(err, "53300") {
		t.Fatalf("second client: %v", err)
	}
	if _, err := first.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}
}

// TestFlushAndErrorWithoutSync drives the extended protocol by hand against
// the fake server: Flush-terminated batches, an error before Sync (the
// session skips to the Sync like the server), then normal queries.
func TestFlushAndErrorWithoutSync(t *testing.T) {
	srv := newFuzzServer(t)
	login := startupBytes("user", "fuzz", "database", "app")
	in := cat(login,
		enc(&pgproto3.Parse{Name: "a", Query: "SELECT 1"}, &pgproto3.Describe{ObjectType: 'S', Name: "a"}, &pgproto3.Flush{}),
		enc(&pgproto3.Bind{PreparedStatement: "a"}, &pgproto3.Execute{}, &pgproto3.Sync{}),
		enc(&pgproto3.Parse{Query: "FAIL"}, &pgproto3.Flush{}),
		enc(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}),
		enc(&pgproto3.Query{String: "SELECT 1"}),
	)
	out := runClientBytes(t, srv, in)
	checkAnswer(t, in, out)
	got := summarize(out)
	want := "R S* K Z 1 t T 2 D C Z E Z T D C Z"
	if got != want {
		t.Fatalf("answers %q, want %q", got, want)
	}
}

// summarize lists the message types in a proxy answer, runs of
// ParameterStatus as "S*".
func summarize(out []byte) string {
	var types []string
	for len(out) >= 5 {
		typ := string(out[0])
		n := int(binary.BigEndian.Uint32(out[1:5]))
		out = out[1+n:]
		if typ == "S" && len(types) > 0 && types[len(types)-1] == "S*" {
			continue
		}
		if typ == "S" {
			typ = "S*"
		}
		types = append(types, typ)
	}
	return strings.Join(types, " ")
}

func TestNoFallbackToPrimary(t *testing.T) {
	fake := newFakePG(t)
	cfg := fakeConfig(fake.addr())
	cfg.Databases["app"] = DatabaseConfig{Primary: fake.addr(), Replicas: []string{"127.0.0.1:1"}, ServerDatabase: "app"}
	cfg.Routing.FallbackToPrimary = new(false)
	p := startProxy(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	conn, err := pgconn.Connect(ctx, "postgres://fuzz@"+p.addr+"/app?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The replica refuses connections: the read fails once it is known down.
	waitFor(t, ctx, "the dead replica to be seen", func() bool {
		_, err := conn.Exec(ctx, "SELECT 1").ReadAll()
		return isPgCode(err, "08006")
	})
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (1)").ReadAll(); err != nil {
		t.Fatalf("write: %v", err)
	}
}
