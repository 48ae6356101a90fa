package failover_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/cluster/clustertest"
	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/pgtest"
)

// TestKillPrimaryUnderLoad: SIGKILL the primary while writes flow through
// three proxies; writes resume on one promoted replica within 10s, the
// other replica follows it, and (synchronous replication) no acknowledged
// write is lost.
func TestKillPrimaryUnderLoad(t *testing.T) {
	h := newHarness(t, pgtest.Spec{Replicas: 2, Sync: true}, nil)
	before := h.state("p1")
	w := h.startWriter(2)
	w.waitAcks(50, 10*time.Second)
	old := before.Primary
	killed := time.Now()
	if err := h.node(old).Kill(); err != nil {
		t.Fatal(err)
	}
	resumed := w.waitAckAfter(killed, old, 20*time.Second)
	took := resumed.Sub(killed)
	t.Logf("writes resumed %s after killing the primary", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("writes resumed after %s, want within 10s", took)
	}
	st := h.waitTerm(10*time.Second, before.Term)
	if st.Primary == old || !st.IsStale(old) {
		t.Fatalf("decided state %+v: want a new primary and %s stale", st, old)
	}
	ctx := testCtx(t, time.Minute)
	promoted := 0
	var other string
	for _, n := range h.pg.Nodes {
		if n.Name == old {
			continue
		}
		rec, err := h.inRecovery(ctx, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !rec {
			promoted++
		} else {
			other = n.Name
		}
	}
	if promoted != 1 || other == "" {
		t.Fatalf("%d replicas promoted, want exactly 1", promoted)
	}
	h.waitStreaming(15*time.Second, st.Primary, other)
	w.waitAcks(50, 10*time.Second)
	w.halt()
	w.check(st.Primary, true)
	// Every proxy was told to drop its connections to the old primary.
	for i, cl := range h.changes {
		found := false
		for _, c := range cl.list() {
			if c.Term == st.Term && !c.Changing && c.Primary.Name == st.Primary && c.PrevPrimary.Name == old &&
				len(c.Demoted) == 1 && c.Demoted[0].Name == old {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no OnChange demoting %s in term %d: %+v", h.names[i], old, st.Term, cl.list())
		}
	}
	// Every proxy, leader or not, shows the failover's timeline: the
	// leader's steps (committed with the state) and its own events.
	n, tn := st.Primary, strconv.FormatUint(st.Term, 10)
	h.waitTimeline(15*time.Second, st, cluster.KindFailover, old,
		[]string{"primary " + old + " unreachable: ", "unreachable for 1s on ", "term " + tn + " pending: writes fenced on every proxy",
			"froze replicas", "lease grace", "candidate " + n + " chosen at ", "pg_promote sent to " + n, n + " promoted: out of recovery",
			"CHECKPOINT done on " + n, "epoch of term " + tn + " written on " + n, old + " marked stale (the old primary)",
			"term " + tn + " committed in Raft: primary " + n, "replica " + other + " repointed to " + n, "replica " + other + " streams from " + n},
		[]string{"primary " + old + " unreachable: ", "applied term " + tn + " pending (failover from " + old + ")",
			"writes fenced: primary change in progress", "applied term " + tn + ": primary " + n, "writes reopened: primary " + n + " verified for term " + tn})
}

// TestPausedPrimaryGetsNoWrites: SIGSTOP the primary longer than
// failover_after: the proxies fail over, and once the old primary resumes
// it receives no write.
func TestPausedPrimaryGetsNoWrites(t *testing.T) {
	h := newHarness(t, pgtest.Spec{Replicas: 2, Sync: true}, nil)
	before := h.state("p1")
	old := before.Primary
	w := h.startWriter(2)
	w.waitAcks(50, 10*time.Second)
	paused := time.Now()
	frozen := freeze(t, h.node(old))
	t.Cleanup(func() { thaw(frozen) })
	st := h.waitTerm(20*time.Second, before.Term)
	resumed := w.waitAckAfter(paused, old, 20*time.Second)
	t.Logf("writes resumed %s after pausing the primary", resumed.Sub(paused).Round(time.Millisecond))
	if st.Primary == old || !st.IsStale(old) {
		t.Fatalf("decided state %+v: want a new primary and %s stale", st, old)
	}
	thaw(frozen)
	ctx := testCtx(t, time.Minute)
	count := func() int {
		var n int
		if err := h.node(old).QueryRow(ctx, "SELECT count(*) FROM writes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := count()
	w.waitAcks(100, 15*time.Second)
	if got := count(); got != base {
		t.Fatalf("the old primary got %d more rows after it resumed", got-base)
	}
	for _, a := range w.snapshot() {
		if a.at.After(st.DecidedAt) && a.node == old {
			t.Fatalf("write %d acknowledged by the old primary after the new term", a.id)
		}
	}
	// The stale node never gets traffic, even though it is writable again.
	if topo, _ := h.mgrs[0].Topology(shard); topo.Primary.Name == old || len(topo.Stale) != 1 || topo.Stale[0].Name != old {
		t.Fatalf("topology %+v", topo)
	}
	w.halt()
	w.check(st.Primary, true)
}

// TestPartitionedProxyFences: cut one proxy (the Raft leader) off from the
// other two. Its fence closes within its lease; the majority fails over
// when the primary dies; after healing all three agree on the term.
func TestPartitionedProxyFences(t *testing.T) {
	h := newHarness(t, pgtest.Spec{Replicas: 2, Sync: true}, nil)
	_, isolated := h.leader()
	im := h.mgr(isolated)
	var rest []string
	for _, n := range h.names {
		if n != isolated {
			rest = append(rest, n)
		}
	}
	w := h.startWriter(2)
	w.waitAcks(30, 10*time.Second)
	cut := time.Now()
	h.cl.Faults.Isolate(isolated)
	clustertest.Eventually(t, h.tm.Lease+2*time.Second, func() error {
		_, err := im.CheckWrite(shard)
		var fe *failover.FencedError
		if !errors.As(err, &fe) {
			return errors.New("isolated proxy still lets writes through")
		}
		if fe.Reason != failover.ReasonNoLease {
			return errors.New("fenced for another reason: " + fe.Reason)
		}
		return nil
	})
	fencedAfter := time.Since(cut)
	t.Logf("isolated proxy fenced %s after the cut (lease %s)", fencedAfter.Round(time.Millisecond), h.tm.Lease)
	if fencedAfter > h.tm.Lease+500*time.Millisecond {
		t.Errorf("fence closed after %s, want within the lease (%s)", fencedAfter, h.tm.Lease)
	}
	h.leader(rest...)
	before := h.state(rest[0])
	old := before.Primary
	killed := time.Now()
	if err := h.node(old).Kill(); err != nil {
		t.Fatal(err)
	}
	st := h.waitTerm(20*time.Second, before.Term, rest...)
	resumed := w.waitAckAfter(killed, old, 20*time.Second)
	t.Logf("majority failed over; writes resumed %s after the kill", resumed.Sub(killed).Round(time.Millisecond))
	if _, err := im.CheckWrite(shard); !errors.Is(err, failover.ErrFenced) {
		t.Fatal("isolated proxy opened its fence while cut off")
	}
	if s := h.state(isolated); s.Term != before.Term {
		t.Fatalf("isolated proxy applied term %d while cut off", s.Term)
	}
	h.cl.Faults.Heal()
	final := h.waitTerm(20*time.Second, before.Term)
	if final.Term != st.Term || final.Primary != st.Primary {
		t.Fatalf("after healing: %+v, majority decided %+v", final, st)
	}
	h.waitWritable(20*time.Second, h.mgrs...)
	w.waitAcks(30, 10*time.Second)
	w.halt()
	w.check(st.Primary, true)
}

// TestLagTooHighBlocksAutomaticFailover: replicas that stopped receiving
// WAL (hung) long before the primary died are not promoted automatically;
// the status says why on every proxy; FailoverTo forces it.
func TestLagTooHighBlocksAutomaticFailover(t *testing.T) {
	h := newHarness(t, pgtest.Spec{Replicas: 2}, func(c *failover.Config) { c.MaxFailoverLag = 64 << 10 })
	before := h.state("p1")
	old := before.Primary
	ctx := testCtx(t, 2*time.Minute)
	var frozen []*pgtest.Node
	for _, r := range h.pg.Nodes[1:] {
		frozen = append(frozen, freeze(t, r)...)
	}
	t.Cleanup(func() { thaw(frozen) })
	// More WAL than the replicas' socket buffers can hold while hung.
	if err := h.node(old).Exec(ctx, "INSERT INTO writes SELECT g, 0, 'bulk', repeat(md5(g::text), 40) FROM generate_series(1000000, 1020000) g"); err != nil {
		t.Fatal(err)
	}
	var lsn uint64
	if err := h.node(old).QueryRow(ctx, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	// Let the proxies see the primary's new position before it dies.
	clustertest.Eventually(t, 10*time.Second, func() error {
		for _, m := range h.mgrs {
			for _, n := range m.Status().Shards[0].Nodes {
				if n.Name == old && n.LSN < lsn {
					return errors.New("a proxy has not seen the primary's position yet")
				}
			}
		}
		return nil
	})
	if err := h.node(old).Kill(); err != nil {
		t.Fatal(err)
	}
	thaw(frozen)
	var blocked string
	clustertest.Eventually(t, 20*time.Second, func() error {
		for _, m := range h.mgrs { // Blocked is in the decided state: every proxy shows it
			s := m.Status().Shards[0]
			blocked = s.Blocked
			if !strings.Contains(blocked, "behind") {
				return errors.New("not blocked yet: " + blocked)
			}
			if s.Term != before.Term {
				return errors.New("term changed")
			}
		}
		return nil
	})
	t.Logf("status: %s", blocked)
	refused := h.waitTimeline(10*time.Second, cluster.ShardState{Term: before.Term + 1}, cluster.KindFailover, old,
		[]string{"unreachable for 1s on ", "automatic failover refused: best candidate"}, nil)
	for _, r := range h.pg.Nodes[1:] {
		if rec, err := h.inRecovery(ctx, r.Name); err != nil || !rec {
			t.Fatalf("%s was promoted (in recovery %v, %v)", r.Name, rec, err)
		}
	}
	lm, _ := h.leader()
	target := h.pg.Nodes[1].Name
	if err := lm.FailoverTo(ctx, shard, target); err != nil {
		t.Fatal(err)
	}
	st := h.waitTerm(10*time.Second, before.Term)
	if st.Primary != target || st.Blocked != "" {
		t.Fatalf("after FailoverTo: %+v", st)
	}
	tn := strconv.FormatUint(st.Term, 10)
	forced := h.waitTimeline(10*time.Second, st, cluster.KindForced, old,
		[]string{"automatic failover refused", "FAILOVER TO " + target + " requested", "term " + tn + " pending: writes fenced",
			"pg_promote sent to " + target, "term " + tn + " committed in Raft"}, nil)
	if !forced.Started.Equal(refused.Started) {
		t.Errorf("FAILOVER TO started a new timeline (%v) instead of continuing the refused one (%v)", forced.Started, refused.Started)
	}
	w := h.startWriter(1)
	w.waitAcks(20, 15*time.Second)
	w.halt()
	w.check(target, false)
}

// TestSwitchoverUnderLoad: a planned switchover with writes flowing loses
// no acknowledged write (asynchronous replication), and the old primary
// rejoins as a replica of the new one.
func TestSwitchoverUnderLoad(t *testing.T) {
	h := newHarness(t, pgtest.Spec{Replicas: 2}, nil)
	before := h.state("p1")
	old := before.Primary
	w := h.startWriter(2)
	w.waitAcks(50, 10*time.Second)
	lm, _ := h.leader()
	ctx := testCtx(t, 2*time.Minute)
	target := h.pg.Nodes[2].Name
	start := time.Now()
	if err := lm.SwitchoverTo(ctx, shard, target); err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover took %s", time.Since(start).Round(time.Millisecond))
	st := h.waitTerm(10*time.Second, before.Term)
	if st.Primary != target || !st.IsStale(old) {
		t.Fatalf("after switchover: %+v", st)
	}
	h.waitTimeline(10*time.Second, st, cluster.KindSwitchover, old,
		[]string{"SWITCHOVER TO " + target + " requested", "pending: writes fenced", "lease grace", "old primary " + old + " soft-fenced",
			target + " caught up with " + old, "pg_promote sent to " + target, "committed in Raft: primary " + target},
		[]string{"applied term", "writes reopened: primary " + target})
	w.waitAckAfter(start, old, 10*time.Second)
	w.waitAcks(50, 10*time.Second)
	w.halt()
	w.check(target, true)

	// Restart every proxy: the Raft state is gone, the epoch rows are not.
	// The old primary is writable (soft-fenced) but holds an older epoch,
	// so it is found stale again.
	h.restartCoordination()
	boot := h.waitTerm(20*time.Second, 0)
	if boot.Term != st.Term || boot.Primary != target || !boot.IsStale(old) {
		t.Fatalf("after a full restart: %+v, want term %d primary %s with %s stale", boot, st.Term, target, old)
	}
	h.waitWritable(20*time.Second, h.mgrs...)
	lm, _ = h.leader()
	if err := lm.Rejoin(ctx, shard, old); err != nil {
		t.Fatal(err)
	}
	h.waitStreaming(15*time.Second, target, old)
	clustertest.Eventually(t, 10*time.Second, func() error {
		for _, name := range h.names {
			if h.state(name).IsStale(old) {
				return errors.New(name + " still lists the old primary as stale")
			}
		}
		return nil
	})
	if err := lm.Rejoin(ctx, shard, old); !errors.Is(err, failover.ErrRefused) {
		t.Fatalf("second rejoin: %v, want ErrRefused", err)
	}
}
