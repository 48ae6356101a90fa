package querycache

import "sync"

// Flight is a miss being answered by one session while others with the
// same key wait for its result instead of running the query too (no
// thundering herd when a popular entry expires or is invalidated).
type Flight struct {
	done chan struct{}
}

// Done is closed when the leader has finished (stored or not).
func (f *Flight) Done() <-chan struct{} { return f.done }

// flights are the misses in progress of one database, by key hash (a
// collision only makes a session wait for an unrelated query, then miss).
type flights struct {
	mu sync.Mutex
	m  map[uint64]*Flight
}

// Join returns the flight for hash: a new one with leader true (the
// caller runs the query and must call Finish), or the running one.
func (d *DB) Join(hash uint64) (f *Flight, leader bool) {
	fl := &d.flights
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if f := fl.m[hash]; f != nil {
		return f, false
	}
	if fl.m == nil {
		fl.m = map[uint64]*Flight{}
	}
	f = &Flight{done: make(chan struct{})}
	fl.m[hash] = f
	return f, true
}

// Finish ends the leader's flight and wakes its waiters.
func (d *DB) Finish(hash uint64, f *Flight) {
	fl := &d.flights
	fl.mu.Lock()
	if fl.m[hash] == f {
		delete(fl.m, hash)
	}
	fl.mu.Unlock()
	close(f.done)
}
