package querycache

import (
	"testing"
	"time"
)

func defaultedConfig(mod func(*Config)) Config {
	var c Config
	if mod != nil {
		mod(&c)
	}
	c.SetDefaults()
	return c
}

func TestPolicyTTL(t *testing.T) {
	off := false
	const dig = 0xabc123
	tests := []struct {
		name   string
		rules  *Rules
		cfg    func(*Config)
		q      Query
		want   time.Duration
		wantOK bool
	}{
		{name: "no rules no hint", rules: nil, q: Query{Tables: []string{"products"}}},
		{name: "unqualified rule, unqualified read", rules: &Rules{Tables: []string{"products"}},
			q: Query{Tables: []string{"products"}}, want: 30 * time.Second, wantOK: true},
		{name: "unqualified rule matches any schema", rules: &Rules{Tables: []string{"products"}},
			q: Query{Tables: []string{"shop.products"}}, want: 30 * time.Second, wantOK: true},
		{name: "unqualified rule matches quoted schema", rules: &Rules{Tables: []string{"products"}},
			q: Query{Tables: []string{`"Shop".products`}}, want: 30 * time.Second, wantOK: true},
		{name: "unqualified rule is folded", rules: &Rules{Tables: []string{"  Products "}},
			q: Query{Tables: []string{"products"}}, want: 30 * time.Second, wantOK: true},
		{name: "qualified rule exact", rules: &Rules{Tables: []string{"shop.products"}},
			q: Query{Tables: []string{"shop.products"}}, want: 30 * time.Second, wantOK: true},
		{name: "qualified rule, unqualified read", rules: &Rules{Tables: []string{"shop.products"}},
			q: Query{Tables: []string{"products"}}},
		{name: "qualified rule, other schema", rules: &Rules{Tables: []string{"shop.products"}},
			q: Query{Tables: []string{"other.products"}}},
		{name: "qualified rule folded", rules: &Rules{Tables: []string{"Shop.Products"}},
			q: Query{Tables: []string{"shop.products"}}, want: 30 * time.Second, wantOK: true},
		{name: "qualified rule folded, quoted read keeps case", rules: &Rules{Tables: []string{"Shop.Products"}},
			q: Query{Tables: []string{`"Shop".products`}}},
		{name: "quoted rule keeps case", rules: &Rules{Tables: []string{`"Mixed"`}},
			q: Query{Tables: []string{`"Mixed"`}}, want: 30 * time.Second, wantOK: true},
		{name: "quoted rule, lower-case read", rules: &Rules{Tables: []string{`"Mixed"`}},
			q: Query{Tables: []string{"mixed"}}},
		{name: "unquoted rule, quoted mixed-case read", rules: &Rules{Tables: []string{"Mixed"}},
			q: Query{Tables: []string{`"Mixed"`}}},
		{name: "quoted qualified rule", rules: &Rules{Tables: []string{`"Shop"."Items"`}},
			q: Query{Tables: []string{`"Shop"."Items"`}}, want: 30 * time.Second, wantOK: true},
		{name: "quoted qualified rule, folded read", rules: &Rules{Tables: []string{`"Shop"."Items"`}},
			q: Query{Tables: []string{"shop.items"}}},
		{name: "rule with a quoted dot", rules: &Rules{Tables: []string{`"a.b"`}},
			q: Query{Tables: []string{`"a.b"`}}, want: 30 * time.Second, wantOK: true},
		{name: "rule with a quoted dot is not schema a", rules: &Rules{Tables: []string{`"a.b"`}},
			q: Query{Tables: []string{"a.b"}}},
		{name: "qualified rule with a quoted dot", rules: &Rules{Tables: []string{`s."a.b"`}},
			q: Query{Tables: []string{`s."a.b"`}}, want: 30 * time.Second, wantOK: true},
		{name: "qualified names do not collide on dots", rules: &Rules{Tables: []string{`"a.b".c`}},
			q: Query{Tables: []string{`a."b.c"`}}},
		{name: "doubled quote in rule", rules: &Rules{Tables: []string{`"a""b"`}},
			q: Query{Tables: []string{`"a""b"`}}, want: 30 * time.Second, wantOK: true},
		{name: "every table must match", rules: &Rules{Tables: []string{"products", "orders"}},
			q: Query{Tables: []string{"products", "users"}}},
		{name: "every table matches", rules: &Rules{Tables: []string{"products", "shop.orders"}},
			q: Query{Tables: []string{"products", "shop.orders"}}, want: 30 * time.Second, wantOK: true},
		{name: "no tables read", rules: &Rules{Tables: []string{"products"}}, q: Query{}},
		{name: "user function blocks table rules", rules: &Rules{Tables: []string{"products"}},
			q: Query{Tables: []string{"products"}, UserFunction: true}},
		{name: "user function, digest rule", rules: &Rules{Tables: []string{"products"}, Digests: []string{"abc123"}},
			q: Query{Tables: []string{"products"}, UserFunction: true, Digest: dig}, want: 30 * time.Second, wantOK: true},
		{name: "user function, hint", rules: nil,
			q: Query{Tables: []string{"products"}, UserFunction: true, Hint: true}, want: 30 * time.Second, wantOK: true},
		{name: "digest rule reads anything", rules: &Rules{Digests: []string{"0xABC123"}},
			q: Query{Tables: []string{"unlisted"}, Digest: dig}, want: 30 * time.Second, wantOK: true},
		{name: "digest rule without tables", rules: &Rules{Digests: []string{"abc123"}},
			q: Query{Digest: dig}, want: 30 * time.Second, wantOK: true},
		{name: "other digest", rules: &Rules{Digests: []string{"abc124"}},
			q: Query{Tables: []string{"unlisted"}, Digest: dig}},
		{name: "rule ttl", rules: &Rules{Tables: []string{"products"}, TTL: 10 * time.Minute},
			q: Query{Tables: []string{"products"}}, want: 10 * time.Minute, wantOK: true},
		{name: "rule ttl capped", rules: &Rules{Tables: []string{"products"}, TTL: 2 * time.Hour},
			q: Query{Tables: []string{"products"}}, want: time.Hour, wantOK: true},
		{name: "digest rule ttl", rules: &Rules{Digests: []string{"abc123"}, TTL: time.Minute},
			q: Query{Digest: dig}, want: time.Minute, wantOK: true},
		{name: "hint default ttl", rules: nil, cfg: func(c *Config) { c.DefaultTTL = 7 * time.Second },
			q: Query{Hint: true}, want: 7 * time.Second, wantOK: true},
		{name: "hint ttl", rules: nil, q: Query{Hint: true, HintTTL: 5 * time.Second}, want: 5 * time.Second, wantOK: true},
		{name: "hint ttl capped by max_ttl", rules: nil, cfg: func(c *Config) { c.MaxTTL = time.Minute },
			q: Query{Hint: true, HintTTL: time.Hour}, want: time.Minute, wantOK: true},
		{name: "hint overrides rule ttl", rules: &Rules{Tables: []string{"products"}, TTL: time.Minute},
			q: Query{Tables: []string{"products"}, Hint: true, HintTTL: 3 * time.Second}, want: 3 * time.Second, wantOK: true},
		{name: "hints off", rules: nil, cfg: func(c *Config) { c.Hints = &off },
			q: Query{Tables: []string{"products"}, Hint: true, HintTTL: 5 * time.Second}},
		{name: "hints off, rules still apply", rules: &Rules{Tables: []string{"products"}}, cfg: func(c *Config) { c.Hints = &off },
			q: Query{Tables: []string{"products"}, Hint: true, HintTTL: 5 * time.Second}, want: 30 * time.Second, wantOK: true},
		{name: "nocache beats hint", rules: nil, q: Query{Hint: true, NoCache: true}},
		{name: "nocache beats table rule", rules: &Rules{Tables: []string{"products"}},
			q: Query{Tables: []string{"products"}, NoCache: true}},
		{name: "nocache beats digest rule", rules: &Rules{Digests: []string{"abc123"}},
			q: Query{Digest: dig, NoCache: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rules != nil {
				if err := tt.rules.Validate(); err != nil {
					t.Fatalf("rules do not validate: %v", err)
				}
			}
			p := NewPolicy(tt.rules, defaultedConfig(tt.cfg))
			got, ok := p.TTL(tt.q)
			if ok != tt.wantOK || got != tt.want {
				t.Fatalf("TTL(%+v) = %v, %v; want %v, %v", tt.q, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPolicyHasRules(t *testing.T) {
	cfg := defaultedConfig(nil)
	tests := []struct {
		rules *Rules
		want  bool
	}{
		{nil, false},
		{&Rules{}, false},
		{&Rules{TTL: time.Minute}, false},
		{&Rules{Tables: []string{"a"}}, true},
		{&Rules{Tables: []string{"s.a"}}, true},
		{&Rules{Digests: []string{"ff"}}, true},
	}
	for i, tt := range tests {
		if got := NewPolicy(tt.rules, cfg).HasRules(); got != tt.want {
			t.Errorf("%d: HasRules(%+v) = %v, want %v", i, tt.rules, got, tt.want)
		}
	}
}

func TestSplitTable(t *testing.T) {
	tests := []struct {
		in, schema, name string
	}{
		{"products", "", "products"},
		{"shop.products", "shop", "products"},
		{`"Mixed"`, "", "Mixed"},
		{`"Shop"."Mixed"`, "Shop", "Mixed"},
		{`"a.b"`, "", "a.b"},
		{`s."a.b"`, "s", "a.b"},
		{`"x.y"."a.b"`, "x.y", "a.b"},
		{`"a""b"`, "", `a"b`},
		{`"a"".b"`, "", `a".b`},
		{`"a"".b".c`, `a".b`, "c"},
		{`s."a""b"`, "s", `a"b`},
		{`""""`, "", `"`},
		{"db.s.t", "db.s", "t"},
		{"", "", ""},
	}
	for _, tt := range tests {
		schema, name := splitTable(tt.in)
		if schema != tt.schema || name != tt.name {
			t.Errorf("splitTable(%q) = %q, %q; want %q, %q", tt.in, schema, name, tt.schema, tt.name)
		}
		if got := TableKey(tt.in); got != tt.name {
			t.Errorf("TableKey(%q) = %q, want %q", tt.in, got, tt.name)
		}
	}
}

func TestSplitRuleTable(t *testing.T) {
	tests := []struct {
		in, schema, name string
		ok               bool
	}{
		{"products", "", "products", true},
		{" Products ", "", "products", true},
		{"Shop.Products", "shop", "products", true},
		{`"Mixed"`, "", "Mixed", true},
		{`"a.b"`, "", "a.b", true},
		{`s."a.b"`, "s", "a.b", true},
		{`"S"."a""b"`, "S", `a"b`, true},
		{"", "", "", false},
		{"  ", "", "", false},
		{`""`, "", "", false},
		{"a.b.c", "", "", false},
		{".b", "", "", false},
		{"a.", "", "", false},
		{`"open`, "", "", false},
		{`s."open`, "", "", false},
	}
	for _, tt := range tests {
		schema, name, ok := splitRuleTable(tt.in)
		if schema != tt.schema || name != tt.name || ok != tt.ok {
			t.Errorf("splitRuleTable(%q) = %q, %q, %v; want %q, %q, %v", tt.in, schema, name, ok, tt.schema, tt.name, tt.ok)
		}
	}
}
