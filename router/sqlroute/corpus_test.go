package sqlroute

import (
	"bufio"
	"os"
	"reflect"
	"strings"
	"testing"
)

// corpusEntry is one statement of testdata/corpus.txt.
type corpusEntry struct {
	line   int
	want   string // "replica", "primary" or "unparsable"
	sql    string
	source string // file:line, for messages
}

// corpusConfig is the config the corpus expectations assume.
var corpusConfig = Config{WriteFunctions: []string{"billing.charge", "audit_event"}}

// loadCorpus reads testdata/corpus.txt: "<target>\t<statement>" lines, where
// a line starting with a tab continues the previous statement.
func loadCorpus(tb testing.TB) []corpusEntry {
	tb.Helper()
	const path = "testdata/corpus.txt"
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []corpusEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "\t"):
			if len(out) == 0 {
				tb.Fatalf("%s:%d: continuation line without a statement", path, n)
			}
			out[len(out)-1].sql += "\n" + line[1:]
		default:
			target, sql, ok := strings.Cut(line, "\t")
			if !ok || (target != "replica" && target != "primary" && target != "unparsable") {
				tb.Fatalf("%s:%d: want \"replica|primary|unparsable<TAB>statement\", got %q", path, n, line)
			}
			out = append(out, corpusEntry{line: n, want: target, sql: sql, source: path + ":" + itoa(n)})
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

func newTestClassifier(tb testing.TB, cfg Config) *Classifier {
	tb.Helper()
	c, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestCorpus(t *testing.T) {
	entries := loadCorpus(t)
	if len(entries) < 300 {
		t.Fatalf("corpus has %d statements, want at least 300", len(entries))
	}
	c := newTestClassifier(t, corpusConfig)
	for _, e := range entries {
		d, err := c.Classify(e.sql)
		if err != nil {
			t.Errorf("%s: Classify(%q): %v", e.source, e.sql, err)
			continue
		}
		got := d.Target.String()
		if d.Has(FlagUnparsable) {
			if e.want != "unparsable" {
				t.Errorf("%s: %q is unparsable, want %s", e.source, e.sql, e.want)
			}
			continue
		}
		if e.want == "unparsable" {
			t.Errorf("%s: %q parsed (%s, %q), want unparsable", e.source, e.sql, got, d.Reason)
			continue
		}
		if got != e.want {
			t.Errorf("%s: %q -> %s (%s, %q, %v), want %s", e.source, e.sql, got, d.Kind, d.Reason, d.Flags, e.want)
		}
	}
}

// TestCorpusCachedEqualsUncached: the second Classify of each statement is a
// cache hit and returns the same decision.
func TestCorpusCachedEqualsUncached(t *testing.T) {
	c := newTestClassifier(t, corpusConfig)
	for _, e := range loadCorpus(t) {
		d1, err1 := c.Classify(e.sql)
		d2, err2 := c.Classify(e.sql)
		if !reflect.DeepEqual(d1, d2) || (err1 == nil) != (err2 == nil) {
			t.Errorf("%s: first %+v (%v), second %+v (%v)", e.source, d1, err1, d2, err2)
		}
	}
	if s := c.Stats(); s.Hits == 0 {
		t.Errorf("no cache hits: %+v", s)
	}
}

// TestCorpusDecisionDependsOnlyOnDigest is the property the cache relies
// on: statements with the same digest get the same decision. For every
// corpus entry it builds variants that keep the digest (other literal values,
// other spacing and comments) and checks that, when both parse, the
// uncached analyses agree.
func TestCorpusDecisionDependsOnlyOnDigest(t *testing.T) {
	c := newTestClassifier(t, corpusConfig)
	for _, e := range loadCorpus(t) {
		checkSameShape(t, c, e.source, e.sql)
	}
}

// checkSameShape checks the digest and decision invariants for sql and its
// same-shape variants.
func checkSameShape(t *testing.T, c *Classifier, where, sql string) {
	t.Helper()
	var sc scanResult
	if scanSQL(sql, &sc, nil); sc.proxySetting {
		return // tiergate.* statements bypass the cache: values matter
	}
	base := uncached(c, sql)
	for _, v := range []string{otherLiterals(sql), respace(sql)} {
		if Digest(v) != Digest(sql) {
			t.Errorf("%s: digest differs:\n  %q -> %q\n  %q -> %q", where, sql, Normalize(sql), v, Normalize(v))
			continue
		}
		got := uncached(c, v)
		if base.Has(FlagUnparsable) || got.Has(FlagUnparsable) {
			continue // parse errors are never cached
		}
		if !reflect.DeepEqual(base, got) {
			t.Errorf("%s: same digest, different decisions:\n  %q: %+v\n  %q: %+v", where, sql, base, v, got)
		}
	}
}

// uncached analyses sql without the cache (proxy settings excluded). It
// leaves out what Classify adds from literal values (withLiteralFacts):
// same-shape texts differ in those.
func uncached(c *Classifier, sql string) Decision {
	var sc scanResult
	scanSQL(sql, &sc, nil)
	if sc.proxySetting {
		d, _ := proxySettingDecision(sql, &sc)
		return d
	}
	d, _ := c.analyze(sql, &sc)
	out := *d
	out.shape = nil // positions differ between same-shape texts; ShardRouter tests cover shapes
	return out
}

// uncachedWithLiterals is what Classify returns for sql: uncached plus the
// facts of its literal values.
func uncachedWithLiterals(c *Classifier, sql string) Decision {
	var sc scanResult
	scanSQL(sql, &sc, nil)
	return withLiteralFacts(uncached(c, sql), &sc)
}

// otherLiterals rewrites every literal of sql to a different value of the
// same token class: strings become 'zz', numbers 7 (spaced, so that they
// cannot merge with a neighbouring token).
func otherLiterals(sql string) string {
	var b strings.Builder
	l := lexer{s: sql}
	last := 0
	for t := l.next(); t.kind != tokEOF; t = l.next() {
		switch t.kind {
		case tokString:
			b.WriteString(sql[last:t.start])
			b.WriteString(" 'zz' ")
			last = t.end
		case tokNumber:
			b.WriteString(sql[last:t.start])
			b.WriteString(" 7 ")
			last = t.end
		}
	}
	b.WriteString(sql[last:])
	return b.String()
}

// respace rebuilds sql from its tokens separated by comments and odd
// whitespace, upper-casing ASCII letters of unquoted words.
func respace(sql string) string {
	var b strings.Builder
	l := lexer{s: sql}
	for t := l.next(); t.kind != tokEOF; t = l.next() {
		text := sql[t.start:t.end]
		if t.kind == tokIdent {
			up := []byte(text)
			for i, c := range up {
				if 'a' <= c && c <= 'z' {
					up[i] = c - ('a' - 'A')
				}
			}
			text = string(up)
		}
		b.WriteString(text)
		b.WriteString(" \t/* x; DELETE FROM t */\n ")
	}
	return b.String()
}
