package sqlroute

import (
	"fmt"
	"strings"
	"testing"
)

// lexAll renders the tokens of s as "kind:text" strings.
func lexAll(s string) []string {
	var out []string
	l := lexer{s: s}
	for t := l.next(); t.kind != tokEOF; t = l.next() {
		out = append(out, fmt.Sprintf("%s:%s", tokKindNames[t.kind], s[t.start:t.end]))
	}
	return out
}

var tokKindNames = map[tokKind]string{
	tokIdent: "id", tokQuotedIdent: "qid", tokString: "str", tokNumber: "num",
	tokParam: "param", tokOp: "op", tokPunct: "p", tokHint: "hint", tokBad: "bad",
}

func TestLexer(t *testing.T) {
	tests := []struct {
		in   string
		want string // tokens joined by " | "
	}{
		{"SELECT a1_$b FROM t", "id:SELECT | id:a1_$b | id:FROM | id:t"},
		{"'it''s' E'a\\'b' e'\\\\' 'a\\'", `str:'it''s' | str:E'a\'b' | str:e'\\' | str:'a\'`},
		{"B'01' X'ff' N'n' U&'u' U&\"q\"", `str:B'01' | str:X'ff' | str:N'n' | str:U&'u' | qid:U&"q"`},
		{`"a""b" "x"`, `qid:"a""b" | qid:"x"`},
		{"$$a$$ $tag$ $$ $tag$ $x_1$y$x_1$", "str:$$a$$ | str:$tag$ $$ $tag$ | str:$x_1$y$x_1$"},
		{"$1 $23 $ $a", "param:$1 | param:$23 | p:$ | p:$ | id:a"},
		{"1 1.5 .5 1e10 1.5E-3 0x1F 0o7 0b1 1_000 5.", "num:1 | num:1.5 | num:.5 | num:1e10 | num:1.5E-3 | num:0x1F | num:0o7 | num:0b1 | num:1_000 | num:5."},
		{"12abc 1..2", "bad:12abc | num:1 | p:. | num:.2"},
		{"a::int b:=1 c:d", "id:a | p::: | id:int | id:b | p::= | num:1 | id:c | p:: | id:d"},
		{"a<>b a->>b a||b !~* @>", "id:a | op:<> | id:b | id:a | op:->> | id:b | id:a | op:|| | id:b | op:!~* | op:@>"},
		{"a+-- comment\nb", "id:a | op:+ | id:b"},
		{"a*/*c*/b", "id:a | op:* | id:b"},
		{"-- only\n", ""},
		{"/* a /* b */ c */ x", "id:x"},
		{"/* a /* b */ x", "bad:/* a /* b */ x"},
		{"/*/ x */ y", "id:y"},
		{"/**/x", "id:x"},
		{"/* tiergate: primary */ /*tiergate:replica*/ /* tiergate */", "hint:/* tiergate: primary */ | hint:/*tiergate:replica*/"},
		{"/* tiergate: cache ttl=1s */ /*tiergate:nocache*/ /* tiergate: cache ttl=x */", "hint:/* tiergate: cache ttl=1s */ | hint:/*tiergate:nocache*/"},
		{"'open", "bad:'open"},
		{`"open`, `bad:"open`},
		{"$$open", "bad:$$open"},
		{"E'a\\", `bad:E'a\`},
		{"( ) [ ] , ; . { } \\", "p:( | p:) | p:[ | p:] | p:, | p:; | p:. | p:{ | p:} | p:\\"},
		{"naïve 'ü' \"é\" $€$x$€$", "id:naïve | str:'ü' | qid:\"é\" | str:$€$x$€$"},
		{"a\x00b", "id:a | p:\x00 | id:b"},
		{"x'", "bad:x'"},
		{"u&x", "id:u | op:& | id:x"},
		{"e", "id:e"},
	}
	for _, tc := range tests {
		got := strings.Join(lexAll(tc.in), " | ")
		if got != tc.want {
			t.Errorf("lex(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestParseHint(t *testing.T) {
	tests := []struct {
		body  string
		want  hint
		value string
	}{
		{" tiergate: shard=1 ", hintShard, "1"},
		{"tiergate: SHARD = s2", hintShard, "s2"},
		{"tiergate: shard_key=42", hintShardKey, "42"},
		{"tiergate:shard_key = 'a b'", hintShardKey, "a b"},
		{"tiergate: shard_key=", hintNone, ""},
		{"tiergate: shard_key='it''s'", hintNone, ""},
		{"tiergate: shardkey=1", hintNone, ""},
		{" tiergate: primary ", hintPrimary, ""},
		{"tiergate:replica", hintReplica, ""},
		{"\tTIERGATE :\nREPLICA\t", hintReplica, ""},
		{"tiergate: Primary", hintPrimary, ""},
		{"tiergate primary", hintNone, ""},
		{"tiergate: primary, replica", hintNone, ""},
		{"tiergate:", hintNone, ""},
		{"tiergat: primary", hintNone, ""},
		{"xtiergate: primary", hintNone, ""},
		{"tiergate: sideways", hintNone, ""},
		{"tiergate: cache", hintCache, ""},
		{" TIERGATE:CACHE ", hintCache, ""},
		{"tiergate: cache ttl=30s", hintCache, "30s"},
		{"tiergate:cache   TTL = '1m' ", hintCache, "1m"},
		{"tiergate: Cache\tttl=1h30m", hintCache, "1h30m"},
		{"tiergate: cache ttl=500ms", hintCache, "500ms"},
		{"tiergate: nocache", hintNoCache, ""},
		{"tiergate: NOCACHE ", hintNoCache, ""},
		{"tiergate: cache ttl=abc", hintNone, ""},
		{"tiergate: cache ttl=", hintNone, ""},
		{"tiergate: cache ttl", hintNone, ""},
		{"tiergate: cache ttl=30", hintNone, ""}, // a Go duration needs a unit
		{"tiergate: cache ttl=5S", hintNone, ""},
		{"tiergate: cache ttl=-5s", hintNone, ""},
		{"tiergate: cache ttl=0s", hintNone, ""},
		{"tiergate: cache ttl=5s extra", hintNone, ""},
		{"tiergate: cache ttl='5s", hintNone, ""},
		{"tiergate: cachettl=5s", hintNone, ""},
		{"tiergate: cached", hintNone, ""},
		{"tiergate: cache size=5", hintNone, ""},
		{"tiergate: replica cache", hintNone, ""},
		{"tiergate: no cache", hintNone, ""},
		{"", hintNone, ""},
	}
	for _, tc := range tests {
		if got, v := parseHint(tc.body); got != tc.want || v != tc.value {
			t.Errorf("parseHint(%q) = %d %q, want %d %q", tc.body, got, v, tc.want, tc.value)
		}
	}
}
