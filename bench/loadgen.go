package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// loadSpec is one open-loop run: Rate requests per second, on a fixed
// schedule, for Duration, over at most Conns keep-alive connections.
type loadSpec struct {
	Addr     string        // host:port of the system under test
	Path     string        // request path, default "/"
	Rate     float64       // requests per second
	Duration time.Duration // length of the schedule
	Conns    int           // concurrent connections (and senders)
	Timeout  time.Duration // per request; also the grace after the schedule
}

// loadResult is what an open-loop run measured. Latencies are in
// milliseconds and count from each request's intended send time, so time a
// request spent waiting for a free connection (because earlier ones were
// slow) is part of its latency: no coordinated omission.
type loadResult struct {
	TargetRPS   float64 `json:"target_rps"`
	AchievedRPS float64 `json:"achieved_rps"` // successful responses per second of schedule
	Scheduled   int     `json:"scheduled"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`  // transport errors, timeouts and non-2xx
	Dropped     int     `json:"dropped"` // never sent: the run's time bound hit first
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	P999        float64 `json:"p999_ms"`
	Max         float64 `json:"max_ms"`
	Mean        float64 `json:"mean_ms"`
}

// runOpenLoop sends spec.Rate*spec.Duration requests, request i at
// start + i/Rate whether or not earlier ones were answered, and measures
// each one's latency from that intended time. It is bounded in count (the
// schedule) and in time (Duration + Timeout): what is not sent by then is
// counted as dropped.
func runOpenLoop(ctx context.Context, spec loadSpec) (loadResult, error) {
	if spec.Rate <= 0 || spec.Duration <= 0 || spec.Conns <= 0 {
		return loadResult{}, fmt.Errorf("loadgen: rate, duration and conns must be positive")
	}
	if spec.Path == "" {
		spec.Path = "/"
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 2 * time.Second
	}
	total := int(spec.Rate * spec.Duration.Seconds())
	period := float64(time.Second) / spec.Rate
	hc := &fasthttp.HostClient{
		Addr:                spec.Addr,
		MaxConns:            spec.Conns,
		MaxConnWaitTimeout:  spec.Timeout,
		ReadTimeout:         spec.Timeout,
		WriteTimeout:        spec.Timeout,
		MaxIdleConnDuration: time.Minute,
	}
	uri := "http://" + spec.Addr + spec.Path

	// Warm the connections so the first scheduled requests do not pay for
	// dialing (every system gets the same warm start).
	warm(hc, uri, spec.Conns, spec.Timeout)

	queue := make(chan time.Time, min(total, 1<<20))
	start := time.Now().Add(10 * time.Millisecond)
	hardStop := start.Add(spec.Duration + spec.Timeout)

	type tally struct {
		h                   histogram
		ok, errors, dropped int
	}
	tallies := make([]*tally, spec.Conns)
	var wg sync.WaitGroup
	for w := range spec.Conns {
		t := &tally{}
		tallies[w] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for intended := range queue {
				if time.Now().After(hardStop) || ctx.Err() != nil {
					t.dropped++
					continue
				}
				req.SetRequestURI(uri)
				err := hc.DoTimeout(req, resp, spec.Timeout)
				lat := time.Since(intended)
				if err != nil || resp.StatusCode() < 200 || resp.StatusCode() > 299 {
					t.errors++
					continue
				}
				t.ok++
				t.h.record(lat)
			}
		}()
	}

	// The dispatcher emits every request that is due, stamped with its
	// scheduled time, then sleeps until the next one is due.
	for i := 0; i < total; {
		now := time.Now()
		due := min(int(float64(now.Sub(start))/period)+1, total)
		if now.Before(start) {
			due = 0
		}
		for ; i < due; i++ {
			select {
			case queue <- start.Add(time.Duration(float64(i) * period)):
			case <-ctx.Done():
				i = total
			}
		}
		if i < total {
			next := start.Add(time.Duration(float64(i) * period))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	close(queue)
	wg.Wait()

	var all histogram
	res := loadResult{TargetRPS: spec.Rate, Scheduled: total}
	for _, t := range tallies {
		all.merge(&t.h)
		res.OK += t.ok
		res.Errors += t.errors
		res.Dropped += t.dropped
	}
	res.AchievedRPS = float64(res.OK) / spec.Duration.Seconds()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.P50 = ms(all.quantile(0.50))
	res.P90 = ms(all.quantile(0.90))
	res.P99 = ms(all.quantile(0.99))
	res.P999 = ms(all.quantile(0.999))
	res.Max = ms(all.quantile(1))
	res.Mean = ms(all.mean())
	return res, ctx.Err()
}

// warm opens up to n connections with one request each, in parallel.
func warm(hc *fasthttp.HostClient, uri string, n int, timeout time.Duration) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			req.SetRequestURI(uri)
			_ = hc.DoTimeout(req, resp, timeout)
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}()
	}
	wg.Wait()
}
