package httpcache

import (
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{MaxSize: 64 << 20, MaxObjectSize: 1 << 20, CoalesceTimeout: 5 * time.Second}
	if c != want {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    Config
		wantErr []string
	}{
		{
			name: "full",
			yaml: "enabled: true\nmax_size: 256MiB\nmax_object_size: 4MiB\ndefault_ttl: 1m\nstale_while_revalidate: 10s\nstale_if_error: 1h\nhonor_client_no_cache: true\ncoalesce_timeout: 2s\n",
			want: Config{Enabled: true, MaxSize: 256 << 20, MaxObjectSize: 4 << 20, DefaultTTL: time.Minute,
				StaleWhileRevalidate: 10 * time.Second, StaleIfError: time.Hour, HonorClientNoCache: true, CoalesceTimeout: 2 * time.Second},
		},
		{
			name: "defaults",
			yaml: "enabled: true\n",
			want: Config{Enabled: true, MaxSize: 64 << 20, MaxObjectSize: 1 << 20, CoalesceTimeout: 5 * time.Second},
		},
		{
			name:    "object larger than cache",
			yaml:    "max_size: 1MiB\nmax_object_size: 2MiB\n",
			wantErr: []string{"cache.yaml:2: max_object_size: 2MiB is larger than max_size 1MiB"},
		},
		{
			name:    "object over limit",
			yaml:    "max_size: 4GiB\nmax_object_size: 2GiB\n",
			wantErr: []string{"max_object_size: 2GiB is over the 1GiB limit"},
		},
		{
			name:    "negative durations",
			yaml:    "default_ttl: -1s\nstale_if_error: -5s\n",
			wantErr: []string{"cache.yaml:1: default_ttl: must not be negative", "cache.yaml:2: stale_if_error: must not be negative"},
		},
		{
			name:    "unknown key",
			yaml:    "max_sise: 1MiB\n",
			wantErr: []string{"max_sise"},
		},
		{
			name:    "bad size",
			yaml:    "max_size: lots\n",
			wantErr: []string{"invalid size"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			err := config.Parse("cache.yaml", []byte(tt.yaml), &c, func(string) (string, bool) { return "", false })
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c != tt.want {
					t.Fatalf("got %+v, want %+v", c, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{MaxSize: 10, MaxObjectSize: 20}, Options{}); err == nil {
		t.Fatal("New accepted an invalid config")
	}
	c, err := New(Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Config().MaxSize != DefaultMaxSize {
		t.Fatal("defaults not applied")
	}
}
