package main

import (
	"math"
	"strings"
	"testing"
)

const wrkOK = `Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.54us  175.51us   6.42ms   85.35%
    Req/Sec   105.17k     4.70k  112.78k    79.00%
  Latency Distribution
     50%  588.00us
     75%  669.00us
     90%  775.00us
     99%    1.12ms
  1046418 requests in 10.00s, 125.74MB read
Requests/sec: 104639.72
Transfer/sec:     12.57MB
`

func TestParseWrk(t *testing.T) {
	cases := []struct {
		name    string
		out     string
		want    wrkResult
		wantErr bool
	}{
		{"ok", wrkOK, wrkResult{RPS: 104639.72, Requests: 1046418, P50: 0.588, P99: 1.12}, false},
		{"errors and seconds",
			strings.Replace(wrkOK, "  1046418 requests", "     99%    1.50s\n  1046418 requests", 1) +
				"  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 10\n",
			wrkResult{RPS: 104639.72, Requests: 1046418, Errors: 20, P50: 0.588, P99: 1500}, false},
		{"no summary", "unable to connect to 127.0.0.1:1 Connection refused\n", wrkResult{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got.RPS != tc.want.RPS || got.Requests != tc.want.Requests || got.Errors != tc.want.Errors ||
				math.Abs(got.P50-tc.want.P50) > 1e-9 || math.Abs(got.P99-tc.want.P99) > 1e-9 {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

const pgbenchOK = `transaction type: <builtin: select only>
scaling factor: 10
query mode: extended
number of clients: 32
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 90000
number of failed transactions: 0 (0.000%)
latency average = 1.066 ms
initial connection time = 10.512 ms
tps = 30012.345678 (without initial connection time)
`

func TestParsePgbench(t *testing.T) {
	cases := []struct {
		name    string
		out     string
		tps     float64
		lat     float64
		txns    int64
		wantErr bool
	}{
		{"ok", pgbenchOK, 30012.345678, 1.066, 90000, false},
		{"aborted client", "pgbench: error: client 3 script 0 aborted in command 1 query 0: ERROR:  prepared statement \"P_0\" already exists\n" + pgbenchOK, 30012.345678, 1.066, 90000, true},
		{"no tps", "pgbench: error: connection to server failed\n", 0, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePgbench(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr || tc.tps != 0 {
				if got.TPS != tc.tps || got.LatencyMs != tc.lat || got.Txns != tc.txns {
					t.Errorf("got tps %v latency %v transactions %d, want %v %v %d", got.TPS, got.LatencyMs, got.Txns, tc.tps, tc.lat, tc.txns)
				}
			}
		})
	}
}

func TestLastJSONLine(t *testing.T) {
	cases := map[string]string{
		"{\"a\":1}\n":                "{\"a\":1}",
		"warning\n{\"a\":1}\n\n":     "{\"a\":1}",
		"{\"a\":1}":                  "{\"a\":1}",
		"log line\nother\n{\"b\":2}": "{\"b\":2}",
	}
	for in, want := range cases {
		if got := string(lastJSONLine([]byte(in))); got != want {
			t.Errorf("lastJSONLine(%q) = %q, want %q", in, got, want)
		}
	}
}
