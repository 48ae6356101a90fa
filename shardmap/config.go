package shardmap

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/tiergate/tiergate/internal/config"
)

// Config is a shard map as written in dbproxy's config:
//
//	version: 3
//	shards: [pg0, pg1, pg2]          # or a count: shards: 3
//	key_spaces:
//	  - name: users                  # co-located tables share a key space
//	    type: bigint
//	    function: hash
//	tables:
//	  - {table: public.users, column: id, key_space: users}
//	  - {table: orders, column: user_id, key_space: users}
//	  - table: events
//	    column: region
//	    type: text
//	    function: list
//	    list:
//	      - {values: [us, ca], shard: pg0}
//	      - {values: [de, fr], shard: pg1}
//	    default: pg2
//	reference_tables: [countries, currencies]
//
// New compiles it into a *Map; Validate reports every problem with its field
// path. A parent config where sharding is optional should hold a *Config
// (nil: no sharding), since an empty Config is invalid.
type Config struct {
	// Version identifies the map; the resharder compares versions. Required,
	// at least 1.
	Version int `yaml:"version"`
	// Shards is the number of shards (shards: 4) or their names in order
	// (shards: [pg0, pg1]); shard i is the i-th. Required, 1..4096.
	Shards Shards `yaml:"shards"`
	// KeySpaces are named sharding functions. Tables that name the same key
	// space are co-located: equal keys are on the same shard. Optional.
	KeySpaces []KeySpaceConfig `yaml:"key_spaces"`
	// Tables are the sharded tables. Optional.
	Tables []TableConfig `yaml:"tables"`
	// ReferenceTables are unsharded tables present on every shard, by name
	// (schema-qualified or not, see the package documentation). Optional.
	ReferenceTables []string `yaml:"reference_tables"`
}

// KeySpaceConfig is a named sharding function shared by co-located tables.
type KeySpaceConfig struct {
	// Name is what tables[].key_space refers to. Required, unique.
	Name           string `yaml:"name"`
	FunctionConfig `yaml:",inline"`
}

// TableConfig is one sharded table: either key_space or the function
// fields, not both.
type TableConfig struct {
	// Table is the table name, schema-qualified or not. Required, unique.
	Table string `yaml:"table"`
	// Column is the shard key column. Required.
	Column string `yaml:"column"`
	// KeySpace names a key_spaces entry to use instead of the function
	// fields below. Optional.
	KeySpace       string `yaml:"key_space"`
	FunctionConfig `yaml:",inline"`
}

// FunctionConfig is a sharding function: a key type and how keys of that
// type map to shards.
type FunctionConfig struct {
	// Type is the shard key's PostgreSQL type: bigint, text or uuid.
	// Default bigint.
	Type string `yaml:"type"`
	// Function is hash, modulo (bigint only: key mod shards, negative keys
	// wrap around), range or list. Default hash.
	Function string `yaml:"function"`
	// Partitions is the number of hash partitions, at least the number of
	// shards and at most 1048576. Hash only; default 4096.
	Partitions int `yaml:"partitions"`
	// PartitionTable gives the shard of each partition (exactly
	// partitions entries, shard names or numbers). Hash only; default
	// DefaultPartitionTable(partitions, shards).
	PartitionTable []ShardRef `yaml:"partition_table"`
	// Ranges map non-overlapping [from, to) intervals to shards. Range only,
	// at least one.
	Ranges []RangeConfig `yaml:"ranges"`
	// List maps values to shards. List only, at least one entry.
	List []ListConfig `yaml:"list"`
	// Default is the shard of keys no range or list value matches. Range
	// and list only; default none: such keys fail with ErrUnknownShard.
	Default ShardRef `yaml:"default"`
}

// RangeConfig maps the keys k with from <= k < to to a shard. Bounds are in
// the key type's text form; text compares byte for byte (C collation), uuid
// as 16 unsigned bytes.
type RangeConfig struct {
	// From is the inclusive lower bound; absent means no lower bound.
	From *string `yaml:"from"`
	// To is the exclusive upper bound; absent means no upper bound.
	To *string `yaml:"to"`
	// Shard is the shard name or number. Required.
	Shard ShardRef `yaml:"shard"`
}

// ListConfig maps a set of values to a shard.
type ListConfig struct {
	// Values in the key type's text form; each value may appear once per
	// table. Required.
	Values []string `yaml:"values"`
	// Shard is the shard name or number. Required.
	Shard ShardRef `yaml:"shard"`
}

// ShardRef names a shard in config: one of the shard names, else a shard
// number (0-based).
type ShardRef string

// Compile-time checks of the interfaces the config loader uses.
var (
	_ config.Defaulter = (*Config)(nil)
	_ config.Validator = (*Config)(nil)
	_ yaml.Unmarshaler = (*Shards)(nil)
	_ yaml.Marshaler   = Shards{}
)

// Shards is the shards field: a count or a list of names.
type Shards struct {
	Count int      // shards: 4
	Names []string // shards: [pg0, pg1]; Count is then 0
}

// Len is the number of shards.
func (s Shards) Len() int {
	if s.Names != nil {
		return len(s.Names)
	}
	return s.Count
}

// UnmarshalYAML accepts an integer or a sequence of names.
func (s *Shards) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		c, err := strconv.Atoi(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: shards must be a count or a list of names, got %q", n.Line, n.Value)
		}
		*s = Shards{Count: c}
		return nil
	case yaml.SequenceNode:
		names := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a shard name must be a string", c.Line)
			}
			names = append(names, c.Value)
		}
		*s = Shards{Names: names}
		return nil
	}
	return fmt.Errorf("line %d: shards must be a count or a list of names", n.Line)
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (s Shards) MarshalYAML() (any, error) {
	if s.Names != nil {
		return s.Names, nil
	}
	return s.Count, nil
}

// SetDefaults fills the documented defaults into the function fields of the
// key spaces and of the tables that do not name a key space.
func (c *Config) SetDefaults() {
	for i := range c.KeySpaces {
		c.KeySpaces[i].SetDefaults()
	}
	for i := range c.Tables {
		if c.Tables[i].KeySpace == "" {
			c.Tables[i].SetDefaults()
		}
	}
}

// SetDefaults fills the documented defaults.
func (f *FunctionConfig) SetDefaults() {
	if f.Type == "" {
		f.Type = BigintName
	}
	if f.Function == "" {
		f.Function = HashName
	}
	if f.Function == HashName && f.Partitions == 0 {
		f.Partitions = DefaultPartitions
	}
}

// Validate reports every problem of the config (as config.FieldErrors with
// yaml field paths). It compiles the map, so it is exactly as strict as New.
func (c *Config) Validate() error {
	_, err := compile(c)
	return err
}

func (f *FunctionConfig) isZero() bool {
	return f.Type == "" && f.Function == "" && f.Partitions == 0 && f.PartitionTable == nil &&
		f.Ranges == nil && f.List == nil && f.Default == ""
}

// effective returns the type and function names with defaults applied.
func (f *FunctionConfig) effective() (typ, fn string, partitions int) {
	typ, fn, partitions = f.Type, f.Function, f.Partitions
	if typ == "" {
		typ = BigintName
	}
	if fn == "" {
		fn = HashName
	}
	if fn == HashName && partitions == 0 {
		partitions = DefaultPartitions
	}
	return typ, fn, partitions
}
