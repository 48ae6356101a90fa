package failover

import (
	"slices"
	"testing"
)

// FuzzParseSyncStandbys: any synchronous_standby_names value parses
// without panicking, and a parsed rule survives formatting and parsing
// again unchanged (rewriteSyncStandbys relies on it).
func FuzzParseSyncStandbys(f *testing.F) {
	for _, s := range []string{`ANY 1 ("pg-n1", "pg-n2")`, `FIRST 2 (a, b, c)`, `2 (a,b)`, `a, b`, `*`, `"x""y"`, ``, `ANY (a)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := parseSyncStandbys(s)
		if !ok {
			return
		}
		if r.K < 1 || len(r.Names) == 0 {
			t.Fatalf("parse(%q) = %+v: invalid rule reported ok", s, r)
		}
		again, ok := parseSyncStandbys(r.String())
		if !ok || again.Method != r.Method || again.K != r.K || !slices.Equal(again.Names, r.Names) {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v (ok %v)", s, r, r.String(), again, ok)
		}
	})
}
