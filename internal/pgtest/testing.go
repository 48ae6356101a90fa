package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// StartTimeout bounds how long New and NewShards wait for servers to start.
const StartTimeout = 2 * time.Minute

// New starts a cluster for the test and registers its cleanup. Without
// PostgreSQL binaries the test is skipped, or failed when CI=true.
func New(t testing.TB, spec Spec) *Cluster {
	t.Helper()
	skipWithoutPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	c, err := StartCluster(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithLogs(t, c) })
	return c
}

// NewShards starts n independent clusters named "<spec.Name>0".."<spec.Name>N-1"
// ("shard0".. by default), each shaped by spec, concurrently.
func NewShards(t testing.TB, n int, spec Spec) []*Cluster {
	t.Helper()
	skipWithoutPostgres(t)
	prefix := spec.Name
	if prefix == "" {
		prefix = "shard"
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	out := make([]*Cluster, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := spec
		s.Name = fmt.Sprintf("%s%d", prefix, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = StartCluster(ctx, s)
		}()
	}
	wg.Wait()
	for _, c := range out {
		if c != nil {
			t.Cleanup(func() { closeWithLogs(t, c) })
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// closeWithLogs prints each node's log tail when the test failed, then
// stops everything.
func closeWithLogs(t testing.TB, c *Cluster) {
	if t.Failed() {
		for _, n := range c.Nodes {
			t.Logf("--- %s (%s, port %d) log tail:\n%s", n.Name, n.Role(), n.Port, n.LogTail(15))
		}
	}
	c.Close()
}

func skipWithoutPostgres(t testing.TB) {
	t.Helper()
	if _, err := FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: install the postgresql package)", err)
		}
		t.Skip(err)
	}
}
