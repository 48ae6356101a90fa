package failover

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
)

func TestDownVotes(t *testing.T) {
	now := time.Now()
	down := func(d time.Duration) cluster.NodeObservation {
		return cluster.NodeObservation{Shard: "s", Node: "n0", DownFor: d}
	}
	peer := func(from string, o cluster.NodeObservation, age time.Duration) cluster.PeerObservations {
		return cluster.PeerObservations{Observations: cluster.Observations{From: from, Nodes: []cluster.NodeObservation{o}}, Received: now.Add(-age)}
	}
	tests := []struct {
		name  string
		own   cluster.NodeObservation
		ownOK bool
		peers map[string]cluster.PeerObservations
		want  []string
	}{
		{"all see it down long enough", down(6 * time.Second), true, map[string]cluster.PeerObservations{
			"p2": peer("p2", down(5*time.Second), 0), "p3": peer("p3", down(7*time.Second), time.Second),
		}, []string{"p1", "p2", "p3"}},
		{"too short", down(4 * time.Second), true, map[string]cluster.PeerObservations{
			"p2": peer("p2", down(time.Second), 0),
		}, nil},
		{"stale peer observation ignored", down(6 * time.Second), true, map[string]cluster.PeerObservations{
			"p2": peer("p2", down(9*time.Second), 10*time.Second),
		}, []string{"p1"}},
		{"peer sees it up", down(6 * time.Second), true, map[string]cluster.PeerObservations{
			"p2": peer("p2", cluster.NodeObservation{Shard: "s", Node: "n0", Up: true}, 0),
		}, []string{"p1"}},
		{"own view missing", cluster.NodeObservation{}, false, map[string]cluster.PeerObservations{
			"p2": peer("p2", down(9*time.Second), 0),
		}, []string{"p2"}},
		{"other shard does not count", down(6 * time.Second), true, map[string]cluster.PeerObservations{
			"p2": peer("p2", cluster.NodeObservation{Shard: "other", Node: "n0", DownFor: time.Minute}, 0),
		}, []string{"p1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := downVotes("p1", tt.own, tt.ownOK, tt.peers, "s", "n0", 5*time.Second, 3*time.Second, now)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("votes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFindVeto(t *testing.T) {
	primary := NodeConfig{Name: "n0", Address: "10.0.0.1:5432"}
	rep := func(status, sender string, age time.Duration) cluster.NodeObservation {
		return cluster.NodeObservation{Node: "n1", Up: true, InRecovery: true, Receiver: status, Sender: sender, ReceiverAge: age}
	}
	tests := []struct {
		name string
		obs  []cluster.NodeObservation
		veto bool
	}{
		{"streaming recently", []cluster.NodeObservation{rep("streaming", "10.0.0.1:5432", time.Second)}, true},
		{"streaming but silent", []cluster.NodeObservation{rep("streaming", "10.0.0.1:5432", 10*time.Second)}, false},
		{"streaming from another node", []cluster.NodeObservation{rep("streaming", "10.0.0.2:5432", 0)}, false},
		{"receiver waiting", []cluster.NodeObservation{rep("waiting", "10.0.0.1:5432", 0)}, false},
		{"no receiver", []cluster.NodeObservation{rep("", "", 0)}, false},
		{"replica unreachable", []cluster.NodeObservation{{Node: "n1", Receiver: "streaming", Sender: "10.0.0.1:5432"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := findVeto(tt.obs, primary, 5*time.Second)
			if (got != "") != tt.veto {
				t.Fatalf("veto = %q, want veto %v", got, tt.veto)
			}
		})
	}
}

func TestParseSyncStandbys(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want syncRule
	}{
		{"", false, syncRule{}},
		{`ANY 1 ("pg-n1", "pg-n2")`, true, syncRule{"ANY", 1, []string{"pg-n1", "pg-n2"}}},
		{`any 2 (a,b,c)`, true, syncRule{"ANY", 2, []string{"a", "b", "c"}}},
		{`FIRST 1 (a, b)`, true, syncRule{"FIRST", 1, []string{"a", "b"}}},
		{`2 (a, b)`, true, syncRule{"FIRST", 2, []string{"a", "b"}}},
		{`a, b`, true, syncRule{"FIRST", 1, []string{"a", "b"}}},
		{`*`, true, syncRule{"FIRST", 1, []string{"*"}}},
		{`"we""ird"`, true, syncRule{"FIRST", 1, []string{`we"ird`}}},
		{`ANY x (a)`, false, syncRule{}},
		{`SOME 1 (a)`, false, syncRule{}},
		{`ANY 1 (a`, false, syncRule{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseSyncStandbys(tt.in)
			if ok != tt.ok || got.Method != tt.want.Method || got.K != tt.want.K || !slices.Equal(got.Names, tt.want.Names) {
				t.Fatalf("parse(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRewriteSyncStandbys(t *testing.T) {
	nodes := []NodeConfig{{Name: "n0"}, {Name: "n1"}, {Name: "n2"}}
	tests := []struct{ old, primary, want string }{
		{`ANY 1 ("n1", "n2")`, "n1", `ANY 1 ("n0", "n2")`},
		{`FIRST 2 (n1, n2)`, "n2", `FIRST 2 ("n0", "n1")`},
		{`ANY 5 (n1, n2)`, "n1", `ANY 2 ("n0", "n2")`},
		{``, "n1", ``},
		{`*`, "n1", `*`},
	}
	for _, tt := range tests {
		if got := rewriteSyncStandbys(tt.old, nodes, tt.primary); got != tt.want {
			t.Errorf("rewrite(%q, %s) = %q, want %q", tt.old, tt.primary, got, tt.want)
		}
	}
}

func TestChooseCandidate(t *testing.T) {
	const MiB = 1 << 20
	rep := func(name string, order int, lsn uint64) candidate {
		return candidate{Name: name, Order: order, Reachable: true, InRecovery: true, LSN: lsn}
	}
	old := candidate{Name: "n0", Order: 0}
	anyOne := syncRule{"ANY", 1, []string{"n1", "n2"}}
	tests := []struct {
		name       string
		nodes      []candidate
		primaryLSN uint64
		rule       syncRule
		sync       bool
		forced     string
		want       string   // chosen node, "" when blocked
		blocked    string   // substring of the reason
		forked     []string // replicas ahead of the choice
	}{
		{"highest lsn wins", []candidate{old, rep("n1", 1, 100), rep("n2", 2, 200)}, 250, syncRule{}, false, "", "n2", "", nil},
		{"tie goes to config order", []candidate{old, rep("n1", 1, 200), rep("n2", 2, 200)}, 200, syncRule{}, false, "", "n1", "", nil},
		{"no_failover skipped (and forked)", []candidate{old, rep("n1", 1, 100), func() candidate { c := rep("n2", 2, 200); c.NoFailover = true; return c }()}, 200, syncRule{}, false, "", "n1", "", []string{"n2"}},
		{"stale and unreachable skipped", []candidate{old, func() candidate { c := rep("n1", 1, 300); c.Stale = true; return c }(), func() candidate { c := rep("n2", 2, 300); c.Reachable = false; return c }()}, 300, syncRule{}, false, "", "", "no eligible replica", nil},
		{"writable node is not a candidate", []candidate{old, {Name: "n1", Order: 1, Reachable: true, LSN: 900}}, 900, syncRule{}, false, "", "", "no eligible replica", nil},
		{"lag within limit", []candidate{old, rep("n1", 1, 10*MiB)}, 11 * MiB, syncRule{}, false, "", "n1", "", nil},
		{"lag too high", []candidate{old, rep("n1", 1, 8*MiB)}, 11 * MiB, syncRule{}, false, "", "", "3145728 bytes behind", nil},
		{"primary position unknown", []candidate{old, rep("n1", 1, 8*MiB)}, 0, syncRule{}, false, "", "", "unknown", nil},
		{"forced ignores lag and reports forks", []candidate{old, rep("n1", 1, 8*MiB), rep("n2", 2, 9*MiB)}, 11 * MiB, syncRule{}, false, "n1", "n1", "", []string{"n2"}},
		{"forced may pick no_failover", []candidate{old, func() candidate { c := rep("n1", 1, 1); c.NoFailover = true; return c }()}, 1, syncRule{}, false, "n1", "n1", "", nil},
		{"forced to unreachable refused", []candidate{old, {Name: "n1", Order: 1}}, 1, syncRule{}, false, "n1", "", "not a reachable", nil},
		{"sync quorum compared", []candidate{old, rep("n1", 1, 100), rep("n2", 2, 90)}, 5 * MiB, anyOne, true, "", "n1", "", nil},
		{"sync quorum missing a standby", []candidate{old, rep("n1", 1, 100), {Name: "n2", Order: 2}}, 100, anyOne, true, "", "", "only 1 of the listed standbys", nil},
		{"sync: stale listed standby does not count", []candidate{old, rep("n1", 1, 100), {Name: "n2", Order: 2, Stale: true}}, 100, anyOne, true, "", "n1", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := chooseCandidate(tt.nodes, "n0", tt.primaryLSN, MiB, tt.rule, tt.sync, tt.forced)
			if ch.Name != tt.want {
				t.Fatalf("chose %q (blocked %q), want %q", ch.Name, ch.Blocked, tt.want)
			}
			if tt.blocked != "" && !strings.Contains(ch.Blocked, tt.blocked) {
				t.Fatalf("blocked = %q, want it to contain %q", ch.Blocked, tt.blocked)
			}
			if tt.want != "" && ch.Blocked != "" {
				t.Fatalf("chose %s but also blocked: %s", ch.Name, ch.Blocked)
			}
			if !slices.Equal(ch.Forked, tt.forked) {
				t.Fatalf("forked = %v, want %v", ch.Forked, tt.forked)
			}
		})
	}
}

func TestFormatLSN(t *testing.T) {
	if got := formatLSN(0x16B374D848); got != "16/B374D848" {
		t.Fatalf("formatLSN = %s", got)
	}
}
