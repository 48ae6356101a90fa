package httpcache

import (
	"testing"
)

func TestParseResponseDirectives(t *testing.T) {
	none := respDirectives{maxAge: absent, sMaxAge: absent, swr: absent, sie: absent}
	with := func(f func(*respDirectives)) respDirectives {
		d := none
		f(&d)
		return d
	}
	tests := []struct {
		lines []string
		want  respDirectives
	}{
		{nil, none},
		{[]string{""}, none},
		{[]string{"max-age=60"}, with(func(d *respDirectives) { d.maxAge = 60 })},
		{[]string{"MAX-AGE=60"}, with(func(d *respDirectives) { d.maxAge = 60 })},
		{[]string{`max-age="60"`}, with(func(d *respDirectives) { d.maxAge = 60 })},
		{[]string{"max-age = 60"}, with(func(d *respDirectives) { d.maxAge = 60 })},
		{[]string{"max-age=-1"}, with(func(d *respDirectives) { d.maxAge = invalid })},
		{[]string{"max-age="}, with(func(d *respDirectives) { d.maxAge = invalid })},
		{[]string{"max-age"}, with(func(d *respDirectives) { d.maxAge = invalid })},
		{[]string{"max-age=1, max-age=2"}, with(func(d *respDirectives) { d.maxAge = 1 })},
		{[]string{"max-age=4294967296"}, with(func(d *respDirectives) { d.maxAge = maxDelta })},
		{[]string{"s-maxage=5,public"}, with(func(d *respDirectives) { d.sMaxAge = 5; d.public = true })},
		{[]string{"no-store", "private"}, with(func(d *respDirectives) { d.noStore = true; d.private = true })},
		{[]string{`no-cache="Set-Cookie, X-Foo", max-age=3`}, with(func(d *respDirectives) { d.noCache = true; d.maxAge = 3 })},
		{[]string{`private="a,b,c" , must-revalidate`}, with(func(d *respDirectives) { d.private = true; d.mustRevalidate = true })},
		{[]string{"stale-while-revalidate=30, stale-if-error=86400"}, with(func(d *respDirectives) { d.swr = 30; d.sie = 86400 })},
		{[]string{"proxy-revalidate, immutable, no-transform"}, with(func(d *respDirectives) { d.proxyRev = true })},
		{[]string{",,, ,max-age=9 junk, public"}, with(func(d *respDirectives) { d.maxAge = 9; d.public = true })},
		{[]string{`foo="unterminated, max-age=5`}, none},
		{[]string{"max-ages=5, xmax-age=6"}, none},
	}
	for _, tt := range tests {
		var lines [][]byte
		for _, l := range tt.lines {
			lines = append(lines, []byte(l))
		}
		if got := parseResponseDirectives(lines); got != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.lines, got, tt.want)
		}
	}
}

func TestParseRequestDirectives(t *testing.T) {
	tests := []struct {
		line string
		want reqDirectives
	}{
		{"", reqDirectives{}},
		{"no-cache", reqDirectives{noCache: true}},
		{"max-age=0", reqDirectives{maxAgeZero: true}},
		{"max-age=00", reqDirectives{maxAgeZero: true}},
		{"max-age=10", reqDirectives{}},
		{"no-store, max-age=0", reqDirectives{noStore: true, maxAgeZero: true}},
		{"only-if-cached, max-stale", reqDirectives{}},
	}
	for _, tt := range tests {
		if got := parseRequestDirectives([][]byte{[]byte(tt.line)}); got != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestETagLists(t *testing.T) {
	tests := []struct {
		list, etag string
		want       bool
	}{
		{`"a"`, `"a"`, true},
		{`W/"a"`, `"a"`, true},
		{`"a"`, `W/"a"`, true},
		{`"b", W/"a"`, `"a"`, true},
		{`*`, `"a"`, true},
		{`"a`, `"a"`, false},
		{`a`, `"a"`, false},
		{`"x,y"`, `"x,y"`, true},
		{`"x", junk`, `"y"`, false},
		{``, `"a"`, false},
	}
	for _, tt := range tests {
		if got := etagListMatches([]byte(tt.list), []byte(tt.etag)); got != tt.want {
			t.Errorf("%q vs %q: %v", tt.list, tt.etag, got)
		}
	}
}

// FuzzDirectives checks that the Cache-Control and If-None-Match parsers
// never panic or loop, and that the scanner always makes progress.
func FuzzDirectives(f *testing.F) {
	for _, s := range []string{
		"max-age=60, s-maxage=30, public",
		`no-cache="Set-Cookie, X", private="a"`,
		`max-age="12`,
		"=,=,=",
		`W/"a", "b", *`,
		"stale-while-revalidate=99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		parseResponseDirectives([][]byte{b})
		parseRequestDirectives([][]byte{b})
		etagListMatches(b, []byte(`"a"`))
		sc := dirScanner{s: b}
		for n := 0; ; n++ {
			if n > len(b)+1 {
				t.Fatalf("scanner does not progress on %q", s)
			}
			if _, _, ok := sc.next(); !ok {
				break
			}
		}
		if d := parseDelta(b); d < invalid || d > maxDelta {
			t.Fatalf("parseDelta(%q) = %d", s, d)
		}
	})
}
