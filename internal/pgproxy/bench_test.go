package pgproxy

import (
	"context"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// benchProxy runs a Server in front of a fake server and returns a client
// connection through it, and one straight to the fake server.
func benchProxy(b *testing.B) (proxied, direct *pgconn.PgConn) {
	fake := newFakePG(b)
	cfg := fakeConfig(fake.addr())
	srv, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
	dial := func(addr string) *pgconn.PgConn {
		c, err := pgconn.Connect(context.Background(), "postgres://fuzz@"+addr+"/app?sslmode=disable")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	return dial(ln.Addr().String()), dial(fake.addr())
}

// BenchmarkSimpleQuery is one simple-protocol query per op: through the
// proxy (checkout, relay, release) and straight to the same fake server.
func BenchmarkSimpleQuery(b *testing.B) {
	proxied, direct := benchProxy(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		conn *pgconn.PgConn
	}{{"proxy", proxied}, {"direct", direct}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrepared is Bind/Execute/Sync of a named statement per op
// (pgbench -M prepared), through the proxy and direct.
func BenchmarkPrepared(b *testing.B) {
	proxied, direct := benchProxy(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		conn *pgconn.PgConn
	}{{"proxy", proxied}, {"direct", direct}} {
		b.Run(tc.name, func(b *testing.B) {
			if _, err := tc.conn.Prepare(ctx, "s1", "SELECT $1::int", nil); err != nil {
				b.Fatal(err)
			}
			args := [][]byte{[]byte("1")}
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.conn.ExecPrepared(ctx, "s1", args, nil, nil).Read().Err; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
