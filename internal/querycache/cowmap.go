package querycache

import (
	"sync"
	"sync/atomic"
)

// cowMap is a string-keyed map read without a lock and copied on write:
// for small sets that are read per query and grow rarely (databases,
// table names). The zero value is empty and ready to use.
type cowMap[V any] struct {
	mu sync.Mutex // serializes writers
	m  atomic.Pointer[map[string]V]
}

// get returns the value of k.
func (c *cowMap[V]) get(k string) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// getOrAdd returns the value of k, adding newV() when k is missing and the
// map holds fewer than limit entries (limit <= 0: no limit). ok is false
// when k is missing and the limit is reached.
func (c *cowMap[V]) getOrAdd(k string, limit int, newV func() V) (v V, ok bool) {
	if v, ok := c.get(k); ok {
		return v, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]V
	if m := c.m.Load(); m != nil {
		old = *m
	}
	if v, ok := old[k]; ok {
		return v, true
	}
	if limit > 0 && len(old) >= limit {
		return v, false
	}
	next := make(map[string]V, len(old)+1)
	for k2, v2 := range old {
		next[k2] = v2
	}
	v = newV()
	next[k] = v
	c.m.Store(&next)
	return v, true
}

// all returns the current map (shared: read only).
func (c *cowMap[V]) all() map[string]V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}
