package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testBackend struct {
	Address string `yaml:"address"`
	Weight  int    `yaml:"weight"`
}

func (b *testBackend) SetDefaults() {
	if b.Weight == 0 {
		b.Weight = 1
	}
}

func (b *testBackend) Validate() error {
	var errs []error
	if err := CheckHostPort("address", b.Address, false); err != nil {
		errs = append(errs, err)
	}
	if b.Weight < 0 || b.Weight > 256 {
		errs = append(errs, Errorf("weight", "%d is outside 0..256", b.Weight))
	}
	return Join(errs...)
}

type testUpstream struct {
	Name     string        `yaml:"name"`
	Timeout  time.Duration `yaml:"timeout"`
	MaxBody  ByteSize      `yaml:"max_body"`
	Backends []testBackend `yaml:"backends"`
}

type testCommon struct {
	Level string `yaml:"level"`
}

type testFile struct {
	testCommon `yaml:",inline"`
	Secret     string            `yaml:"secret"`
	Upstreams  []testUpstream    `yaml:"upstreams"`
	Labels     map[string]string `yaml:"labels"`
}

func (f *testFile) SetDefaults() {
	for i := range f.Upstreams {
		for j := range f.Upstreams[i].Backends {
			f.Upstreams[i].Backends[j].SetDefaults()
		}
	}
}

func (f *testFile) Validate() error {
	var errs []error
	if len(f.Upstreams) == 0 {
		errs = append(errs, Errorf("upstreams", "at least one upstream is required"))
	}
	for i, u := range f.Upstreams {
		if u.Name == "" {
			errs = append(errs, At("upstreams", i, Errorf("name", "is required")))
		}
		for j := range u.Backends {
			errs = append(errs, At("upstreams", i, At("backends", j, u.Backends[j].Validate())))
		}
	}
	return Join(errs...)
}

func env(vars map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseValid(t *testing.T) {
	src := `
level: debug
secret: ${TOKEN}
labels: {team: "${TEAM:-core}"}
upstreams:
  - name: web
    timeout: 2s
    max_body: 64KiB
    backends:
      - address: 127.0.0.1:8080
      - address: "${HOST}:${PORT}"
        weight: 3
`
	var f testFile
	err := Parse("edge.yaml", []byte(src), &f, env(map[string]string{"TOKEN": "s3cr$t", "HOST": "127.0.0.2", "PORT": "81"}))
	if err != nil {
		t.Fatal(err)
	}
	if f.Level != "debug" || f.Secret != "s3cr$t" || f.Labels["team"] != "core" {
		t.Fatalf("got %+v", f)
	}
	u := f.Upstreams[0]
	if u.Timeout != 2*time.Second || u.MaxBody != 64<<10 || u.Backends[0].Weight != 1 || u.Backends[1].Address != "127.0.0.2:81" || u.Backends[1].Weight != 3 {
		t.Fatalf("got %+v", u)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error, in order
	}{
		{
			name: "unknown key",
			src:  "upstreams:\n  - name: web\n    backendz: []\n",
			want: []string{"edge.yaml:3: upstreams[0].backendz: unknown field", `did you mean "backends"`},
		},
		{
			name: "unknown top-level key beside inline",
			src:  "level: info\nlevle: x\nupstreams: [{name: a}]\n",
			want: []string{"edge.yaml:2: levle: unknown field"},
		},
		{
			name: "wrong type",
			src:  "upstreams:\n  - name: web\n    backends:\n      - address: 127.0.0.1:1\n        weight: heavy\n",
			want: []string{"edge.yaml:5: upstreams[0].backends[0].weight: cannot use !!str `heavy` into int"},
		},
		{
			name: "bad duration",
			src:  "upstreams:\n  - name: web\n    timeout: soon\n",
			want: []string{"edge.yaml:3: upstreams[0].timeout:"},
		},
		{
			name: "bad size",
			src:  "upstreams:\n  - name: web\n    max_body: lots\n",
			want: []string{"edge.yaml:3: upstreams[0].max_body:", "invalid size"},
		},
		{
			name: "missing required field points at its parent",
			src:  "upstreams:\n  - timeout: 1s\n",
			want: []string{"edge.yaml:2: upstreams[0].name: is required"},
		},
		{
			name: "missing section",
			src:  "level: info\n",
			want: []string{"edge.yaml:0: upstreams: at least one upstream is required"},
		},
		{
			name: "invalid value",
			src:  "upstreams:\n  - name: web\n    backends:\n      - address: 127.0.0.1:8080\n      - address: 10.0.0.1\n",
			want: []string{`edge.yaml:5: upstreams[0].backends[1].address: "10.0.0.1" has no port`},
		},
		{
			name: "several errors at once",
			src:  "upstreams:\n  - backends:\n      - address: x\n        weight: 999\n",
			want: []string{"edge.yaml:2: upstreams[0].name: is required", "edge.yaml:3: upstreams[0].backends[0].address", "edge.yaml:4: upstreams[0].backends[0].weight: 999 is outside"},
		},
		{
			name: "unset env var",
			src:  "secret: ${NOPE}\nupstreams: [{name: a}]\n",
			want: []string{"edge.yaml:1: secret: environment variable NOPE is not set"},
		},
		{
			name: "syntax error",
			src:  "upstreams:\n  - name: [a\n",
			want: []string{"edge.yaml:"},
		},
		{
			name: "duplicate key",
			src:  "level: a\nlevel: b\nupstreams: [{name: a}]\n",
			want: []string{"edge.yaml:2: level:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f testFile
			err := Parse("edge.yaml", []byte(tc.src), &f, env(nil))
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			msg := strings.ReplaceAll(err.Error(), "edge.yaml: ", "edge.yaml:0: ")
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q does not contain %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.yaml")
	if err := os.WriteFile(p, []byte("upstreams:\n  - name: a\n    nope: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var f testFile
	err := Load(p, &f)
	if err == nil || !strings.HasPrefix(err.Error(), p+":3: upstreams[0].nope") {
		t.Fatalf("got %v", err)
	}
	if err := Load(filepath.Join(dir, "missing.yaml"), &f); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("missing file: got %v", err)
	}
}

func TestExpandEnv(t *testing.T) {
	e := env(map[string]string{"A": "1", "EMPTY": ""})
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "1", ""},
		{"x${A}y${A}", "x1y1", ""},
		{"$$A", "$A", ""},
		{"cost $5", "cost $5", ""},
		{"${EMPTY:-d}", "d", ""},
		{"${EMPTY}", "", ""},
		{"${B:-dflt}", "dflt", ""},
		{"${B}", "", "not set"},
		{"${A", "", "unterminated"},
		{"${1A}", "", "invalid"},
	}
	for _, tc := range tests {
		got, err := ExpandEnv(tc.in, e)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"512", 512, true}, {"64KiB", 64 << 10, true}, {"1MiB", 1 << 20, true}, {"2GB", 2e9, true},
		{"1 MiB", 1 << 20, true}, {"-1", 0, false}, {"x", 0, false}, {"99999999999GiB", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: got %v, %v", tc.in, got, err)
		}
	}
	if s := ByteSize(64 << 10).String(); s != "64KiB" {
		t.Errorf("String: %s", s)
	}
}

func TestCheckHostPort(t *testing.T) {
	tests := []struct {
		addr      string
		emptyHost bool
		want      string
	}{
		{"127.0.0.1:80", false, ""},
		{"[::1]:80", false, ""},
		{":80", true, ""},
		{":80", false, "has no host"},
		{"10.0.0.1", false, "has no port"},
		{"", false, "is required"},
		{"h:99999", false, "invalid port"},
	}
	for _, tc := range tests {
		err := CheckHostPort("a", tc.addr, tc.emptyHost)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: got %v want %q", tc.addr, err, tc.want)
		}
	}
	if !IsLoopback("127.0.0.1:1") || !IsLoopback("localhost:2") || !IsLoopback("[::1]:3") || IsLoopback(":4") || IsLoopback("0.0.0.0:5") {
		t.Error("IsLoopback")
	}
}
