package querycache

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if !c.On() || !c.HintsOn() {
		t.Fatalf("On/HintsOn = %v/%v, want true/true", c.On(), c.HintsOn())
	}
	want := Config{Enabled: c.Enabled, Hints: c.Hints, MaxSize: 64 << 20, MaxEntrySize: 1 << 20,
		DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, InvalidationGrace: time.Second, BroadcastDelay: 5 * time.Millisecond,
		CoalesceTimeout: c.CoalesceTimeout}
	if c.Coalesce() != 5*time.Second {
		t.Fatalf("coalesce_timeout default %v, want 5s", c.Coalesce())
	}
	if c != want {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}

	off := false
	coalesce := time.Second
	set := Config{Enabled: &off, Hints: &off, MaxSize: 2 << 20, MaxEntrySize: 1024, DefaultTTL: time.Minute,
		MaxTTL: 2 * time.Minute, InvalidationGrace: 3 * time.Second, BroadcastDelay: time.Millisecond, CoalesceTimeout: &coalesce}
	got := set
	got.SetDefaults()
	if got != set {
		t.Fatalf("SetDefaults changed set fields: %+v, want %+v", got, set)
	}
	if got.On() || got.HintsOn() {
		t.Fatalf("On/HintsOn = %v/%v, want false/false", got.On(), got.HintsOn())
	}
	var zero Config
	if !zero.On() || !zero.HintsOn() {
		t.Fatal("nil Enabled/Hints must mean on")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"negative max_size", func(c *Config) { c.MaxSize = -1 }, []string{"max_size", "max_entry_size"}},
		{"negative max_entry_size", func(c *Config) { c.MaxEntrySize = -1 }, []string{"max_entry_size"}},
		{"entry larger than cache", func(c *Config) { c.MaxSize = 1 << 20; c.MaxEntrySize = 2 << 20 }, []string{"max_entry_size"}},
		{"entry as large as cache", func(c *Config) { c.MaxSize = 1 << 20; c.MaxEntrySize = 1 << 20 }, nil},
		{"negative default_ttl", func(c *Config) { c.DefaultTTL = -time.Second }, []string{"default_ttl"}},
		{"max_ttl below default_ttl", func(c *Config) { c.DefaultTTL = time.Minute; c.MaxTTL = time.Second }, []string{"max_ttl"}},
		{"negative invalidation_grace", func(c *Config) { c.InvalidationGrace = -1 }, []string{"invalidation_grace"}},
		{"negative broadcast_delay", func(c *Config) { c.BroadcastDelay = -1 }, []string{"broadcast_delay"}},
		{"long broadcast_delay", func(c *Config) { c.BroadcastDelay = 2 * time.Second }, []string{"broadcast_delay"}},
		{"several", func(c *Config) { c.InvalidationGrace = -1; c.BroadcastDelay = -1 }, []string{"invalidation_grace", "broadcast_delay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			tt.mod(&c)
			err := c.Validate()
			if got := fieldPaths(err); !slices.Equal(got, tt.want) {
				t.Fatalf("Validate() = %v; paths %q, want %q", err, got, tt.want)
			}
		})
	}
}

func TestConfigPathsUnderParent(t *testing.T) {
	c := Config{BroadcastDelay: -1}
	c.SetDefaults()
	err := config.In("query_cache", c.Validate())
	if got := fieldPaths(err); !slices.Equal(got, []string{"query_cache.broadcast_delay"}) {
		t.Fatalf("paths = %q", got)
	}
}

func TestNewConfigErrors(t *testing.T) {
	off := false
	if _, err := New(Config{Enabled: &off}, Options{}); !errors.Is(err, ErrDisabled) {
		t.Fatalf("New(disabled) = %v, want ErrDisabled", err)
	}
	_, err := New(Config{MaxSize: 1 << 20, MaxEntrySize: 2 << 20}, Options{})
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Path != "max_entry_size" {
		t.Fatalf("New(invalid) = %v, want a max_entry_size FieldError", err)
	}
	c := newTestCache(t, Config{}, nil)
	if got := c.Config(); got.MaxSize != 64<<20 || !got.On() {
		t.Fatalf("Config() = %+v, want defaults", got)
	}
	if used, max := c.Size(); used != 0 || max != 64<<20 {
		t.Fatalf("Size() = %d, %d", used, max)
	}
}

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		want  []string
	}{
		{"empty", Rules{}, nil},
		{"good", Rules{Tables: []string{"products", "shop.orders", `"Mixed"`, `s."a.b"`, `"a""b"`},
			Digests: []string{"abc", "0xABC", " 0Xff ", "ffffffffffffffff"}, TTL: time.Minute}, nil},
		{"bad tables", Rules{Tables: []string{"ok", "", "a.b.c", " ", `"open`, ".x", "x.", `""`}},
			[]string{"tables[1]", "tables[2]", "tables[3]", "tables[4]", "tables[5]", "tables[6]", "tables[7]"}},
		{"bad digests", Rules{Digests: []string{"", "xyz", "12", "0x", "1ffffffffffffffff", "-1"}},
			[]string{"digests[0]", "digests[1]", "digests[3]", "digests[4]", "digests[5]"}},
		{"negative ttl", Rules{TTL: -time.Second}, []string{"ttl"}},
		{"all", Rules{Tables: []string{"a..b"}, Digests: []string{"g"}, TTL: -1}, []string{"tables[0]", "digests[0]", "ttl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.Validate()
			if got := fieldPaths(err); !slices.Equal(got, tt.want) {
				t.Fatalf("Validate() = %v; paths %q, want %q", err, got, tt.want)
			}
		})
	}
}

func TestFormatDigest(t *testing.T) {
	for _, d := range []uint64{0, 1, 0xabc, 1<<64 - 1} {
		s := FormatDigest(d)
		got, err := parseDigest(s)
		if err != nil || got != d {
			t.Errorf("parseDigest(FormatDigest(%#x) = %q) = %#x, %v", d, s, got, err)
		}
		if err := (&Rules{Digests: []string{s}}).Validate(); err != nil {
			t.Errorf("Rules with digest %q: %v", s, err)
		}
	}
}
