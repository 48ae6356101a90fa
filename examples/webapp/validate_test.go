package main

import (
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want, msg string
	}{
		{"alice", "alice", ""},
		{"  Alice_99 ", "alice_99", ""},
		{"abc", "abc", ""},
		{strings.Repeat("a", 32), strings.Repeat("a", 32), ""},
		{"ab", "ab", msgNameLength},
		{"", "", msgNameLength},
		{strings.Repeat("a", 33), strings.Repeat("a", 33), msgNameLength},
		{"9lives", "9lives", msgNameChars},
		{"_x_", "_x_", msgNameChars},
		{"al ice", "al ice", msgNameChars},
		{"al-ice", "al-ice", msgNameChars},
		{"jürgen", "jürgen", msgNameChars},
		{"bob'; drop", "bob'; drop", msgNameChars},
	}
	for _, tt := range tests {
		got, msg := cleanName(tt.in)
		if got != tt.want || msg != tt.msg {
			t.Errorf("cleanName(%q) = %q, %q; want %q, %q", tt.in, got, msg, tt.want, tt.msg)
		}
	}
}

func TestCheckNewPassword(t *testing.T) {
	tests := []struct {
		in, msg string
	}{
		{"12345678", ""},
		{"pässwörd", ""},
		{strings.Repeat("é", 128), ""},
		{"1234567", msgPassLength},
		{"", msgPassLength},
		{strings.Repeat("x", 129), msgPassLength},
		{"abcdefgh\xff", msgPassEncoding},
	}
	for _, tt := range tests {
		if msg := checkNewPassword(tt.in); msg != tt.msg {
			t.Errorf("checkNewPassword(%q) = %q, want %q", tt.in, msg, tt.msg)
		}
	}
}

func TestCleanPost(t *testing.T) {
	tests := []struct {
		in, want, msg string
	}{
		{"hello", "hello", ""},
		{"  two\r\nlines \n", "two\nlines", ""},
		{"tab\tok", "tab\tok", ""},
		{strings.Repeat("ü", 500), strings.Repeat("ü", 500), ""},
		{"", "", msgPostEmpty},
		{" \n\t ", "", msgPostEmpty},
		{strings.Repeat("x", 501), strings.Repeat("x", 501), msgPostLength},
		{"nul\x00byte", "nul\x00byte", msgPostChars},
		{"bell\a", "bell\a", msgPostChars},
		{"bad\xffutf8", "", msgPostChars},
	}
	for _, tt := range tests {
		got, msg := cleanPost(tt.in)
		if got != tt.want || msg != tt.msg {
			t.Errorf("cleanPost(%q) = %q, %q; want %q, %q", tt.in, got, msg, tt.want, tt.msg)
		}
	}
}
