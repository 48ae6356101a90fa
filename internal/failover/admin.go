package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/cluster"
)

// Operator commands. They run on the Raft leader (elsewhere they return an
// error wrapping ErrNotLeader that names the leader), wait for the shard's
// current leader round to finish, and return when the change is decided.

// lockShard finds a shard, takes its mutex and checks leadership.
func (m *Manager) lockShard(shard string) (*shardCtl, func(), error) {
	sc := m.byName[shard]
	if sc == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownShard, shard)
	}
	sc.mu.Lock()
	if !m.coord.IsLeader() {
		sc.mu.Unlock()
		return nil, nil, &cluster.NotLeaderError{Leader: m.coord.Leader()}
	}
	return sc, sc.mu.Unlock, nil
}

// FailoverTo promotes node now, whatever its lag (the operator's answer to
// a blocked automatic failover), and marks the current primary stale. Use
// SwitchoverTo to change a healthy primary without losing writes.
func (m *Manager) FailoverTo(ctx context.Context, shard, node string) error {
	sc, unlock, err := m.lockShard(shard)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := sc.cfg.node(node); !ok {
		return fmt.Errorf("%w: %q in shard %s", ErrUnknownNode, node, shard)
	}
	st, ok := m.coord.State().Shard(shard)
	if !ok {
		return fmt.Errorf("%w: shard %s has no decided primary yet", ErrRefused, shard)
	}
	if st.Pending == nil && st.Primary == node {
		return fmt.Errorf("%w: %s is already the primary", ErrRefused, node)
	}
	if st.IsStale(node) {
		return fmt.Errorf("%w: %s is stale; REJOIN it first", ErrRefused, node)
	}
	m.log.Warn("FAILOVER TO requested", zap.String("shard", shard), zap.String("node", node), zap.Uint64("term", st.Term))
	switch {
	case st.Pending == nil:
		m.step(sc, st.Term+1, "FAILOVER TO %s requested by an operator", node)
		st, err = m.startChange(ctx, sc, st, cluster.KindForced, node)
		if err != nil {
			return err
		}
	case st.Pending.Candidate != "" && st.Pending.Candidate != node:
		return fmt.Errorf("%w: a change to %s is already under way (promotion may have started)", ErrRefused, st.Pending.Candidate)
	default:
		next := st.Clone()
		next.Pending.Kind, next.Pending.Candidate = cluster.KindForced, node
		if next.LastChange != nil && next.LastChange.Term == st.Term {
			next.LastChange.Kind = cluster.KindForced
		}
		m.step(sc, st.Term, "FAILOVER TO %s requested by an operator during the pending %s", node, st.Pending.Kind)
		if err := m.propose(ctx, sc, st, next); err != nil {
			return err
		}
		st, _ = m.coord.State().Shard(shard)
	}
	if err := m.drive(ctx, sc, st); err != nil {
		return err
	}
	return m.checkPrimary(shard, node)
}

// SwitchoverTo makes node the primary without losing an acknowledged
// write: it fences writes on every proxy (they get a retryable error for
// the duration), soft-fences the old primary, waits until node has
// received everything the old primary wrote, promotes it, and resumes
// writes on it. The old primary is then stale until Rejoin. If node does
// not catch up within switchover_timeout, the old primary is reinstated
// (under a new term) and an error is returned.
func (m *Manager) SwitchoverTo(ctx context.Context, shard, node string) error {
	sc, unlock, err := m.lockShard(shard)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := sc.cfg.node(node); !ok {
		return fmt.Errorf("%w: %q in shard %s", ErrUnknownNode, node, shard)
	}
	st, ok := m.coord.State().Shard(shard)
	if !ok || st.Pending != nil {
		return fmt.Errorf("%w: shard %s is not in a decided state", ErrRefused, shard)
	}
	if st.Primary == node {
		return fmt.Errorf("%w: %s is already the primary", ErrRefused, node)
	}
	if st.IsStale(node) {
		return fmt.Errorf("%w: %s is stale; REJOIN it first", ErrRefused, node)
	}
	primary, _ := sc.cfg.node(st.Primary)
	obs := m.probeAll(ctx, sc)
	if o := obs[st.Primary]; !o.Up || o.InRecovery {
		return fmt.Errorf("%w: primary %s is not writable (%s); use FAILOVER TO", ErrRefused, st.Primary, o.Err)
	}
	if o := obs[node]; !o.Up || !o.InRecovery || o.Receiver != "streaming" || o.Sender != primary.Address {
		return fmt.Errorf("%w: %s is not a replica streaming from %s", ErrRefused, node, st.Primary)
	}
	m.log.Warn("SWITCHOVER TO requested", zap.String("shard", shard), zap.String("node", node), zap.Uint64("term", st.Term))
	m.step(sc, st.Term+1, "SWITCHOVER TO %s requested by an operator", node)
	st, err = m.startChange(ctx, sc, st, cluster.KindSwitchover, node)
	if err != nil {
		return err
	}
	if err := m.drive(ctx, sc, st); err != nil {
		return err
	}
	return m.checkPrimary(shard, node)
}

func (m *Manager) checkPrimary(shard, node string) error {
	st, _ := m.coord.State().Shard(shard)
	if st.Pending != nil || st.Primary != node {
		return fmt.Errorf("%w: the change did not complete (primary %s, term %d): %s", ErrRefused, st.Primary, st.Term, st.Reason)
	}
	return nil
}

// driveSwitchover runs a planned change with the old primary alive.
func (m *Manager) driveSwitchover(ctx context.Context, sc *shardCtl, st cluster.ShardState, seen time.Time, obs map[string]cluster.NodeObservation) error {
	p := st.Pending
	from, _ := sc.cfg.node(p.From)
	cand, _ := sc.cfg.node(p.Candidate)
	if o := obs[from.Name]; !o.Up || o.InRecovery {
		// The primary died during the switchover: hand over to the
		// automatic path, which checks the candidate's lag.
		next := st.Clone()
		next.Pending.Kind, next.Pending.Candidate = cluster.KindFailover, ""
		next.Reason = "switchover aborted: primary unreachable"
		if next.LastChange != nil && next.LastChange.Term == st.Term {
			next.LastChange.Kind = cluster.KindFailover
		}
		m.step(sc, st.Term, "primary %s unreachable during the switchover: automatic failover takes over", from.Name)
		if err := m.propose(ctx, sc, st, next); err != nil {
			return err
		}
		return fmt.Errorf("%w: primary %s became unreachable during the switchover; automatic failover takes over", ErrRefused, from.Name)
	}
	if err := sleepUntil(ctx, seen.Add(m.grace())); err != nil {
		return err
	}
	m.step(sc, st.Term, "lease grace %s over: no proxy holds a lease of term %d any more", m.grace().Round(time.Millisecond), st.Term-1)
	// No proxy forwards writes any more. Stop clients that bypass the
	// proxies, and freeze the other replicas (they are behind the
	// candidate, which must stay ahead of them).
	if err := m.setReadOnly(ctx, from, true); err != nil {
		return m.abortSwitchover(ctx, sc, st, fmt.Sprintf("soft fence of %s failed: %v", from.Name, err))
	}
	m.step(sc, st.Term, "old primary %s soft-fenced (default_transaction_read_only)", from.Name)
	m.freeze(ctx, sc, st, obs, cand.Name)
	deadline := time.Now().Add(m.cfg.SwitchoverTimeout)
	caught := false
	for !caught && time.Now().Before(deadline) && ctx.Err() == nil {
		target, err := m.currentLSN(ctx, from)
		if err != nil {
			return m.abortSwitchover(ctx, sc, st, fmt.Sprintf("read the primary's position: %v", err))
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		err = poll(wctx, 20*time.Millisecond, func() (bool, error) {
			o := m.probe(wctx, sc.cfg.Name, cand)
			return o.Up && max(o.ReceiveLSN, o.ReplayLSN) >= target, nil
		})
		cancel()
		if err != nil {
			break
		}
		// Stop the candidate's receiver, then make sure nothing was written
		// on the old primary after the position it reached.
		if err := m.setPrimaryConninfo(ctx, cand, nil); err != nil {
			return m.abortSwitchover(ctx, sc, st, fmt.Sprintf("freeze %s: %v", cand.Name, err))
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = m.waitFrozen(fctx, cand)
		cancel()
		if err != nil {
			return m.abortSwitchover(ctx, sc, st, fmt.Sprintf("%s did not stop its WAL receiver: %v", cand.Name, err))
		}
		final, err := m.currentLSN(ctx, from)
		if err != nil {
			return m.abortSwitchover(ctx, sc, st, fmt.Sprintf("read the primary's position: %v", err))
		}
		o := m.probe(ctx, sc.cfg.Name, cand)
		if o.Up && max(o.ReceiveLSN, o.ReplayLSN) >= final {
			m.step(sc, st.Term, "%s caught up with %s at %s and stopped its WAL receiver", cand.Name, from.Name, formatLSN(final))
			caught = true
			break
		}
		if err := m.setPrimaryConninfo(ctx, cand, &from); err != nil { // resume streaming and try again
			return m.abortSwitchover(ctx, sc, st, fmt.Sprintf("resume %s: %v", cand.Name, err))
		}
	}
	if !caught {
		return m.abortSwitchover(ctx, sc, st, fmt.Sprintf("%s did not catch up within %s", cand.Name, m.cfg.SwitchoverTimeout))
	}
	tli, err := m.promoteAndRecord(ctx, sc, st, cand.Name, from.Name)
	if err != nil {
		return err // the candidate stays recorded; the next round retries it
	}
	return m.decide(ctx, sc, st, cand.Name, tli, nil, "switchover to "+cand.Name)
}

func (m *Manager) abortSwitchover(ctx context.Context, sc *shardCtl, st cluster.ShardState, why string) error {
	m.log.Error("switchover aborted; reinstating the old primary", zap.String("shard", sc.cfg.Name), zap.String("why", why))
	m.step(sc, st.Term, "switchover aborted: %s", why)
	if err := m.reinstate(ctx, sc, st, "switchover aborted: "+why); err != nil {
		return fmt.Errorf("switchover aborted (%s), and reinstating failed: %w", why, err)
	}
	return fmt.Errorf("%w: switchover aborted: %s", ErrRefused, why)
}

// Rejoin turns a stale node (a former primary, or a replica that forked)
// back into a replica of the current primary: the Rewinder stops it, runs
// pg_rewind against the primary and starts it as a standby; then the soft
// fence is lifted and the node leaves the stale list once it streams. The
// shard is not locked while the rewind runs, so failover detection goes
// on; if the primary changes meanwhile, Rejoin fails and can be run again.
func (m *Manager) Rejoin(ctx context.Context, shard, node string) error {
	sc, unlock, err := m.lockShard(shard)
	if err != nil {
		return err
	}
	n, ok := sc.cfg.node(node)
	st, decided := m.coord.State().Shard(shard)
	switch {
	case !ok:
		err = fmt.Errorf("%w: %q in shard %s", ErrUnknownNode, node, shard)
	case !decided || st.Pending != nil:
		err = fmt.Errorf("%w: shard %s is not in a decided state", ErrRefused, shard)
	case !st.IsStale(node):
		err = fmt.Errorf("%w: %s is not stale", ErrRefused, node)
	case m.rewinder == nil:
		err = ErrNoRewinder
	}
	unlock()
	if err != nil {
		return err
	}
	primary, _ := sc.cfg.node(st.Primary)
	req := RewindRequest{
		Shard: shard, Node: n, Primary: primary,
		SourceConninfo:  m.sourceConninfo(primary),
		PrimaryConninfo: m.conninfo(primary, n.Name),
	}
	m.log.Warn("REJOIN: rewinding", zap.String("shard", shard), zap.String("node", node), zap.String("primary", primary.Name))
	if err := m.rewinder.Rewind(ctx, req); err != nil {
		return fmt.Errorf("rejoin %s: %w", node, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last string
	err = poll(wctx, 100*time.Millisecond, func() (bool, error) {
		o := m.probe(wctx, shard, n)
		last = fmt.Sprintf("up=%v in_recovery=%v receiver=%q sender=%q err=%q", o.Up, o.InRecovery, o.Receiver, o.Sender, o.Err)
		return o.Up && o.InRecovery && o.Receiver == "streaming" && o.Sender == primary.Address, nil
	})
	if err != nil {
		return fmt.Errorf("rejoin %s: it does not stream from %s (%s): %w", node, primary.Name, last, err)
	}
	if err := m.setReadOnly(ctx, n, false); err != nil {
		m.log.Warn("lift soft fence", zap.String("node", node), zap.Error(err))
	}
	sc, unlock, err = m.lockShard(shard)
	if err != nil {
		return err
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		st, _ = m.coord.State().Shard(shard)
		if st.Pending != nil || st.Primary != primary.Name {
			return fmt.Errorf("%w: the primary changed while %s was rewound; run REJOIN again", ErrRefused, node)
		}
		if !st.IsStale(node) {
			break
		}
		next := st.Clone()
		next.Stale = slices.DeleteFunc(next.Stale, func(s string) bool { return s == node })
		next.Reason = "rejoined " + node
		err = m.coord.Propose(ctx, st.Version, next)
		if err == nil || !errors.Is(err, cluster.ErrConflict) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("rejoin %s: %w", node, err)
	}
	delete(sc.softFenced, node)
	m.log.Info("node rejoined as a replica", zap.String("shard", shard), zap.String("node", node))
	return nil
}

// sourceConninfo is the libpq connection string pg_rewind uses to read
// from the primary (as the admin user: it needs pg_read_binary_file and
// friends).
func (m *Manager) sourceConninfo(primary NodeConfig) string {
	host, port, _ := net.SplitHostPort(primary.Address)
	parts := []string{"host=" + connValue(host), "port=" + connValue(port), "user=" + connValue(m.cfg.User), "dbname=" + connValue(m.cfg.Database)}
	if m.cfg.Password != "" {
		parts = append(parts, "password="+connValue(m.cfg.Password))
	}
	return strings.Join(parts, " ")
}
