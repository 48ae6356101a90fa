// Package reshard owns online resharding: moving the rows whose shard
// changes between two shard maps (shardmap.Diff) while the proxies keep
// serving, then switching the proxies to the new map and deleting the
// moved rows from their old shards. `dbproxy reshard` is a thin CLI over
// Run.
//
// See the package documentation's sections below for the phases, the cost
// of each choice and what is left out.
package reshard
