package querycache

import "testing"

// TestFlights: one leader per key at a time; followers share its flight
// and are woken by Finish; a finished key starts a new flight.
func TestFlights(t *testing.T) {
	d := newTestCache(t, Config{}, nil).DB("app")
	f1, leader := d.Join(1)
	if !leader {
		t.Fatal("first Join is not the leader")
	}
	f2, leader := d.Join(1)
	if leader || f2 != f1 {
		t.Fatal("second Join of the same key is not a follower of the first")
	}
	if _, leader := d.Join(2); !leader {
		t.Fatal("another key has its own flight")
	}
	select {
	case <-f2.Done():
		t.Fatal("done before Finish")
	default:
	}
	d.Finish(1, f1)
	select {
	case <-f2.Done():
	default:
		t.Fatal("follower not woken by Finish")
	}
	if f3, leader := d.Join(1); !leader || f3 == f1 {
		t.Fatal("after Finish the key starts a new flight")
	}
}
