package main

import "context"

func stub(name string) scenario {
	return scenario{name: name, title: "todo", run: func(context.Context, *harness, *Result, *recorder) error { return nil }}
}
func dbThroughputScenario() scenario  { return stub("db-throughput") }
func dbConnectionsScenario() scenario { return stub("db-connections") }
func dbLatencyScenario() scenario     { return stub("db-latency") }
