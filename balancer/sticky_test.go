package balancer

import (
	"testing"
)

func TestStickyCookie(t *testing.T) {
	pool := testPool(1, 1, 1)
	b, clk := newTestBalancer(t, testConfig(StickyCookie), pool)
	id := []byte(StickyID(pool[1].key()))
	for range 100 {
		r, err := b.Pick(PickInfo{Key: id})
		if err != nil || r.Backend != pool[1] {
			t.Fatalf("sticky pick went to %v, %v", r.Backend, err)
		}
		r.Done(nil, 0)
	}
	// Unknown or malformed cookies get some backend.
	for _, key := range [][]byte{nil, []byte("zzzz"), []byte("0123456789abcdef")} {
		r, err := b.Pick(PickInfo{Key: key})
		if err != nil || r.Backend == nil {
			t.Fatalf("key %q: %v", key, err)
		}
		r.Done(nil, 0)
	}
	// The pinned backend goes down: the request goes elsewhere.
	pool[1].SetHealthy(false, clk.Now())
	for range 50 {
		r, err := b.Pick(PickInfo{Key: id})
		if err != nil || r.Backend == pool[1] {
			t.Fatalf("picked the down backend: %v", err)
		}
		r.Done(nil, 0)
	}
	if StickyID("a") == StickyID("b") || len(StickyID("a")) != 16 {
		t.Fatal("sticky IDs not distinct 16-hex values")
	}
	if _, ok := stickyHash([]byte(StickyID("x"))); !ok {
		t.Fatal("StickyID output does not parse")
	}
}
