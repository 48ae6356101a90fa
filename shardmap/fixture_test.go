package shardmap

import (
	"testing"

	"github.com/tiergate/tiergate/internal/config"
)

// parseConfig loads a YAML shard map the way cmd/dbproxy does.
func parseConfig(t testing.TB, src string) (*Config, error) {
	t.Helper()
	var c Config
	err := config.Parse("shards.yaml", []byte(src), &c, func(string) (string, bool) { return "", false })
	return &c, err
}

// mustMap compiles a YAML shard map or fails the test.
func mustMap(t testing.TB, src string) *Map {
	t.Helper()
	c, err := parseConfig(t, src)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	m, err := New(*c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// testMapYAML has one table per function and key type.
const testMapYAML = `
version: 7
shards: [s0, s1, s2, s3]
key_spaces:
  - name: users
    type: bigint
    function: hash
    partitions: 1024
tables:
  - {table: public.users, column: id, key_space: users}
  - {table: orders, column: user_id, key_space: users}
  - {table: hash_text, column: k, type: text, function: hash}
  - {table: hash_uuid, column: k, type: uuid, function: hash}
  - {table: mod_bigint, column: k, type: bigint, function: modulo}
  - table: range_bigint
    column: k
    function: range
    ranges:
      - {to: 0, shard: s3}
      - {from: 0, to: 100, shard: s0}
      - {from: 100, to: 200, shard: 1}
      - {from: 300, shard: s2}
    default: s3
  - table: range_text
    column: k
    type: text
    function: range
    ranges:
      - {to: "h", shard: s0}
      - {from: "h", to: "p", shard: s1}
      - {from: "p", shard: s2}
  - table: range_uuid
    column: k
    type: uuid
    function: range
    ranges:
      - {to: "40000000-0000-0000-0000-000000000000", shard: s0}
      - {from: "40000000-0000-0000-0000-000000000000", to: "80000000-0000-0000-0000-000000000000", shard: s1}
      - {from: "c0000000-0000-0000-0000-000000000000", shard: s2}
    default: s3
  - table: list_bigint
    column: k
    function: list
    list:
      - {values: [1, 2, 3], shard: s1}
      - {values: [-7, 0x10], shard: s2}
    default: s0
  - table: list_text
    column: k
    type: text
    function: list
    list:
      - {values: [us, ca], shard: s0}
      - {values: [de, fr, ""], shard: s1}
  - table: list_uuid
    column: k
    type: uuid
    function: list
    list:
      - {values: ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], shard: s3}
    default: s1
reference_tables: [countries, geo.cities]
`
