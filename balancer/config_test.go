package balancer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/config"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Policy != RoundRobin || c.SlowStart != 0 || c.PanicMode || c.HashKey != "" {
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
		want []string // substrings, one per expected problem; nil = valid
	}{
		{"every policy", Config{Policy: LeastConn, SlowStart: time.Second, PanicMode: true}, nil},
		{"hash by header", Config{Policy: ConsistentHash, HashKey: "header:X-User"}, nil},
		{"hash by cookie", Config{Policy: ConsistentHash, HashKey: "cookie:sid"}, nil},
		{"hash by client ip", Config{Policy: ConsistentHash, HashKey: "client_ip"}, nil},
		{"hash by path", Config{Policy: ConsistentHash, HashKey: "path"}, nil},
		{"unknown policy", Config{Policy: "fastest"}, []string{`policy: "fastest" is not one of consistent_hash, least_conn, p2c_ewma, random, round_robin, sticky_cookie, weighted_round_robin`}},
		{"hash without key", Config{Policy: ConsistentHash}, []string{"hash_key: is required with policy consistent_hash"}},
		{"key without hash", Config{Policy: RoundRobin, HashKey: "path"}, []string{`hash_key: is only used with policies consistent_hash and sticky_cookie, not "round_robin"`}},
		{"bad source", Config{Policy: ConsistentHash, HashKey: "query:id"}, []string{`hash_key: invalid hash key: "query:id" is not header:NAME`}},
		{"header without name", Config{Policy: ConsistentHash, HashKey: "header:"}, []string{"needs a name"}},
		{"bad header name", Config{Policy: ConsistentHash, HashKey: "header:X User"}, []string{`invalid character ' '`}},
		{"path with name", Config{Policy: ConsistentHash, HashKey: "path:x"}, []string{"path takes no name"}},
		{"negative slow start", Config{Policy: Random, SlowStart: -time.Second}, []string{"slow_start: -1s is negative"}},
		{"two problems", Config{Policy: "nope", SlowStart: -1}, []string{"policy:", "slow_start:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var es config.Errors
			if !errors.As(err, &es) || len(es) != len(tt.want) {
				t.Fatalf("Validate = %v, want %d field errors", err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(es[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, es[i].Error(), w)
				}
			}
		})
	}
}

func TestConfigLoadReportsLine(t *testing.T) {
	type upstream struct {
		Name     string `yaml:"name"`
		Balancer Config `yaml:"balancer"`
	}
	doc := "name: web\nbalancer:\n  policy: consistent_hash\n  hash_key: \"cookie:\"\n  slow_start: 30s\n"
	var u upstream
	if err := config.Parse("edge.yaml", []byte(doc), &u, nil); err != nil {
		t.Fatal(err) // upstream has no Validate; check the section by hand below
	}
	if u.Balancer.SlowStart != 30*time.Second || u.Balancer.Policy != ConsistentHash {
		t.Fatalf("decoded %+v", u.Balancer)
	}
	var c Config
	err := config.Parse("lb.yaml", []byte("policy: consistent_hash\nhash_key: \"cookie:\"\n"), &c, nil)
	if err == nil || !strings.Contains(err.Error(), "lb.yaml:2: hash_key:") {
		t.Errorf("Parse error = %v, want it located at lb.yaml:2 hash_key", err)
	}
}

func TestParseHashKey(t *testing.T) {
	tests := []struct {
		in      string
		want    HashKey
		wantErr bool
	}{
		{"header:X-User", HashKey{HashHeader, "X-User"}, false},
		{"cookie:sid", HashKey{HashCookie, "sid"}, false},
		{"client_ip", HashKey{HashClientIP, ""}, false},
		{"path", HashKey{HashPath, ""}, false},
		{"", HashKey{}, true},
		{"header", HashKey{}, true},
		{"cookie:", HashKey{}, true},
		{"cookie:a=b", HashKey{}, true},
		{"header:Ünïcode", HashKey{}, true},
		{"client_ip:x", HashKey{}, true},
		{"Header:X", HashKey{}, true},
	}
	for _, tt := range tests {
		got, err := ParseHashKey(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseHashKey(%q) = %+v, %v; want %+v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrHashKey) {
			t.Errorf("ParseHashKey(%q) error %v does not wrap ErrHashKey", tt.in, err)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("HashKey.String() = %q, want %q", got.String(), tt.in)
		}
	}
}
