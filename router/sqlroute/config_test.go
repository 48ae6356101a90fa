package sqlroute

import (
	"errors"
	"strings"
	"testing"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.CacheSize != DefaultCacheSize || c.MaxParseBytes != DefaultMaxParseBytes || c.WriteFunctions != nil || c.VolatileFunctions != nil {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // field paths with problems
	}{
		{"ok", Config{WriteFunctions: []string{"f", "s.f", "My_Func"}, VolatileFunctions: []string{"g", "s.g"}, CacheSize: 1, MaxParseBytes: 1}, nil},
		{"bad names", Config{WriteFunctions: []string{"ok", "", "a.b.c", ".f", "f()", "a b"}, CacheSize: 1, MaxParseBytes: 1},
			[]string{"write_functions[1]", "write_functions[2]", "write_functions[3]", "write_functions[4]", "write_functions[5]"}},
		{"bad volatile names", Config{VolatileFunctions: []string{"a.b.c", "ok", "f(x)"}, CacheSize: 1, MaxParseBytes: 1},
			[]string{"volatile_functions[0]", "volatile_functions[2]"}},
		{"sizes", Config{CacheSize: -1, MaxParseBytes: -5}, []string{"cache_size", "max_parse_bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var got []string
			var fes config.Errors
			if errors.As(err, &fes) {
				for _, fe := range fes {
					got = append(got, fe.Path)
				}
			} else if err != nil {
				t.Fatalf("Validate returned %T %v, want config.Errors", err, err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("problems at %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	type file struct {
		Routing Config `yaml:"routing"`
	}
	yaml := `
routing:
  write_functions: [billing.charge, audit_event]
  volatile_functions: [app.next_ticket]
  cache_size: 500
  max_parse_bytes: 64KiB
`
	var f file
	if err := config.Parse("dbproxy.yaml", []byte(yaml), &f, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.Routing; got.CacheSize != 500 || got.MaxParseBytes != 64<<10 || len(got.WriteFunctions) != 2 ||
		len(got.VolatileFunctions) != 1 || got.VolatileFunctions[0] != "app.next_ticket" {
		t.Errorf("parsed %+v", got)
	}

	bad := "routing:\n  write_functions: [\"a.b.c\"]\n"
	var g struct {
		Routing Config `yaml:"routing"`
	}
	err := config.Parse("dbproxy.yaml", []byte(bad), &g, nil)
	// Parent sections call the child's Validate; emulate that here.
	if err == nil {
		g.Routing.SetDefaults()
		err = config.In("routing", g.Routing.Validate())
	}
	if err == nil || !strings.Contains(err.Error(), "routing.write_functions[0]") {
		t.Errorf("error %v, want one naming routing.write_functions[0]", err)
	}
}
