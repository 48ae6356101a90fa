package main

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

// Static files live in static/ under fingerprinted names, "app.<hash>.css",
// where <hash> is the first fingerprintLen hex digits of the file's SHA-256.
// The edge serves that directory with a long cache lifetime; changing a file
// means renaming it (a test checks every name against its content), and the
// pages pick the new name up by the logical name ("app.css").
//
//go:embed static
var staticFiles embed.FS

// fingerprintLen is the number of hex digits of the content hash in a name.
const fingerprintLen = 8

// staticPrefix is the URL path the pages use for assets.
const staticPrefix = "/static/"

// fingerprint returns the name part for content: its hash prefix.
func fingerprint(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])[:fingerprintLen]
}

// logicalName turns "app.1a2b3c4d.css" into "app.css"; ok is false when the
// name has no fingerprint.
func logicalName(name string) (logical, hash string, ok bool) {
	ext := strings.LastIndexByte(name, '.')
	if ext <= 0 {
		return "", "", false
	}
	dot := strings.LastIndexByte(name[:ext], '.')
	if dot <= 0 || ext-dot-1 != fingerprintLen {
		return "", "", false
	}
	hash = name[dot+1 : ext]
	if _, err := hex.DecodeString(hash); err != nil {
		return "", "", false
	}
	return name[:dot] + name[ext:], hash, true
}

// assetNames maps each logical name in fsys to its fingerprinted URL path.
// Every file must carry a fingerprint, and two files may not share a logical
// name (an old copy left behind after an edit).
func assetNames(fsys fs.FS) (map[string]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		logical, _, ok := logicalName(e.Name())
		if !ok {
			return nil, fmt.Errorf("static/%s: name has no %d-digit content fingerprint", e.Name(), fingerprintLen)
		}
		if prev, dup := out[logical]; dup {
			return nil, fmt.Errorf("static/%s: %s already provides %s", e.Name(), prev, logical)
		}
		out[logical] = staticPrefix + e.Name()
	}
	return out, nil
}

// staticHandler serves the fingerprinted files (only with -serve-static;
// normally the edge serves them). Names never change content, so they are
// cacheable forever.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.StripPrefix(staticPrefix, http.FileServerFS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, staticPrefix)
		if _, _, ok := logicalName(name); !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
}
