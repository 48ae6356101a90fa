package shardmap

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them with %w,
// so callers test with errors.Is; only cmd/dbproxy turns them into SQLSTATEs.
var (
	// ErrUnknownTable: the table is not a sharded table of the map (it may
	// be a reference table; check Map.IsReference first).
	ErrUnknownTable = errors.New("shardmap: unknown table")
	// ErrUnknownShard: the key maps to no shard (a range or list function
	// without a default shard and no range or value matching the key).
	ErrUnknownShard = errors.New("shardmap: no shard for key")
	// ErrBadKey: the key cannot be decoded for its type, or its type is not
	// the table's key type.
	ErrBadKey = errors.New("shardmap: bad shard key")
)
