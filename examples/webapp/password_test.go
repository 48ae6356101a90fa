package main

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordRoundTrip(t *testing.T) {
	stored, err := hashPassword("correct horse", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "pbkdf2-sha256$1000$") {
		t.Fatalf("stored form %q", stored)
	}
	again, err := hashPassword("correct horse", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if again == stored {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	tests := []struct {
		password string
		want     bool
	}{
		{"correct horse", true},
		{"correct horse ", false},
		{"Correct horse", false},
		{"", false},
	}
	for _, tt := range tests {
		got, err := checkPassword(stored, tt.password)
		if err != nil {
			t.Fatalf("%q: %v", tt.password, err)
		}
		if got != tt.want {
			t.Errorf("checkPassword(%q) = %v, want %v", tt.password, got, tt.want)
		}
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	tests := []struct{ name, stored string }{
		{"empty", ""},
		{"other scheme", "bcrypt$10$c2FsdA$a2V5"},
		{"too few parts", "pbkdf2-sha256$1000$c2FsdA"},
		{"iterations not a number", "pbkdf2-sha256$many$c2FsdA$a2V5"},
		{"zero iterations", "pbkdf2-sha256$0$c2FsdA$a2V5"},
		{"huge iterations", "pbkdf2-sha256$999999999$c2FsdA$a2V5"},
		{"bad salt", "pbkdf2-sha256$1000$!!$a2V5"},
		{"bad key", "pbkdf2-sha256$1000$c2FsdA$!!"},
		{"empty key", "pbkdf2-sha256$1000$c2FsdA$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := checkPassword(tt.stored, "x")
			if ok || !errors.Is(err, errBadPasswordHash) {
				t.Fatalf("checkPassword = %v, %v; want false, errBadPasswordHash", ok, err)
			}
		})
	}
}
