package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/cluster"
)

// Everything in this file runs on the Raft leader only, with the shard's
// mutex held.

// errBlocked means automatic failover is refused; the reason is in the
// shard's state (Blocked) for operators.
var errBlocked = errors.New("failover: blocked")

// repointBackoff is how long the leader waits after repointing a replica
// before trying again (the WAL receiver restarts within
// wal_retrieve_retry_interval, 5s by default).
const repointBackoff = 10 * time.Second

// reconcile is one round of the leader's work on a shard.
func (m *Manager) reconcile(ctx context.Context, sc *shardCtl) error {
	st, ok := m.coord.State().Shard(sc.cfg.Name)
	switch {
	case !ok:
		return m.bootstrap(ctx, sc)
	case st.Pending != nil:
		return m.drive(ctx, sc, st)
	}
	if err := m.maybeFailover(ctx, sc, st); err != nil {
		return err
	}
	if st2, _ := m.coord.State().Shard(sc.cfg.Name); st2.Version == st.Version {
		m.followUp(ctx, sc, st)
	}
	return nil
}

// grace is how long a change waits after fencing before promoting: every
// lease granted under the previous term has ended by then (see
// cluster/lease.go), with a margin for clock rate drift and scheduling.
func (m *Manager) grace() time.Duration {
	l := m.coord.LeaseDuration()
	return l + l/5 + 100*time.Millisecond
}

// setNote records the leader's remark on a shard and logs it once.
func (m *Manager) setNote(sc *shardCtl, note string) {
	sc.note.Store(&note)
	if note != "" && note != sc.lastNote {
		m.log.Warn(note, zap.String("shard", sc.cfg.Name))
	}
	sc.lastNote = note
}

// probeAll probes every node of the shard now, in parallel.
func (m *Manager) probeAll(ctx context.Context, sc *shardCtl) map[string]cluster.NodeObservation {
	out := make(map[string]cluster.NodeObservation, len(sc.cfg.Nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range sc.cfg.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := m.probe(ctx, sc.cfg.Name, n)
			mu.Lock()
			out[n.Name] = o
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// bootstrap decides a shard that has no state (first start, or every
// proxy restarted): the writable node holding the newest epoch row is the
// primary; with no epoch anywhere, the configured primary gets term 1.
// Other writable nodes are stale.
func (m *Manager) bootstrap(ctx context.Context, sc *shardCtl) error {
	obs := m.probeAll(ctx, sc)
	var maxEpoch uint64
	var writable []string
	for _, n := range sc.cfg.Nodes {
		o := obs[n.Name]
		if !o.Up {
			continue
		}
		maxEpoch = max(maxEpoch, o.Epoch)
		if !o.InRecovery {
			writable = append(writable, n.Name)
		}
	}
	var primary string
	term := maxEpoch
	var tli int
	if maxEpoch > 0 {
		var holders []string
		for _, w := range writable {
			if obs[w].Epoch == maxEpoch {
				holders = append(holders, w)
			}
		}
		switch len(holders) {
		case 0:
			m.setNote(sc, fmt.Sprintf("bootstrap: waiting for a writable node holding the newest epoch (term %d)", maxEpoch))
			return nil
		case 1:
			primary, tli = holders[0], obs[holders[0]].Timeline
		default:
			m.setNote(sc, fmt.Sprintf("bootstrap: writable nodes %v all claim term %d; refusing to choose", holders, maxEpoch))
			return nil
		}
	} else {
		primary, term = sc.cfg.Primary, 1
		if o := obs[primary]; !o.Up || o.InRecovery {
			m.setNote(sc, fmt.Sprintf("bootstrap: waiting for the configured primary %s to be writable", primary))
			return nil
		}
		n, _ := sc.cfg.node(primary)
		var err error
		if tli, err = m.writeEpoch(ctx, sc.cfg.Name, n, term); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	s := cluster.ShardState{Shard: sc.cfg.Name, Term: term, Primary: primary, Timeline: tli,
		DecidedBy: m.coord.Name(), DecidedAt: time.Now(), Reason: "bootstrap"}
	for _, w := range writable {
		if w != primary {
			s.Stale = append(s.Stale, w)
		}
	}
	if err := m.coord.Propose(ctx, 0, s); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	m.setNote(sc, "")
	m.log.Info("shard bootstrapped", zap.String("shard", sc.cfg.Name), zap.String("primary", primary), zap.Uint64("term", term), zap.Strings("stale", s.Stale))
	return nil
}

// maybeFailover starts a failover when a quorum of proxies has seen the
// primary unreachable for failover_after, no replica still receives WAL
// from it, and a candidate passes the checks.
func (m *Manager) maybeFailover(ctx context.Context, sc *shardCtl, st cluster.ShardState) error {
	primary, _ := sc.cfg.node(st.Primary)
	v := m.view.Load()
	if v == nil {
		return nil // no probe round yet
	}
	own, ownOK := v.get(sc.cfg.Name, st.Primary)
	fresh := max(m.coord.LeaseDuration(), 3*m.cfg.CheckInterval)
	if time.Since(v.at) > fresh {
		ownOK = false
	}
	votes := downVotes(m.coord.Name(), own.obs, ownOK, m.coord.PeerObservations(), sc.cfg.Name, st.Primary, m.cfg.FailoverAfter, fresh, time.Now())
	sc.votes.Store(&votes)
	if len(votes) < m.coord.Quorum() {
		if ownOK && own.obs.Up && !own.obs.InRecovery && st.Blocked != "" {
			m.setBlocked(ctx, sc, st, "")
		}
		if len(votes) == 0 {
			m.setNote(sc, "")
			delete(sc.draft, st.Term+1) // the episode is over; a new one starts afresh
		}
		return nil
	}
	if lc := st.LastChange; len(sc.draft[st.Term+1]) == 0 && (lc == nil || lc.Term != st.Term+1 || !lc.Refused || !lc.Finished.IsZero()) {
		// Not recorded yet in this episode (a refused attempt's log has it).
		if ownOK && !own.obs.Up {
			m.stepAt(sc, st.Term+1, own.downSince, downWhat(st.Primary, own.downErr))
		}
		m.step(sc, st.Term+1, "primary %s unreachable for %s on %d proxies (%s), quorum %d",
			st.Primary, m.cfg.FailoverAfter, len(votes), strings.Join(votes, ", "), m.coord.Quorum())
	}
	if !m.cfg.IsEnabled() {
		m.setNote(sc, fmt.Sprintf("primary %s unreachable for %v, automatic failover disabled", st.Primary, votes))
		return nil
	}
	var replicaObs []cluster.NodeObservation
	for _, nv := range v.nodes {
		if nv.obs.Shard == sc.cfg.Name {
			replicaObs = append(replicaObs, nv.obs)
		}
	}
	for name, po := range m.coord.PeerObservations() {
		if time.Since(po.Received) <= fresh && name != m.coord.Name() {
			for _, o := range po.Nodes {
				if o.Shard == sc.cfg.Name {
					replicaObs = append(replicaObs, o)
				}
			}
		}
	}
	if veto := findVeto(replicaObs, primary, m.cfg.VetoWindow); veto != "" {
		m.setNote(sc, "failover vetoed: "+veto)
		if w := "failover vetoed: " + veto; sc.lastStep(st.Term+1) != w {
			m.step(sc, st.Term+1, "%s", w)
		}
		return nil
	}
	// A first check of the candidates on this proxy's last probe round
	// (not a fresh probe: the dead primary would hold it up for a whole
	// check_timeout); drive checks again on frozen replicas.
	obs := make(map[string]cluster.NodeObservation, len(sc.cfg.Nodes))
	for _, n := range sc.cfg.Nodes {
		if nv, ok := v.get(sc.cfg.Name, n.Name); ok {
			obs[n.Name] = nv.obs
		}
	}
	if o := obs[st.Primary]; o.Up && !o.InRecovery {
		return nil // it answers again
	}
	ch, _ := m.choose(sc, st, st.Primary, obs, "")
	if ch.Blocked != "" {
		m.setBlocked(ctx, sc, st, "automatic failover refused: "+ch.Blocked+"; run FAILOVER TO <node> to force")
		return errBlocked
	}
	m.log.Warn("primary down for a quorum of proxies; starting failover", zap.String("shard", sc.cfg.Name),
		zap.String("primary", st.Primary), zap.Strings("votes", votes), zap.String("likely_candidate", ch.Name), zap.Uint64("lag_bytes", ch.Lag))
	next, err := m.startChange(ctx, sc, st, cluster.KindFailover, "")
	if err != nil {
		return err
	}
	return m.drive(ctx, sc, next)
}

// startChange commits the fence for the next term: from now on no proxy
// forwards writes to the shard.
func (m *Manager) startChange(ctx context.Context, sc *shardCtl, st cluster.ShardState, kind, candidate string) (cluster.ShardState, error) {
	next := st.Clone()
	next.Term = st.Term + 1
	next.Pending = &cluster.Pending{Kind: kind, From: st.Primary, Candidate: candidate, Since: time.Now()}
	next.Blocked = ""
	next.DecidedBy, next.DecidedAt = m.coord.Name(), time.Now()
	next.Reason = kind + " started"
	next.LastChange = m.openLog(sc, st, kind)
	m.step(sc, next.Term, "term %d pending: writes fenced on every proxy (%s from %s)", next.Term, kind, st.Primary)
	if err := m.propose(ctx, sc, st, next); err != nil {
		return st, fmt.Errorf("start %s: %w", kind, err)
	}
	sc.pendingSeen[next.Term] = time.Now()
	got, _ := m.coord.State().Shard(sc.cfg.Name)
	return got, nil
}

// setBlocked records (or clears) why automatic failover is refused, in the
// decided state so every proxy's status shows it.
func (m *Manager) setBlocked(ctx context.Context, sc *shardCtl, st cluster.ShardState, reason string) {
	m.met.blocked.WithLabelValues(sc.cfg.Name).Set(b2f(reason != ""))
	if st.Blocked == reason {
		return
	}
	if reason != "" {
		m.log.Error(reason, zap.String("shard", sc.cfg.Name), zap.Uint64("term", st.Term))
	}
	next := st.Clone()
	next.Blocked = reason
	lc := next.LastChange
	switch {
	case reason == "":
		if lc != nil && lc.Refused && lc.Finished.IsZero() {
			m.step(sc, lc.Term, "primary %s answers again; failover not needed", st.Primary)
			lc.Finished, lc.Outcome = time.Now(), "abandoned: primary "+st.Primary+" answered again"
		}
	case st.Pending != nil:
		if lc == nil || lc.Term != st.Term {
			next.LastChange = &cluster.ChangeLog{Term: st.Term, Kind: st.Pending.Kind, From: st.Pending.From, Started: st.Pending.Since}
		}
		m.step(sc, st.Term, "%s", reason)
	default: // automatic failover refused: a log of its own, which FAILOVER TO continues
		if lc == nil || !lc.Refused || !lc.Finished.IsZero() || lc.Term != st.Term+1 {
			next.LastChange = m.openLog(sc, st, cluster.KindFailover)
			next.LastChange.Refused = true
		}
		next.LastChange.Outcome = reason
		m.step(sc, st.Term+1, "%s", reason)
	}
	if err := m.propose(ctx, sc, st, next); err != nil {
		m.log.Warn("record blocked state", zap.String("shard", sc.cfg.Name), zap.Error(err))
	}
}

// choose builds the candidate list from fresh observations and picks.
func (m *Manager) choose(sc *shardCtl, st cluster.ShardState, from string, obs map[string]cluster.NodeObservation, forced string) (choice, []candidate) {
	cands := make([]candidate, 0, len(sc.cfg.Nodes))
	for i, n := range sc.cfg.Nodes {
		o := obs[n.Name]
		cands = append(cands, candidate{Name: n.Name, Order: i, Reachable: o.Up, InRecovery: o.InRecovery,
			LSN: max(o.ReceiveLSN, o.ReplayLSN), NoFailover: slices.Contains(m.cfg.NoFailover, n.Name), Stale: st.IsStale(n.Name)})
	}
	lastLSN, syncNames := m.primaryHistory(sc.cfg.Name, from)
	rule, sync := parseSyncStandbys(syncNames)
	return chooseCandidate(cands, from, lastLSN, uint64(m.cfg.MaxFailoverLag), rule, sync, forced), cands
}

// primaryHistory returns the highest WAL position any proxy saw on node
// while it was writable, and its last known synchronous_standby_names.
func (m *Manager) primaryHistory(shard, node string) (uint64, string) {
	var lsn uint64
	var sync string
	if nv, ok := m.view.Load().get(shard, node); ok {
		lsn, sync = nv.obs.LastWritableLSN, nv.lastSync
	}
	for _, po := range m.coord.PeerObservations() {
		if o, ok := po.Node(shard, node); ok {
			lsn = max(lsn, o.LastWritableLSN)
			if sync == "" && o.Up && !o.InRecovery {
				sync = o.SyncStandbys
			}
		}
	}
	return lsn, sync
}

// seen returns when this leader first saw the pending term (a change
// started by an earlier leader was committed before that moment).
func (sc *shardCtl) seen(term uint64) time.Time {
	t, ok := sc.pendingSeen[term]
	if !ok {
		t = time.Now()
		sc.pendingSeen[term] = t
	}
	return t
}

// drive carries a pending change to its end: promote the candidate and
// decide, or put the old primary back, or stay fenced when blocked. It is
// idempotent, so a new leader re-drives a change its predecessor left.
func (m *Manager) drive(ctx context.Context, sc *shardCtl, st cluster.ShardState) error {
	p := st.Pending
	if _, ok := sc.pendingSeen[st.Term]; !ok {
		m.step(sc, st.Term, "%s leads now: resuming the pending %s from %s", m.coord.Name(), p.Kind, p.From)
	}
	seen := sc.seen(st.Term)
	obs := m.probeAll(ctx, sc)
	// A node promoted for this term by an earlier attempt wins; a node
	// holding a newer epoch than the decided state means the state is
	// behind the databases (every proxy restarted?): stop and say so.
	for _, n := range sc.cfg.Nodes {
		o := obs[n.Name]
		if !o.Up || o.InRecovery {
			continue
		}
		if o.Epoch == st.Term {
			m.step(sc, st.Term, "%s already holds the epoch of term %d: completing an earlier attempt", n.Name, st.Term)
			return m.decide(ctx, sc, st, n.Name, o.Timeline, nil, "completed an earlier attempt")
		}
		if o.Epoch > st.Term {
			m.setBlocked(ctx, sc, st, fmt.Sprintf("node %s holds epoch %d, above the pending term %d; refusing to promote anything", n.Name, o.Epoch, st.Term))
			return errBlocked
		}
	}
	if p.Kind == cluster.KindSwitchover {
		return m.driveSwitchover(ctx, sc, st, seen, obs)
	}
	// Freeze the replicas so their positions stop moving while compared
	// (P8), then wait out every lease of the previous term.
	// The positions are frozen now, so the probe that reads them runs
	// while the grace period passes.
	m.freeze(ctx, sc, st, obs, "")
	probed := make(chan map[string]cluster.NodeObservation, 1)
	go func() { probed <- m.probeAll(ctx, sc) }()
	graceErr := sleepUntil(ctx, seen.Add(m.grace()))
	obs = <-probed
	if graceErr != nil {
		return graceErr
	}
	m.step(sc, st.Term, "lease grace %s over: no proxy holds a lease of term %d any more", m.grace().Round(time.Millisecond), st.Term-1)
	if receiving(sc, st, obs) { // a freeze failed (a slow or briefly unreachable replica): again
		m.freeze(ctx, sc, st, obs, "")
		obs = m.probeAll(ctx, sc)
	}
	if p.Candidate == "" && p.Kind == cluster.KindFailover {
		if o := obs[p.From]; o.Up && !o.InRecovery && o.Epoch < st.Term {
			return m.reinstate(ctx, sc, st, "primary answered again before a candidate was chosen")
		}
	}
	forced := ""
	if p.Kind == cluster.KindForced {
		forced = p.Candidate
	}
	ch := choice{Name: p.Candidate}
	if p.Candidate == "" || forced != "" {
		var cands []candidate
		ch, cands = m.choose(sc, st, p.From, obs, forced)
		if ch.Blocked != "" {
			m.setBlocked(ctx, sc, st, "failover stuck, writes stay fenced: "+ch.Blocked+"; run FAILOVER TO <node> to force")
			return errBlocked
		}
		m.step(sc, st.Term, "candidate %s chosen at %s (lag %d bytes); %s", ch.Name, formatLSN(ch.LSN), ch.Lag, describeCandidates(cands, ch.Name, p.From))
	} else {
		m.step(sc, st.Term, "promoting the recorded candidate %s", ch.Name)
	}
	if p.Candidate == "" {
		next := st.Clone()
		next.Pending.Candidate = ch.Name
		next.Blocked = ""
		if err := m.propose(ctx, sc, st, next); err != nil {
			return fmt.Errorf("record candidate: %w", err)
		}
		st, _ = m.coord.State().Shard(sc.cfg.Name)
	}
	tli, err := m.promoteAndRecord(ctx, sc, st, ch.Name, p.From)
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("%s: promoted %s (lag %d bytes)", p.Kind, ch.Name, ch.Lag)
	return m.decide(ctx, sc, st, ch.Name, tli, ch.Forked, reason)
}

// freeze empties primary_conninfo on every reachable replica except
// `except` and waits until their WAL receivers are gone.
func (m *Manager) freeze(ctx context.Context, sc *shardCtl, st cluster.ShardState, obs map[string]cluster.NodeObservation, except string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var frozen, failed []string
	defer func() {
		slices.Sort(frozen)
		slices.Sort(failed)
		switch {
		case len(failed) > 0:
			m.step(sc, st.Term, "froze replicas %v (primary_conninfo emptied); could not freeze %v", frozen, failed)
		case len(frozen) > 0:
			m.step(sc, st.Term, "froze replicas %v (primary_conninfo emptied, WAL receivers stopped)", frozen)
		}
	}()
	for _, n := range sc.cfg.Nodes {
		o := obs[n.Name]
		if n.Name == except || !o.Up || !o.InRecovery || st.IsStale(n.Name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := false
			defer func() {
				mu.Lock()
				if ok {
					frozen = append(frozen, n.Name)
				} else {
					failed = append(failed, n.Name)
				}
				mu.Unlock()
			}()
			if err := m.setPrimaryConninfo(ctx, n, nil); err != nil {
				m.log.Warn("freeze replica", zap.String("node", n.Name), zap.Error(err))
				return
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := m.waitFrozen(wctx, n); err != nil {
				m.log.Warn("replica did not stop its WAL receiver", zap.String("node", n.Name), zap.Error(err))
				return
			}
			ok = true
		}()
	}
	wg.Wait()
}

// receiving reports whether a replica that is not stale still runs a WAL
// receiver (its position may still move).
func receiving(sc *shardCtl, st cluster.ShardState, obs map[string]cluster.NodeObservation) bool {
	for _, n := range sc.cfg.Nodes {
		if o := obs[n.Name]; o.Up && o.InRecovery && o.Receiver != "" && !st.IsStale(n.Name) {
			return true
		}
	}
	return false
}

// promoteAndRecord promotes node, carries the synchronous replication
// setting over, and writes the term's epoch row on it.
func (m *Manager) promoteAndRecord(ctx context.Context, sc *shardCtl, st cluster.ShardState, node, from string) (int, error) {
	n, _ := sc.cfg.node(node)
	m.log.Warn("promoting", zap.String("shard", sc.cfg.Name), zap.String("node", node), zap.Uint64("term", st.Term))
	pctx, cancel := context.WithTimeout(ctx, m.cfg.PromoteTimeout+10*time.Second)
	defer cancel()
	m.step(sc, st.Term, "pg_promote sent to %s", node)
	if err := m.promote(pctx, n, func(what string) { m.step(sc, st.Term, "%s", what) }); err != nil {
		m.step(sc, st.Term, "promoting %s failed: %s", node, shortErr(err.Error()))
		return 0, fmt.Errorf("promote %s: %w", node, err)
	}
	if err := m.setReadOnly(ctx, n, false); err != nil { // a soft fence from an earlier life
		m.log.Warn("reset default_transaction_read_only on the new primary", zap.String("node", node), zap.Error(err))
	}
	_, syncNames := m.primaryHistory(sc.cfg.Name, from)
	if v := rewriteSyncStandbys(syncNames, sc.cfg.Nodes, node); v != "" {
		if err := m.setSyncStandbys(ctx, n, v); err != nil {
			m.log.Warn("set synchronous_standby_names on the new primary", zap.String("node", node), zap.Error(err))
		} else {
			m.step(sc, st.Term, "synchronous_standby_names on %s set to %s", node, v)
		}
	}
	tli, err := m.writeEpoch(ctx, sc.cfg.Name, n, st.Term)
	if err != nil {
		m.step(sc, st.Term, "writing the epoch on %s failed: %s", node, shortErr(err.Error()))
		return 0, fmt.Errorf("record epoch on %s: %w", node, err)
	}
	m.step(sc, st.Term, "epoch of term %d written on %s (timeline %d)", st.Term, node, tli)
	return tli, nil
}

// decide commits primary as the shard's primary for st.Term, marks the
// previous primary and forked replicas stale, and repoints the others.
func (m *Manager) decide(ctx context.Context, sc *shardCtl, st cluster.ShardState, primary string, tli int, forked []string, reason string) error {
	next := st.Clone()
	from := st.Primary
	kind := ""
	var started time.Time
	if st.Pending != nil {
		from, kind, started = st.Pending.From, st.Pending.Kind, st.Pending.Since
	}
	next.Pending, next.Blocked = nil, ""
	next.Primary, next.Timeline = primary, tli
	for _, s := range append([]string{from}, forked...) {
		if s != primary && !slices.Contains(next.Stale, s) {
			next.Stale = append(next.Stale, s)
		}
	}
	next.Stale = slices.DeleteFunc(next.Stale, func(s string) bool { return s == primary })
	next.DecidedBy, next.DecidedAt, next.Reason = m.coord.Name(), time.Now(), reason
	for _, s := range next.Stale {
		if !st.IsStale(s) {
			why := "a replica ahead of the new primary"
			if s == from {
				why = "the old primary"
			}
			m.step(sc, st.Term, "%s marked stale (%s): no traffic until REJOIN", s, why)
		}
	}
	if next.LastChange == nil || next.LastChange.Term != next.Term {
		k := kind
		if k == "" {
			k = cluster.KindFailover
		}
		next.LastChange = &cluster.ChangeLog{Term: next.Term, Kind: k, From: from, Started: started}
	}
	next.LastChange.To, next.LastChange.Finished, next.LastChange.Outcome = primary, next.DecidedAt, reason
	if err := m.propose(ctx, sc, st, next); err != nil {
		return fmt.Errorf("decide %s: %w", primary, err)
	}
	m.step(sc, next.Term, "term %d committed in Raft: primary %s (timeline %d)", next.Term, primary, tli)
	delete(sc.pendingSeen, st.Term)
	rec := &ChangeRecord{Term: next.Term, Kind: kind, From: from, To: primary, Started: started, Decided: next.DecidedAt}
	sc.last.Store(rec)
	if kind != "" && primary != from {
		m.met.changes.WithLabelValues(sc.cfg.Name, kind).Inc()
		m.met.duration.WithLabelValues(kind).Observe(rec.Decided.Sub(started).Seconds())
	}
	m.log.Warn("primary decided", zap.String("shard", sc.cfg.Name), zap.String("primary", primary), zap.Uint64("term", next.Term),
		zap.Int("timeline", tli), zap.Strings("stale", next.Stale), zap.String("reason", reason), zap.Duration("took", rec.Decided.Sub(started)))
	clear(sc.repointed)
	clear(sc.streamNoted)
	got, _ := m.coord.State().Shard(sc.cfg.Name)
	m.followUp(ctx, sc, got) // commits the steps after the decision too
	return nil
}

// reinstate gives the pending term to the primary that was being replaced
// (it came back, or a switchover was aborted) and lets the replicas stream
// from it again.
func (m *Manager) reinstate(ctx context.Context, sc *shardCtl, st cluster.ShardState, reason string) error {
	from, _ := sc.cfg.node(st.Pending.From)
	m.step(sc, st.Term, "reinstating %s: %s", from.Name, reason)
	for _, n := range sc.cfg.Nodes {
		if n.Name == from.Name || st.IsStale(n.Name) {
			continue
		}
		if err := m.setPrimaryConninfo(ctx, n, &from); err != nil {
			m.log.Warn("repoint replica to the reinstated primary", zap.String("node", n.Name), zap.Error(err))
		}
	}
	if err := m.setReadOnly(ctx, from, false); err != nil {
		return fmt.Errorf("reinstate %s: %w", from.Name, err)
	}
	tli, err := m.writeEpoch(ctx, sc.cfg.Name, from, st.Term)
	if err != nil {
		return fmt.Errorf("reinstate %s: %w", from.Name, err)
	}
	return m.decide(ctx, sc, st, from.Name, tli, nil, "reinstated "+from.Name+": "+reason)
}

// followUp keeps a decided shard in shape: replicas stream from the
// primary, a writable node that is not the primary is marked stale, and a
// stale node that is writable gets the soft fence.
func (m *Manager) followUp(ctx context.Context, sc *shardCtl, st cluster.ShardState) {
	if st.Pending != nil {
		return
	}
	primary, _ := sc.cfg.node(st.Primary)
	v := m.view.Load()
	track := tracking(st)
	if track {
		defer m.flushSteps(ctx, sc)
	}
	var rogue []string
	for _, n := range sc.cfg.Nodes {
		if n.Name == st.Primary {
			continue
		}
		nv, ok := v.get(sc.cfg.Name, n.Name)
		if !ok || !nv.obs.Up {
			continue
		}
		o := nv.obs
		if st.IsStale(n.Name) {
			if !o.InRecovery && sc.softFenced[n.Name] != st.Term {
				m.log.Warn("stale node is writable; it gets no traffic. Soft-fencing it (default_transaction_read_only); run REJOIN to make it a replica",
					zap.String("shard", sc.cfg.Name), zap.String("node", n.Name))
				if err := m.setReadOnly(ctx, n, true); err == nil {
					sc.softFenced[n.Name] = st.Term
				}
			}
			continue
		}
		if !o.InRecovery {
			rogue = append(rogue, n.Name)
			continue
		}
		if o.Receiver == "streaming" && o.Sender == primary.Address {
			if _, ok := sc.repointed[n.Name]; ok && track && !sc.streamNoted[n.Name] {
				sc.streamNoted[n.Name] = true
				m.step(sc, st.Term, "replica %s streams from %s", n.Name, st.Primary)
			}
			continue
		}
		if t, ok := sc.repointed[n.Name]; ok && time.Since(t) < repointBackoff {
			continue
		}
		sc.repointed[n.Name] = time.Now()
		m.log.Info("repointing replica", zap.String("shard", sc.cfg.Name), zap.String("node", n.Name), zap.String("primary", st.Primary),
			zap.String("was", o.Sender), zap.String("status", o.Receiver))
		err := m.setPrimaryConninfo(ctx, n, &primary)
		if err != nil {
			m.log.Warn("repoint replica", zap.String("node", n.Name), zap.Error(err))
		}
		if track {
			if err != nil {
				m.step(sc, st.Term, "repointing replica %s to %s failed: %s", n.Name, st.Primary, shortErr(err.Error()))
			} else {
				m.step(sc, st.Term, "replica %s repointed to %s", n.Name, st.Primary)
			}
		}
	}
	if len(rogue) > 0 {
		next := st.Clone()
		next.Stale = append(next.Stale, rogue...)
		next.Reason = fmt.Sprintf("writable nodes %v are not the decided primary", rogue)
		m.log.Error("writable nodes that are not the decided primary; marking them stale", zap.String("shard", sc.cfg.Name), zap.Strings("nodes", rogue))
		if err := m.propose(ctx, sc, st, next); err != nil {
			m.log.Warn("mark stale", zap.Error(err))
		}
	}
}

// sleepUntil waits until t or ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
