package balancer_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/tiergate/tiergate/balancer"
)

// The engine builds one Balancer per upstream from its config section, keeps
// one *Backend per address across reloads, and wraps each attempt in
// Pick/Done, excluding the backend that just failed on a retry.
func Example() {
	lb, err := balancer.New(balancer.Config{Policy: balancer.WeightedRoundRobin}, balancer.Options{})
	if err != nil {
		panic(err)
	}
	web1 := &balancer.Backend{ID: "10.0.0.1:80", Address: "10.0.0.1:80", Weight: 1}
	web2 := &balancer.Backend{ID: "10.0.0.2:80", Address: "10.0.0.2:80", Weight: 1}
	lb.Update([]*balancer.Backend{web1, web2})

	send := func(b *balancer.Backend) error { // the upstream call
		if b == web1 {
			return errors.New("connection refused")
		}
		return nil
	}

	var last *balancer.Backend
	for range 2 { // one retry
		start := time.Now()
		r, err := lb.Pick(balancer.PickInfo{Exclude: last, Now: start})
		if errors.Is(err, balancer.ErrNoBackend) {
			fmt.Println("503")
			return
		}
		err = send(r.Backend)
		r.Done(err, time.Since(start))
		if err == nil {
			fmt.Println("served by", r.Backend.Address) // web1 failed or was never picked
			return
		}
		last = r.Backend
	}
	// Output: served by 10.0.0.2:80
}
