package main

import (
	"context"
	"fmt"
	"time"
)

func dbConnectionsScenario() scenario {
	return scenario{
		name:  "db-connections",
		title: "memory per idle client: 10,000 clients multiplexed onto 20 server connections, dbproxy vs PgBouncer",
		needs: []string{"postgres", "pgbouncer"},
		run:   runDBConnections,
	}
}

func runDBConnections(ctx context.Context, h *harness, res *Result, rec *recorder) error {
	systems := []string{sysPgBouncer, sysDBProxy}
	res.Systems, res.Baseline = systems, sysPgBouncer
	n := h.opts.holdConns
	if n <= 0 {
		n = 10000
		if h.opts.smoke {
			n = 500
		}
	}
	mPer := metricKey{Name: "RSS per idle client", Group: "RSS growth per idle client", Unit: "KiB", Better: "lower"}
	mLoaded := metricKey{Name: "RSS", Group: fmt.Sprintf("RSS with %d idle clients", n), Unit: "MiB", Better: "lower"}
	mIdle := metricKey{Name: "RSS", Group: "RSS before the clients (after one login)", Unit: "MiB", Better: "lower"}
	res.Settings["client"] = fmt.Sprintf("bench -hold pg: %d connections, each logs in (trust) and runs SELECT 1, then idles; a separate process", n)
	res.Settings["pools"] = "transaction mode, 20 server connections to one PostgreSQL node"
	res.Settings["measure"] = "(VmRSS with the clients - VmRSS after one login) / clients; each system starts fresh every round"

	if _, err := h.build(ctx, sysDBProxy, "./cmd/dbproxy"); err != nil {
		return err
	}
	cl, err := h.startCluster(ctx, 0, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	primary := cl.Primary().Addr()
	for r := range h.roundsOf() {
		for _, name := range systems {
			h.prog.begin(0, "round %d/%d %s: %d idle clients", r+1, h.roundsOf(), name, n)
			var s *pgSystem
			if name == sysPgBouncer {
				s, err = h.startPgBouncer(ctx, primary, n+100)
			} else {
				s, err = h.startDBProxy(ctx, name, primary, nil, n+100)
			}
			var idle, loaded memUsage
			if err == nil {
				idle, loaded, err = h.measurePGIdle(ctx, s, n)
				s.stop()
			}
			if err != nil {
				if h.failed(ctx, rec, name, r, err) {
					return ctx.Err()
				}
				continue
			}
			per := float64(loaded.RSSKiB-idle.RSSKiB) / float64(n)
			rec.add(mIdle, name, r, float64(idle.RSSKiB)/1024)
			rec.add(mLoaded, name, r, float64(loaded.RSSKiB)/1024)
			rec.add(mPer, name, r, per)
			h.prog.end("RSS %.1f → %.1f MiB, %.2f KiB per client", float64(idle.RSSKiB)/1024, float64(loaded.RSSKiB)/1024, per)
		}
	}
	rec.finish()
	rec.absGoal("dbproxy RSS per idle client ≤ 8 KiB", mPer.Group, mPer.Name, sysDBProxy, "<=", 8)
	if h.wantProfile(res) {
		h.profileIdle(ctx, res, "dbproxy", dbproxyProfileConfig(primary), n)
	}
	return nil
}

// measurePGIdle measures s after one login, then with n idle clients held
// by a separate process.
func (h *harness) measurePGIdle(ctx context.Context, s *pgSystem, n int) (idle, loaded memUsage, err error) {
	if idle, err = groupMemory(s.proc.pid()); err != nil {
		return idle, loaded, err
	}
	holder, err := h.hold(ctx, "pg", s.addr, n, benchPG, benchDB)
	if err != nil {
		return idle, loaded, err
	}
	defer holder.stop(5 * time.Second)
	// Idle means idle for a while: dbproxy parks clients idle for 2s
	// (park_idle_clients_after) and returns their stacks to the OS.
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		return idle, loaded, ctx.Err()
	}
	loaded, err = groupMemory(s.proc.pid())
	return idle, loaded, err
}
