package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/pgtest"
)

func benchApp(b *testing.B, dsn string) *app {
	b.Helper()
	pool, err := newConnPool(dsn, 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.close)
	cfg := appConfig{PasswordIterations: testIterations}
	cfg.SetDefaults()
	a, err := newApp(cfg, pool, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkRenderFeed: the template work of one feed page (50 posts).
func BenchmarkRenderFeed(b *testing.B) {
	a := benchApp(b, "postgres://127.0.0.1:1/none")
	posts := make([]post, feedLimit)
	for i := range posts {
		posts[i] = post{UserID: int64(i + 1), PostID: int64(i), Author: fmt.Sprintf("user%d", i), Body: "a post with <some> text & more", Created: time.Unix(1_700_000_000, 0)}
	}
	data := feedPage{page: page{Title: "Feed"}, Posts: posts, Limit: feedLimit}
	b.ReportAllocs()
	for b.Loop() {
		a.render(httptest.NewRecorder(), http.StatusOK, pageFeed, data)
	}
}

// BenchmarkFeedRequest: GET / end to end against a real PostgreSQL with 50
// posts (handler, pool, query, render; no network between client and app).
func BenchmarkFeedRequest(b *testing.B) {
	db := pgtest.New(b, pgtest.Spec{Name: "webbench"})
	dsn := db.Primary().DSN()
	a := benchApp(b, dsn)
	ctx := context.Background()
	if err := a.db.initSchema(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range feedLimit {
		if err := a.db.createPost(ctx, post{UserID: int64(i%5 + 1), PostID: int64(i), Author: "bench", Body: "hello"}); err != nil {
			b.Fatal(err)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkSessionCookie: parsing a session cookie and deriving its CSRF
// token and stored hash, the per-request cost before the session query.
func BenchmarkSessionCookie(b *testing.B) {
	k, err := newSessionKey(1234567890123)
	if err != nil {
		b.Fatal(err)
	}
	v := k.String()
	b.ReportAllocs()
	for b.Loop() {
		k, ok := parseSessionKey(v)
		if !ok {
			b.Fatal("rejected")
		}
		_ = k.hash()
		_ = k.csrfToken()
	}
}

// BenchmarkPasswordHash: one login's hashing cost at the default iteration
// count.
func BenchmarkPasswordHash(b *testing.B) {
	stored, err := hashPassword("correct horse", DefaultPasswordIterations)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := checkPassword(stored, "correct horse"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
