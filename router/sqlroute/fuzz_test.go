package sqlroute

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// addCorpusSeeds seeds a fuzz target with every corpus statement (the
// files under testdata/fuzz/<FuzzName>/ add a few more).
func addCorpusSeeds(f *testing.F) {
	for _, e := range loadCorpus(f) {
		f.Add(e.sql)
	}
}

// FuzzDigest: the lexer and normaliser never panic, Digest hashes exactly
// the text Normalize returns, and spacing, comments and keyword case do not
// change the digest.
func FuzzDigest(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		n := Normalize(sql)
		d := Digest(sql)
		if d != xxhash.Sum64String(n) {
			t.Fatalf("Digest(%q) = %x, xxhash(Normalize) = %x (%q)", sql, d, xxhash.Sum64String(n), n)
		}
		if v := respace(sql); Digest(v) != d {
			t.Fatalf("respacing changed the digest:\n  %q -> %q\n  %q -> %q", sql, n, v, Normalize(v))
		}
		if v := otherLiterals(sql); Digest(v) != d {
			t.Fatalf("other literals changed the digest:\n  %q -> %q\n  %q -> %q", sql, n, v, Normalize(v))
		}
	})
}

// FuzzClassify: Classify never panics, returns a well-formed decision, the
// cached answer equals the first one, and statements of one shape (same
// digest) get the same decision whenever both parse.
func FuzzClassify(f *testing.F) {
	addCorpusSeeds(f)
	c := newTestClassifier(f, corpusConfig)
	f.Fuzz(func(t *testing.T, sql string) {
		d1, err1 := c.Classify(sql)
		if err1 != nil && !errors.Is(err1, ErrProxySetting) {
			t.Fatalf("Classify(%q): unexpected error %v", sql, err1)
		}
		if d1.Target != Primary && d1.Target != Replica {
			t.Fatalf("Classify(%q): target %d", sql, d1.Target)
		}
		if d1.Kind >= kindCount {
			t.Fatalf("Classify(%q): kind %d", sql, d1.Kind)
		}
		if (len(d1.Kinds) == 0) != (d1.Kind == KindEmpty) || (len(d1.Kinds) > 0 && d1.Kinds[0] != d1.Kind) {
			t.Fatalf("Classify(%q): Kind %s, Kinds %v", sql, d1.Kind, d1.Kinds)
		}
		if d1.Reason == "" {
			t.Fatalf("Classify(%q): no reason", sql)
		}
		if d1.Has(FlagPin) && !d1.Has(FlagSessionState) {
			t.Fatalf("Classify(%q): pin without session state: %v", sql, d1.Flags)
		}
		if d1.Digest != Digest(sql) {
			t.Fatalf("Classify(%q): digest %x, want %x", sql, d1.Digest, Digest(sql))
		}
		if !d1.Has(FlagProxySetting) {
			ttl, ok := CacheHintTTL(sql)
			if ok != d1.Has(FlagCacheHint) || ttl < 0 || (!ok && ttl != 0) {
				t.Fatalf("Classify(%q): flags %v, but CacheHintTTL = %v, %v", sql, d1.Flags, ttl, ok)
			}
		}
		d2, err2 := c.Classify(sql)
		if !reflect.DeepEqual(d1, d2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("Classify(%q) twice: %+v then %+v", sql, d1, d2)
		}
		checkSameShape(t, c, "fuzz", sql)
	})
}
