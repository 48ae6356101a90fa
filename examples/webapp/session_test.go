package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSessionKeyRoundTrip(t *testing.T) {
	k, err := newSessionKey(42)
	if err != nil {
		t.Fatal(err)
	}
	v := k.String()
	if !strings.HasPrefix(v, "42.") {
		t.Fatalf("cookie value %q does not start with the user id", v)
	}
	got, ok := parseSessionKey(v)
	if !ok || got.UserID != 42 || !bytes.Equal(got.Token, k.Token) {
		t.Fatalf("parseSessionKey(%q) = %+v, %v", v, got, ok)
	}
	other, err := newSessionKey(42)
	if err != nil {
		t.Fatal(err)
	}
	if k.csrfToken() == other.csrfToken() {
		t.Fatal("two sessions share a CSRF token")
	}
	if k.csrfToken() != got.csrfToken() {
		t.Fatal("CSRF token is not a function of the session")
	}
	if bytes.Equal(k.hash(), k.Token) || len(k.hash()) != 32 {
		t.Fatal("stored hash must be a SHA-256, not the token")
	}
}

func TestParseSessionKeyRejects(t *testing.T) {
	tok := strings.Repeat("A", b64url.EncodedLen(tokenLen))
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no dot", "42" + tok},
		{"no id", "." + tok},
		{"zero id", "0." + tok},
		{"negative id", "-5." + tok},
		{"id overflows", "9223372036854775808." + tok},
		{"short token", "42." + tok[1:]},
		{"long token", "42." + tok + "A"},
		{"bad base64", "42." + strings.Repeat("*", len(tok))},
		{"two dots", "42." + tok[:10] + "." + tok[11:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, ok := parseSessionKey(tt.in); ok {
				t.Fatalf("parseSessionKey(%q) = %+v, want rejection", tt.in, k)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[int64]bool)
	for range 1000 {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		if id <= 0 {
			t.Fatalf("id %d is not positive", id)
		}
		if seen[id] {
			t.Fatalf("id %d repeated", id)
		}
		seen[id] = true
	}
}

func TestTokensEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"", "", false}, // an empty token never matches
	}
	for _, tt := range tests {
		if got := tokensEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("tokensEqual(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

// FuzzParseSessionKey: any cookie value either is rejected or parses to a
// key whose canonical form parses to the same key.
func FuzzParseSessionKey(f *testing.F) {
	f.Add("42." + strings.Repeat("A", b64url.EncodedLen(tokenLen)))
	f.Add("1.")
	f.Fuzz(func(t *testing.T, v string) {
		k, ok := parseSessionKey(v)
		if !ok {
			return
		}
		if k.UserID <= 0 || len(k.Token) != tokenLen {
			t.Fatalf("accepted %q as %+v", v, k)
		}
		again, ok := parseSessionKey(k.String())
		if !ok || again.UserID != k.UserID || !bytes.Equal(again.Token, k.Token) {
			t.Fatalf("%q: canonical form %q does not round-trip", v, k.String())
		}
	})
}
