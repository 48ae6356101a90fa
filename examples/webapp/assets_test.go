package main

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// TestStaticFingerprints: every file in static/ is named after its content,
// so an edit without a rename (which the edge would keep serving from cache
// forever) fails here.
func TestStaticFingerprints(t *testing.T) {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(static, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no static files embedded")
	}
	for _, e := range entries {
		content, err := fs.ReadFile(static, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		_, hash, ok := logicalName(e.Name())
		if !ok {
			t.Errorf("%s has no fingerprint", e.Name())
			continue
		}
		if want := fingerprint(content); hash != want {
			t.Errorf("%s: content hash is %s; rename it", e.Name(), want)
		}
	}
	names, err := assetNames(static)
	if err != nil {
		t.Fatal(err)
	}
	for _, logical := range []string{"app.css", "app.js"} {
		if !strings.HasPrefix(names[logical], staticPrefix) {
			t.Errorf("no asset for %s: %v", logical, names)
		}
	}
}

func TestLogicalName(t *testing.T) {
	tests := []struct {
		in, logical, hash string
		ok                bool
	}{
		{"app.3f9a1c2b.css", "app.css", "3f9a1c2b", true},
		{"vendor.min.0123abcd.js", "vendor.min.js", "0123abcd", true},
		{"app.css", "", "", false},
		{"app.3f9a1c.css", "", "", false},   // 6 digits
		{"app.3f9a1czz.css", "", "", false}, // not hex
		{".3f9a1c2b.css", "", "", false},
		{"app.3f9a1c2b", "", "", false},
	}
	for _, tt := range tests {
		logical, hash, ok := logicalName(tt.in)
		if logical != tt.logical || hash != tt.hash || ok != tt.ok {
			t.Errorf("logicalName(%q) = %q, %q, %v", tt.in, logical, hash, ok)
		}
	}
}

func TestAssetNamesRejects(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"unfingerprinted", fstest.MapFS{"app.css": {}}, "no 8-digit content fingerprint"},
		{"stale copy", fstest.MapFS{"app.0000aaaa.css": {}, "app.1111bbbb.css": {}}, "already provides app.css"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := assetNames(tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
