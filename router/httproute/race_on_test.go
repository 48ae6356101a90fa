//go:build race

package httproute

// raceEnabled: under the race detector sync.Pool drops a share of what is
// put back on purpose, so pooled expression VMs are sometimes allocated
// again; allocation counts are only checked without it.
const raceEnabled = true
