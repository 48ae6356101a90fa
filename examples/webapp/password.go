package main

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Passwords are hashed with PBKDF2-HMAC-SHA256 from the standard library
// (golang.org/x/crypto is not a requirement of this module, so bcrypt would
// mean a new dependency). The stored form carries its parameters, so the
// iteration count can be raised later without invalidating old hashes:
//
//	pbkdf2-sha256$<iterations>$<salt, base64>$<key, base64>
const (
	passwordScheme = "pbkdf2-sha256"
	// DefaultPasswordIterations is OWASP's 2023 recommendation for
	// PBKDF2-HMAC-SHA256.
	DefaultPasswordIterations = 600_000
	saltLen                   = 16
	keyLen                    = 32
	// maxPasswordIterations bounds the work a corrupt or hostile stored hash
	// can make a login do.
	maxPasswordIterations = 10_000_000
)

// errBadPasswordHash means a stored hash is not in the expected form.
var errBadPasswordHash = errors.New("malformed password hash")

var b64 = base64.RawStdEncoding

// hashPassword returns the stored form of password with a fresh random salt.
func hashPassword(password string, iterations int) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, keyLen)
	if err != nil {
		return "", err
	}
	return passwordScheme + "$" + strconv.Itoa(iterations) + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

// checkPassword reports whether password matches the stored hash, comparing
// in constant time.
func checkPassword(stored, password string) (bool, error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != passwordScheme {
		return false, errBadPasswordHash
	}
	iterations, err := strconv.Atoi(parts[1])
	if err != nil || iterations < 1 || iterations > maxPasswordIterations {
		return false, fmt.Errorf("%w: iterations %q", errBadPasswordHash, parts[1])
	}
	salt, err := b64.DecodeString(parts[2])
	if err != nil {
		return false, fmt.Errorf("%w: salt: %w", errBadPasswordHash, err)
	}
	want, err := b64.DecodeString(parts[3])
	if err != nil || len(want) == 0 {
		return false, fmt.Errorf("%w: key", errBadPasswordHash)
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iterations, len(want))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
