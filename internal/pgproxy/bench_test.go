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
	return benchProxyWith(b, nil)
}

// benchProxyWith is benchProxy with a config change.
func benchProxyWith(b *testing.B, mutate func(*Config)) (proxied, direct *pgconn.PgConn) {
	fake := newFakePG(b)
	cfg := fakeConfig(fake.addr())
	if mutate != nil {
		mutate(cfg)
		cfg.SetDefaults()
	}
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

// BenchmarkQueryCache is one simple-protocol query per op through the
// proxy: with the query cache off, on but not applying to the statement
// (the lookup's cost on every cacheable read), and answering from the
// cache.
func BenchmarkQueryCache(b *testing.B) {
	off := false
	ctx := context.Background()
	for _, tc := range []struct {
		name, sql string
		mutate    func(*Config)
	}{
		{"cache-off", "SELECT 1", func(c *Config) { c.QueryCache.Enabled = &off }},
		{"cache-on-not-cached", "SELECT 1", nil},
		{"cache-hit", "/* tiergate: cache ttl=1h */ SELECT 1", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			proxied, _ := benchProxyWith(b, tc.mutate)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := proxied.Exec(ctx, tc.sql).ReadAll(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
