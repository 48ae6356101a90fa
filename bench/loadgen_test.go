package main

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startTestServer serves handler on a loopback port until the test ends.
func startTestServer(t *testing.T, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func TestOpenLoopCountsEveryScheduledRequest(t *testing.T) {
	addr := startTestServer(t, func(c *fasthttp.RequestCtx) { c.SetBodyString("ok") })
	cases := []struct {
		rate  float64
		dur   time.Duration
		conns int
	}{
		{200, 500 * time.Millisecond, 4},
		{2000, 500 * time.Millisecond, 16},
	}
	for _, tc := range cases {
		res, err := runOpenLoop(context.Background(), loadSpec{Addr: addr, Rate: tc.rate, Duration: tc.dur, Conns: tc.conns, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		want := int(tc.rate * tc.dur.Seconds())
		if res.Scheduled != want || res.OK != want || res.Errors != 0 || res.Dropped != 0 {
			t.Errorf("rate %v: %+v, want %d ok", tc.rate, res, want)
		}
		if !(res.P50 > 0 && res.P50 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
			t.Errorf("percentiles out of order: %+v", res)
		}
	}
}

// A server that stalls makes the requests scheduled during the stall wait;
// measured from their intended send time, they show the stall, even
// though each one is answered quickly once the server is back. A
// closed-loop client would record one slow request per connection.
func TestOpenLoopHasNoCoordinatedOmission(t *testing.T) {
	const stall = 200 * time.Millisecond
	const conns = 2
	var once sync.Once
	var n atomic.Int64
	release := make(chan struct{})
	addr := startTestServer(t, func(c *fasthttp.RequestCtx) {
		// The first conns requests warm the connections; the stall starts
		// with the first scheduled one.
		if n.Add(1) > conns {
			once.Do(func() { time.AfterFunc(stall, func() { close(release) }) })
			<-release
		}
		c.SetBodyString("ok")
	})
	// 1,000 req/s over 2 connections: ~200 requests are scheduled while
	// the server holds the first two, i.e. 40% of the run.
	res, err := runOpenLoop(context.Background(), loadSpec{Addr: addr, Rate: 1000, Duration: 500 * time.Millisecond, Conns: conns, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 500 {
		t.Fatalf("%+v", res)
	}
	// Request i (scheduled at i ms) is answered no earlier than the end of
	// the stall, so the median of the first 40% is ~100ms and p90 is far
	// above the service time.
	if res.P90 < 20 || res.Max < float64(stall/time.Millisecond)*0.9 {
		t.Errorf("latencies hide the stall: p90 %.2fms max %.2fms", res.P90, res.Max)
	}
}

func TestOpenLoopRejectsBadSpecs(t *testing.T) {
	for _, s := range []loadSpec{{Rate: 0, Duration: time.Second, Conns: 1}, {Rate: 1, Duration: 0, Conns: 1}, {Rate: 1, Duration: time.Second}} {
		if _, err := runOpenLoop(context.Background(), s); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
