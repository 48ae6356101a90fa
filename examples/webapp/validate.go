package main

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits.
const (
	minNameLen     = 3
	maxNameLen     = 32
	minPasswordLen = 8
	maxPasswordLen = 128
	maxPostLen     = 500
)

// Validation messages, shown next to the form field.
const (
	msgNameLength   = "User name must be 3 to 32 characters long."
	msgNameChars    = "User name may contain only letters a-z, digits and _, and must start with a letter."
	msgPassLength   = "Password must be 8 to 128 characters long."
	msgPassEncoding = "Password must be valid UTF-8 text."
	msgPostEmpty    = "Write something first."
	msgPostLength   = "A post can be at most 500 characters long."
	msgPostChars    = "A post must be valid UTF-8 text without control characters."
)

// cleanName lowercases a user name and checks it; msg is empty when valid.
func cleanName(s string) (name, msg string) {
	name = strings.ToLower(strings.TrimSpace(s))
	if n := utf8.RuneCountInString(name); n < minNameLen || n > maxNameLen {
		return name, msgNameLength
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_'):
		default:
			return name, msgNameChars
		}
	}
	return name, ""
}

// checkNewPassword checks a password chosen at signup; msg is empty when
// valid. Login does not check it: a wrong password is just wrong.
func checkNewPassword(p string) (msg string) {
	if !utf8.ValidString(p) {
		return msgPassEncoding
	}
	if n := utf8.RuneCountInString(p); n < minPasswordLen || n > maxPasswordLen {
		return msgPassLength
	}
	return ""
}

// cleanPost normalises line endings, trims surrounding space and checks a
// post body; msg is empty when valid.
func cleanPost(s string) (body, msg string) {
	if !utf8.ValidString(s) {
		return "", msgPostChars
	}
	body = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if body == "" {
		return body, msgPostEmpty
	}
	if utf8.RuneCountInString(body) > maxPostLen {
		return body, msgPostLength
	}
	for _, r := range body {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return body, msgPostChars
		}
	}
	return body, ""
}
