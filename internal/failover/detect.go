package failover

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
)

// The decisions below are pure functions of observations, so they are
// table-tested without servers.

// downVotes returns the proxies whose latest observation of the primary
// says it has been unreachable for at least after. own is this proxy's
// observation (ok false when it has none); peers' observations count only
// when received within fresh.
func downVotes(self string, own cluster.NodeObservation, ownOK bool, peers map[string]cluster.PeerObservations,
	shard, primary string, after, fresh time.Duration, now time.Time) []string {
	var out []string
	if ownOK && !own.Up && own.DownFor >= after {
		out = append(out, self)
	}
	for name, po := range peers {
		if name == self || now.Sub(po.Received) > fresh {
			continue
		}
		if o, ok := po.Node(shard, primary); ok && !o.Up && o.DownFor >= after {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// findVeto returns a description of a replica that still receives WAL
// from the primary (so the primary is alive and the proxies' network is at
// fault), or "" when there is none.
func findVeto(obs []cluster.NodeObservation, primary NodeConfig, window time.Duration) string {
	for _, o := range obs {
		if o.Node == primary.Name || !o.Up || !o.InRecovery {
			continue
		}
		if o.Receiver == "streaming" && o.Sender == primary.Address && o.ReceiverAge < window {
			return fmt.Sprintf("replica %s still receives WAL from primary %s (last message %s ago)",
				o.Node, primary.Name, o.ReceiverAge.Round(time.Millisecond))
		}
	}
	return ""
}

// syncRule is a parsed synchronous_standby_names: a commit is
// acknowledged once K of Names have flushed it (FIRST or ANY).
type syncRule struct {
	Method string // "ANY" or "FIRST"
	K      int
	Names  []string // "*" matches every standby
}

// parseSyncStandbys parses synchronous_standby_names; ok is false when it
// is empty (asynchronous replication) or unparsable.
func parseSyncStandbys(s string) (syncRule, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return syncRule{}, false
	}
	r := syncRule{Method: "FIRST", K: 1}
	list := s
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return syncRule{}, false
		}
		head := strings.Fields(s[:i])
		list = s[i+1 : len(s)-1]
		switch len(head) {
		case 1:
			k, err := strconv.Atoi(head[0])
			if err != nil {
				return syncRule{}, false
			}
			r.K = k
		case 2:
			m := strings.ToUpper(head[0])
			if m != "ANY" && m != "FIRST" {
				return syncRule{}, false
			}
			k, err := strconv.Atoi(head[1])
			if err != nil {
				return syncRule{}, false
			}
			r.Method, r.K = m, k
		default:
			return syncRule{}, false
		}
	}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if len(n) >= 2 && n[0] == '"' && n[len(n)-1] == '"' {
			n = strings.ReplaceAll(n[1:len(n)-1], `""`, `"`)
		}
		if n != "" {
			r.Names = append(r.Names, n)
		}
	}
	if len(r.Names) == 0 || r.K < 1 {
		return syncRule{}, false
	}
	return r, true
}

// String formats the rule for synchronous_standby_names.
func (r syncRule) String() string {
	names := make([]string, len(r.Names))
	for i, n := range r.Names {
		if n == "*" {
			names[i] = n
			continue
		}
		names[i] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
	}
	return fmt.Sprintf("%s %d (%s)", r.Method, r.K, strings.Join(names, ", "))
}

// rewriteSyncStandbys returns synchronous_standby_names for a new primary:
// the same method and count over every other node of the shard, so the
// replicas that follow it acknowledge its commits. "" when the old setting
// was empty (asynchronous).
func rewriteSyncStandbys(old string, nodes []NodeConfig, newPrimary string) string {
	r, ok := parseSyncStandbys(old)
	if !ok {
		return ""
	}
	if slices.Contains(r.Names, "*") {
		return old
	}
	var names []string
	for _, n := range nodes {
		if n.Name != newPrimary {
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	r.Names = names
	r.K = min(r.K, len(names))
	return r.String()
}

// candidate is what the leader knows of one node when choosing.
type candidate struct {
	Name       string
	Order      int  // position in the shard's config (ties go to the first)
	Reachable  bool // answered the leader's probe
	InRecovery bool
	LSN        uint64 // max(receive, replay)
	NoFailover bool
	Stale      bool
}

// choice is the outcome of chooseCandidate.
type choice struct {
	Name    string
	LSN     uint64
	Lag     uint64   // bytes behind the primary's last known position
	Forked  []string // replicas ahead of the choice: they cannot follow it
	Blocked string   // why no automatic choice is possible ("" when Name is set)
}

// chooseCandidate picks the replica to promote: reachable, in recovery,
// not stale, not the old primary, not no_failover (unless forced), with
// the highest WAL position; then checks that a synchronous quorum was
// compared (P9) and, unless forced, the lag limit.
func chooseCandidate(nodes []candidate, from string, primaryLSN, maxLag uint64, rule syncRule, sync bool, forced string) choice {
	eligible := func(c candidate) bool {
		return c.Reachable && c.InRecovery && !c.Stale && c.Name != from && (!c.NoFailover || c.Name == forced)
	}
	var best *candidate
	for i := range nodes {
		c := &nodes[i]
		if forced != "" && c.Name != forced {
			continue
		}
		if !eligible(*c) {
			continue
		}
		if best == nil || c.LSN > best.LSN || (c.LSN == best.LSN && c.Order < best.Order) {
			best = c
		}
	}
	if best == nil {
		if forced != "" {
			return choice{Blocked: fmt.Sprintf("node %s is not a reachable, non-stale replica", forced)}
		}
		return choice{Blocked: "no eligible replica (reachable, in recovery, not stale, not no_failover)"}
	}
	ch := choice{Name: best.Name, LSN: best.LSN}
	if primaryLSN > best.LSN {
		ch.Lag = primaryLSN - best.LSN
	}
	for _, c := range nodes {
		if c.Name != best.Name && c.Name != from && c.Reachable && c.InRecovery && !c.Stale && c.LSN > best.LSN {
			ch.Forked = append(ch.Forked, c.Name)
		}
	}
	if forced != "" {
		return ch
	}
	if sync && !slices.Contains(rule.Names, "*") {
		var listed, known []string
		for _, c := range nodes {
			if c.Name == from || c.Stale || !slices.Contains(rule.Names, c.Name) {
				continue
			}
			listed = append(listed, c.Name)
			if c.Reachable && c.InRecovery {
				known = append(known, c.Name)
			}
		}
		if need := len(listed) - rule.K + 1; len(known) < need {
			return choice{Blocked: fmt.Sprintf("synchronous_standby_names %s: only %d of the listed standbys %v answered, %d needed to be sure no acknowledged commit is lost",
				rule, len(known), listed, need)}
		}
		return ch
	}
	if primaryLSN == 0 {
		return choice{Blocked: fmt.Sprintf("the primary's last WAL position is unknown, so the loss cannot be bounded (best candidate %s at %s)", best.Name, formatLSN(best.LSN))}
	}
	if ch.Lag > maxLag {
		return choice{Blocked: fmt.Sprintf("best candidate %s is %d bytes behind the last position seen on the primary (%s vs %s), above max_failover_lag %d",
			best.Name, ch.Lag, formatLSN(best.LSN), formatLSN(primaryLSN), maxLag)}
	}
	return ch
}

// formatLSN prints an LSN the way PostgreSQL does (16/B374D848).
func formatLSN(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, uint32(v)) }
