package sqlroute

import (
	"testing"
	"time"
)

func TestClassifyCacheHints(t *testing.T) {
	const (
		cache   = FlagCacheHint
		nocache = FlagNoCacheHint
	)
	tests := []struct {
		sql    string
		target Target
		reason string
		flags  Flags
		ttl    time.Duration
	}{
		{"/* tiergate: cache */ SELECT * FROM t", Replica, "SELECT", cache, 0},
		{"/* tiergate: cache ttl=30s */ SELECT * FROM t", Replica, "SELECT", cache, 30 * time.Second},
		{"SELECT * FROM t /*TIERGATE : CACHE TTL = '1m'*/", Replica, "SELECT", cache, time.Minute},
		{"SELECT /* tiergate:cache ttl='1m30s' */ * FROM t", Replica, "SELECT", cache, 90 * time.Second},
		{"/* tiergate: nocache */ SELECT * FROM t", Replica, "SELECT", nocache, 0},
		{"/* tiergate: cache */ /* tiergate: nocache */ SELECT 1", Replica, "SELECT", cache | nocache, 0},
		{"/* tiergate: nocache */ SELECT 1 /* tiergate: cache ttl=2s */", Replica, "SELECT", cache | nocache, 2 * time.Second},

		// Malformed cache hints are ordinary comments.
		{"/* tiergate: cache ttl=abc */ SELECT 1", Replica, "SELECT", 0, 0},
		{"/* tiergate: cache ttl=-1s */ SELECT 1", Replica, "SELECT", 0, 0},
		{"/* tiergate: cachettl=1s */ SELECT 1", Replica, "SELECT", 0, 0},
		{"/* tiergate: replica, cache */ SELECT 1", Replica, "SELECT", 0, 0},
		{"-- tiergate: cache\nSELECT 1", Replica, "SELECT", 0, 0},
		{"SELECT '/* tiergate: cache */'", Replica, "SELECT", 0, 0},

		// Next to routing and shard hints, each in its own comment.
		{"/* tiergate: replica */ /* tiergate: cache ttl=5s */ SELECT * FROM t", Replica, "hint", FlagHint | cache, 5 * time.Second},
		{"/* tiergate: cache ttl=5s */ /* tiergate: primary */ SELECT * FROM t", Primary, "hint", FlagHint | cache, 5 * time.Second},
		{"/* tiergate: primary */ /* tiergate: nocache */ SELECT * FROM t", Primary, "hint", FlagHint | nocache, 0},
		{"/* tiergate: shard=2 */ /* tiergate: cache */ SELECT * FROM t", Replica, "SELECT", FlagShardHint | cache, 0},

		// Other statements and texts keep their flags.
		{"/* tiergate: cache */ DELETE FROM t", Primary, "DELETE", FlagWrite | cache, 0},
		{"/* tiergate: cache */ SELECT now()", Replica, "SELECT", FlagVolatile | cache, 0},
		{"/* tiergate: cache */ SELECT 1; SELECT 2", Replica, "SELECT", FlagMultiStatement | cache, 0},
		{"/* tiergate: cache ttl=1s */ SELEC 1", Primary, "unparsable", FlagUnparsable | cache, time.Second},
		{"/* tiergate: replica */ /* tiergate: nocache */ SELEC 1", Replica, "hint", FlagUnparsable | FlagHint | nocache, 0},
	}
	c := newTestClassifier(t, Config{})
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			for range 2 { // analysed, then cached
				d, err := c.Classify(tc.sql)
				if err != nil {
					t.Fatal(err)
				}
				if d.Target != tc.target || d.Reason != tc.reason || d.Flags != tc.flags {
					t.Errorf("got %s %q %v, want %s %q %v", d.Target, d.Reason, d.Flags, tc.target, tc.reason, tc.flags)
				}
			}
			ttl, ok := CacheHintTTL(tc.sql)
			if ok != tc.flags.Has(FlagCacheHint) || ttl != tc.ttl {
				t.Errorf("CacheHintTTL = %v, %v; want %v, %v", ttl, ok, tc.ttl, tc.flags.Has(FlagCacheHint))
			}
		})
	}
}

func TestCacheHintDigest(t *testing.T) {
	const plain = "SELECT * FROM t WHERE id = 1"
	same := [][2]string{
		{"/* tiergate: cache ttl=5s */ " + plain, "/* tiergate: cache ttl=10m */ " + plain},
		{"/* tiergate: cache */ " + plain, "/*TIERGATE:CACHE TTL='1h'*/" + plain},
		{"/* tiergate: nocache */ " + plain, "/* TiergatE : NoCache */ " + plain},
		{"/* tiergate: cache ttl=nope */ " + plain, plain}, // malformed: an ordinary comment
	}
	for _, p := range same {
		if Digest(p[0]) != Digest(p[1]) {
			t.Errorf("different digests:\n  %q -> %q\n  %q -> %q", p[0], Normalize(p[0]), p[1], Normalize(p[1]))
		}
	}
	different := [][2]string{
		{plain, "/* tiergate: cache */ " + plain},
		{plain, "/* tiergate: nocache */ " + plain},
		{"/* tiergate: cache */ " + plain, "/* tiergate: nocache */ " + plain},
		{"/* tiergate: cache */ " + plain, "/* tiergate: cache */ /* tiergate: nocache */ " + plain},
		{"/* tiergate: replica */ " + plain, "/* tiergate: replica */ /* tiergate: cache */ " + plain},
	}
	for _, p := range different {
		if Digest(p[0]) == Digest(p[1]) {
			t.Errorf("same digest for %q and %q (%q)", p[0], p[1], Normalize(p[0]))
		}
	}
	if got, want := Normalize("/* tiergate: cache ttl=5s */ SELECT 1 /* tiergate: nocache */"), "/*tiergate:cache*/ select $? /*tiergate:nocache*/"; got != want {
		t.Errorf("Normalize = %q, want %q", got, want)
	}

	// The cache keeps one Decision per digest: hinted and plain texts of
	// a shape must not share one.
	c := newTestClassifier(t, Config{})
	for _, step := range []struct {
		sql  string
		want Flags
	}{
		{plain, 0},
		{"/* tiergate: cache ttl=1s */ " + plain, FlagCacheHint},
		{plain, 0},
		{"/* tiergate: nocache */ " + plain, FlagNoCacheHint},
		{"/* tiergate: cache ttl=2s */ " + plain, FlagCacheHint},
	} {
		if d, _ := c.Classify(step.sql); d.Flags != step.want {
			t.Errorf("%q: %v, want %v", step.sql, d.Flags, step.want)
		}
	}
}

func TestCacheHintTTL(t *testing.T) {
	tests := []struct {
		sql string
		ttl time.Duration
		ok  bool
	}{
		{"", 0, false},
		{"SELECT 1", 0, false},
		{"/* app=web */ SELECT 1", 0, false},
		{"/* tiergate: replica */ SELECT 1", 0, false},
		{"/* tiergate: nocache */ SELECT 1", 0, false},
		{"/* tiergate: cache */ SELECT 1", 0, true},
		{"/* tiergate: cache ttl=30s */ SELECT 1", 30 * time.Second, true},
		{"/* tiergate: cache ttl = '1m' */ SELECT 1", time.Minute, true},
		{"/* tiergate: cache ttl=250ms */", 250 * time.Millisecond, true},
		{"/* tiergate: cache ttl=5s */ SELECT /* tiergate: cache ttl=9s */ 1", 5 * time.Second, true},
		{"/* tiergate: cache ttl=abc */ /* tiergate: cache ttl=7s */ SELECT 1", 7 * time.Second, true},
		{"/* tiergate: cache */ /* tiergate: cache ttl=7s */ SELECT 1", 0, true},
		{"SELECT '/* tiergate: cache ttl=5s */'", 0, false},
		{"SELECT $$ /* tiergate: cache */ $$", 0, false},
		{"-- /* tiergate: cache */\nSELECT 1", 0, false},
		{"SELECT 1 /* tiergate: cache ttl=5s", 0, false}, // unterminated
		{"/* outer /* tiergate: cache */ */ SELECT 1", 0, false},
	}
	for _, tc := range tests {
		ttl, ok := CacheHintTTL(tc.sql)
		if ttl != tc.ttl || ok != tc.ok {
			t.Errorf("CacheHintTTL(%q) = %v, %v; want %v, %v", tc.sql, ttl, ok, tc.ttl, tc.ok)
		}
	}
}

func TestCacheHintsDoNotAllocate(t *testing.T) {
	for _, sql := range []string{
		"SELECT * FROM users WHERE id = 42",
		"/* app=web */ SELECT * FROM users WHERE id = 42 -- x",
		"/* tiergate: replica */ /* tiergate: cache ttl='30s' */ SELECT * FROM users WHERE id = 42",
	} {
		if n := testing.AllocsPerRun(100, func() { CacheHintTTL(sql) }); n != 0 {
			t.Errorf("CacheHintTTL(%q) allocates %.1f times", sql, n)
		}
	}
	c := newTestClassifier(t, Config{})
	sql := "/* tiergate: replica */ /* tiergate: cache ttl=30s */ SELECT * FROM users WHERE id = 42"
	c.Classify(sql)
	if n := testing.AllocsPerRun(100, func() { c.Classify(sql) }); n != 0 {
		t.Errorf("cached Classify of a hinted text allocates %.1f times", n)
	}
}
