package querycache

import (
	"testing"
	"time"
)

// TestMemoryBound feeds far more than max_size and checks that the store
// stays within it and that the per-database counters follow the store.
func TestMemoryBound(t *testing.T) {
	const maxSize = 1 << 20
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	c := newTestCache(t, Config{MaxSize: maxSize, MaxEntrySize: 64 << 10}, newFakeClock())
	dbs := []*DB{c.DB("a"), c.DB("b")}
	body := make([]byte, 200)
	var k Key
	var tk Ticket
	tables := []string{"products"}
	for i := range n {
		d := dbs[i%len(dbs)]
		k.Reset()
		k.String("select * from products where id = $1")
		k.Uint64(uint64(i))
		d.Begin(&tk, tables)
		if !d.Put(&tk, k.Hash(), k.Raw(), body, time.Hour) {
			t.Fatalf("Put %d not stored", i)
		}
	}

	// otter applies writes and evictions from buffers; CleanUp drains them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.store.CleanUp()
		used, max := c.Size()
		var bytes, entries int64
		for _, d := range dbs {
			s := d.Stats()
			bytes += s.Bytes
			entries += s.Entries
		}
		if used <= max && bytes == int64(used) && entries == int64(c.store.EstimatedSize()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after CleanUp: store weight %d (max %d), counters: %d bytes, %d entries; store %d entries",
				used, max, bytes, entries, c.store.EstimatedSize())
		}
	}

	var stores, evictions uint64
	var entries int64
	for _, d := range dbs {
		s := d.Stats()
		if s.Entries <= 0 || s.Bytes <= 0 {
			t.Errorf("%s kept nothing: %+v", d.Name(), s)
		}
		stores += s.Stores
		evictions += s.Evictions
		entries += s.Entries
	}
	if stores != uint64(n) || evictions == 0 || uint64(entries)+evictions != stores {
		t.Fatalf("stores %d, evictions %d, entries %d: want stores = entries + evictions = %d", stores, evictions, entries, n)
	}
	used, _ := c.Size()
	t.Logf("%d entries in %d bytes, %d evictions", entries, used, evictions)
}
