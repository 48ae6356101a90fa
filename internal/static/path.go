package static

import "errors"

// Why a request path is refused.
var (
	// ErrBadPath is a path that could reach outside the root or is not
	// in canonical form: a ".." or "." segment, an empty segment, a
	// backslash, a NUL or other control byte, an escaped dot, slash,
	// backslash, NUL or percent sign, or no leading slash.
	ErrBadPath = errors.New("static: path not allowed")
	// ErrHidden is a path with a segment starting with "." (other than
	// .well-known): dotfiles such as .env or .git are never served.
	ErrHidden = errors.New("static: hidden path")
)

// checkPath accepts only a clean absolute path ("/a/b.js", "/dir/"),
// decoded (as fasthttp's RequestCtx.Path returns it). It is deliberately
// stricter than needed: anything unusual is refused rather than
// interpreted.
func checkPath(p []byte) error {
	if len(p) == 0 || p[0] != '/' {
		return ErrBadPath
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f || c == '\\':
			return ErrBadPath
		case c == '%' && i+2 < len(p) && escapedDanger(p[i+1], p[i+2]):
			return ErrBadPath
		}
	}
	hidden := false
	// Segments between slashes; the last may be empty (a directory path).
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		seg := p[start:i]
		last := i == len(p)
		switch {
		case len(seg) == 0 && !last:
			return ErrBadPath // "//"
		case string(seg) == "." || string(seg) == "..":
			return ErrBadPath
		case len(seg) > 0 && seg[0] == '.' && string(seg) != ".well-known":
			hidden = true
		}
		start = i + 1
	}
	if hidden {
		return ErrHidden
	}
	return nil
}

// escapedDanger reports whether %hi lo encodes '.', '/', '\\', NUL or
// '%' (a double encoding).
func escapedDanger(hi, lo byte) bool {
	lo |= 0x20 // lower-case a hex letter
	switch hi {
	case '0':
		return lo == '0'
	case '2':
		return lo == 'e' || lo == 'f' || lo == '5'
	case '5':
		return lo == 'c'
	}
	return false
}

// fingerprinted reports whether the last segment of p is a fingerprinted
// file name: a dot-separated part other than the first and the last
// (the extension) that is a hex hash of at least 6 characters with at
// least one digit and one letter (so words like "facade" and dates like
// "202401" do not count): app.3f9a1c.js, vendor.chunk.0a1b2c3d4e.css.
func fingerprinted(p []byte) bool {
	name := p
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			name = p[i+1:]
			break
		}
	}
	first := true
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			continue
		}
		part := name[start:i]
		if !first && i < len(name) && isHash(part) {
			return true
		}
		first = false
		start = i + 1
	}
	return false
}

func isHash(s []byte) bool {
	if len(s) < 6 {
		return false
	}
	digit, letter := false, false
	for _, c := range s {
		switch {
		case '0' <= c && c <= '9':
			digit = true
		case 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
			letter = true
		default:
			return false
		}
	}
	return digit && letter
}
