package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// printTour tells the user what is running and what to try.
func (d *demo) printTour(w io.Writer) {
	e := d.edge
	fmt.Fprintf(w, `The web site (through the edge):       http://%s/
Edge status page:                       http://%s/
`, e.addr, e.admin)
	for _, p := range d.proxies {
		fmt.Fprintf(w, "dbproxy %s: clients %s, status http://%s/\n", p.name, p.addr, p.admin)
	}
	fmt.Fprintf(w, `
Try:
  # balancing: each request names the web server that answered
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -D - http://%[1]s/login | grep -i x-backend; done
  # the public feed is cached by the edge (X-Cache: MISS, then HIT)
  curl -s -o /dev/null -D - http://%[1]s/ | grep -i x-cache
  # static assets are served by the edge itself
  curl -sI http://%[1]s/static/%[4]s | grep -i cache-control
  # the data tier: nodes, roles, health and lag; the shards; where a statement goes
  psql "postgres://admin:admin@%[2]s/tiergate?sslmode=disable" -c 'SHOW NODES'
  psql "postgres://admin:admin@%[2]s/tiergate?sslmode=disable" -c 'SHOW SHARDS'
  psql "postgres://admin:admin@%[2]s/tiergate?sslmode=disable" -c 'EXPLAIN ROUTE SELECT * FROM posts ORDER BY created_at DESC LIMIT 50'
  # dbproxy's query cache: the feed's reads, dropped on every proxy when a post is written
  psql "postgres://admin:admin@%[2]s/tiergate?sslmode=disable" -c 'SHOW CACHE'
  # kill a web server (its health check fails; the edge routes around it):
  kill %[3]d
  # kill the database primary (the dbproxy peers promote a replica within seconds;
  # watch SHOW FAILOVER or the dbproxy status page):
  kill -9 %[5]d
  psql "postgres://admin:admin@%[2]s/tiergate?sslmode=disable" -c 'SHOW FAILOVER'
`, e.addr, d.proxies[0].addr, d.webPID(0), d.cssName(), d.clusters[0].Primary().Pid())
	fmt.Fprintf(w, "\nLogs and configs: %s\nPress Ctrl-C to stop everything.\n", d.dir)
}

// tourJSON is what -ready-file receives, for scripted runs of the demo.
func (d *demo) tourJSON() string {
	type svc struct {
		Name, Addr, Admin string
		PID               int `json:",omitempty"`
	}
	type node struct {
		Name, Role, Addr string
		PID              int
	}
	out := struct {
		Edge    svc
		Proxies []svc
		Webs    []svc
		Shards  [][]node
		Dir     string
	}{Edge: svc{Name: "edge", Addr: d.edge.addr, Admin: d.edge.admin}, Dir: d.dir}
	for _, p := range d.proxies {
		out.Proxies = append(out.Proxies, svc{Name: p.name, Addr: p.addr, Admin: p.admin})
	}
	for i, w := range d.webs {
		out.Webs = append(out.Webs, svc{Name: w.name, Addr: w.addr, PID: d.webPID(i)})
	}
	for _, c := range d.clusters {
		var nodes []node
		for _, n := range c.Nodes {
			nodes = append(nodes, node{Name: n.Name, Role: string(n.Role()), Addr: n.Addr(), PID: n.Pid()})
		}
		out.Shards = append(out.Shards, nodes)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return string(b)
}

func (d *demo) webPID(i int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.procs {
		if p.name == d.webs[i].name {
			return p.cmd.Process.Pid
		}
	}
	return 0
}

func (d *demo) cssName() string {
	entries, _ := readDirNames(d.opts.repo + "/examples/webapp/static")
	for _, n := range entries {
		if len(n) > 4 && n[len(n)-4:] == ".css" {
			return n
		}
	}
	return "app.css"
}
