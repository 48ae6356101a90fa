package health_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tiergate/tiergate/health"
)

// The engine builds one Monitor per upstream, runs it for the upstream's
// lifetime, calls Update on every reload, reports every request's outcome,
// and applies changes to its balancer backends from the Listener.
func ExampleMonitor() {
	active := health.ActiveConfig{} // from the config file; zero = defaults
	active.Path = "/ready"
	cfg := health.Config{Active: &active}

	m, err := health.NewMonitor(cfg, health.Options{
		// Quick and non-blocking: runs on checker goroutines and, for
		// Ejected, on the request path.
		Listener: health.ListenerFunc(func(c health.Change) {
			switch c.Kind {
			case health.Up, health.Down:
				// backend(c.ID).SetHealthy(c.Kind == health.Up, c.At)
			case health.Ejected:
				// backend(c.ID).Eject(c.Until)
			case health.Returned:
				// backend(c.ID).Eject(time.Time{})
			}
		}),
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // for the upstream's lifetime
		defer close(done)
		_ = m.Run(ctx) // returns once every checker goroutine has stopped
	}()
	defer func() { cancel(); <-done }()

	targets := []health.Target{{ID: "web-1", Address: "127.0.0.1:9001"}}
	if err := m.Update(targets); err != nil { // again on every reload
		panic(err)
	}
	st, _ := m.Status("web-1") // the initial verdict, before any event
	fmt.Println("healthy before the first check:", st.Healthy)

	// On the way out of every proxied request:
	m.Report("web-1", health.StatusOutcome(502))
	// Output: healthy before the first check: false
}

func ExampleOutlierDetector() {
	d, err := health.NewOutlierDetector(health.PassiveConfig{
		ConsecutiveErrors:  3,
		MaxEjectionPercent: new(100),
	}, health.Options{
		Listener: health.ListenerFunc(func(c health.Change) {
			fmt.Println(c.ID, c.Kind, c.Until.Sub(c.At), c.Reason)
		}),
	})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	d.Update([]health.Target{{Address: "10.0.0.1:80"}, {Address: "10.0.0.2:80"}})

	d.Report("10.0.0.1:80", health.ConnectError)
	d.Report("10.0.0.1:80", health.Success) // resets the run
	d.Report("10.0.0.1:80", health.Timeout)
	d.Report("10.0.0.1:80", health.ServerError)
	d.Report("10.0.0.1:80", health.ServerError)
	fmt.Println(d.Ejected("10.0.0.1:80", time.Now()), d.Ejected("10.0.0.2:80", time.Now()))
	// Output:
	// 10.0.0.1:80 ejected 30s 3 consecutive errors, last: server error
	// true false
}
