package sqlroute

import (
	"strconv"
	"testing"
)

// benchQueries are typical application statements of different sizes.
var benchQueries = []struct{ name, sql string }{
	{"short", "SELECT * FROM users WHERE id = 42"},
	{"medium", "SELECT u.id, u.name, o.total FROM public.users u JOIN orders o ON o.user_id = u.id WHERE u.email = 'alice@example.com' AND o.created_at > '2024-01-01' ORDER BY o.created_at DESC LIMIT 50"},
	{"insert", "INSERT INTO events (id, kind, payload, created_at) VALUES ($1, $2, $3, now()) RETURNING id"},
	{"long", "/* app=web route=/orders */ WITH recent AS (SELECT o.id, o.user_id, sum(i.qty * i.price) AS total FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.created_at > now() - interval '7 days' AND o.status IN ('paid', 'shipped', 'delivered') GROUP BY o.id, o.user_id) SELECT u.id, u.name, r.total, CASE WHEN r.total > 1000 THEN 'gold' WHEN r.total > 100 THEN 'silver' ELSE 'bronze' END AS tier FROM recent r JOIN users u ON u.id = r.user_id WHERE u.deleted_at IS NULL ORDER BY r.total DESC LIMIT 100 OFFSET 0"},
}

func newBenchClassifier(b *testing.B) *Classifier {
	b.Helper()
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkClassifyCached(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			c := newBenchClassifier(b)
			if _, err := c.Classify(q.sql); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(q.sql)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				d, _ := c.Classify(q.sql)
				if d.Digest == 0 {
					b.Fatal("no digest")
				}
			}
		})
	}
}

func BenchmarkClassifyCachedParallel(b *testing.B) {
	c := newBenchClassifier(b)
	q := benchQueries[1].sql
	if _, err := c.Classify(q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = c.Classify(q)
		}
	})
}

// BenchmarkClassifyUncached measures a miss: lex, parse with pg_query,
// analyse, build the Decision (the cache insert is skipped).
func BenchmarkClassifyUncached(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			c := newBenchClassifier(b)
			b.SetBytes(int64(len(q.sql)))
			b.ReportAllocs()
			for b.Loop() {
				var sc scanResult
				scanSQL(q.sql, &sc, nil)
				if d, _ := c.analyze(q.sql, &sc); d.Digest == 0 {
					b.Fatal("no digest")
				}
			}
		})
	}
}

// BenchmarkClassifyMissInsert is a miss including the cache insert, with
// a new shape every iteration (so the cache also evicts).
func BenchmarkClassifyMissInsert(b *testing.B) {
	c := newBenchClassifier(b)
	qs := make([]string, 1<<14)
	for i := range qs {
		qs[i] = "SELECT c" + strconv.Itoa(i) + " FROM t WHERE id = 1"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = c.Classify(qs[i%len(qs)])
		i++
	}
}

func BenchmarkDigest(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.SetBytes(int64(len(q.sql)))
			b.ReportAllocs()
			for b.Loop() {
				if Digest(q.sql) == 0 {
					b.Fatal("zero digest")
				}
			}
		})
	}
}

// BenchmarkClassifyCachedHinted: a cached statement with a routing and a
// cache hint and a 'now' literal, then the TTL lookup the session layer
// makes for it.
func BenchmarkClassifyCachedHinted(b *testing.B) {
	c := newBenchClassifier(b)
	q := "/* tiergate: replica */ /* tiergate: cache ttl=30s */ SELECT * FROM events WHERE day = 'today'::date AND kind = 'x'"
	if _, err := c.Classify(q); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		d, _ := c.Classify(q)
		if !d.Has(FlagCacheHint | FlagVolatile) {
			b.Fatal("flags")
		}
	}
}

func BenchmarkCacheHintTTL(b *testing.B) {
	for _, q := range []struct{ name, sql string }{
		{"plain", benchQueries[1].sql},
		{"comment", benchQueries[3].sql},
		{"hinted", "/* tiergate: replica */ /* tiergate: cache ttl=30s */ " + benchQueries[1].sql},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.SetBytes(int64(len(q.sql)))
			b.ReportAllocs()
			for b.Loop() {
				CacheHintTTL(q.sql)
			}
		})
	}
}
