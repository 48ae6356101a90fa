package cluster

import (
	"time"

	"sync/atomic"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// The write lease.
//
// A proxy may forward writes only while it holds a lease. The Raft leader
// renews its own by confirming its leadership with a quorum (VerifyLeader):
// a confirmation started at time s is good until s+Lease. Every other proxy
// asks the leader each Heartbeat; the leader answers with its applied index
// and what is left of its own lease, and the follower, if it has applied at
// least that index, holds the lease until send+min(Lease, remaining),
// measured from when it sent the request on its own monotonic clock.
//
// Safety: say a leader commits a fence for a new term at time t0 (index
// i0). Any answer sent after t0 carries an index >= i0, so a proxy that
// accepts it has applied the fence. Any answer sent before t0 was asked for
// before t0 and expires before t0+Lease. A deposed leader cannot confirm
// its leadership after its successor's election (the quorums intersect),
// so its lease, and every lease it granted, ends before t0+Lease as well.
// Hence a change of primary that waits Lease (plus a margin for clock rate
// drift) after committing its fence knows that no proxy still forwards
// writes under the previous term.

// renewLease runs once per heartbeat.
func (n *Node) renewLease() {
	if n.raft.State() == raft.Leader {
		if !n.verifying.CompareAndSwap(false, true) {
			return
		}
		start := n.now()
		f := n.raft.VerifyLeader()
		go func() {
			defer n.verifying.Store(false)
			if err := f.Error(); err != nil {
				n.log.Debug("leadership not confirmed", zap.Error(err))
				return
			}
			if n.raft.State() != raft.Leader {
				return
			}
			until := start + int64(n.cfg.Lease)
			storeMax(&n.leaderLease, until)
			storeMax(&n.lease, until)
		}()
		return
	}
	leader := n.Leader()
	if leader == "" || leader == n.cfg.NodeName {
		return
	}
	m := n.member(leader)
	if m == nil {
		return
	}
	n.leaseMu.Lock()
	n.leaseSeq++
	seq := n.leaseSeq
	now := n.now()
	n.leaseReqs[seq] = now
	for s, t := range n.leaseReqs { // forget unanswered requests
		if now-t > int64(n.cfg.Lease) {
			delete(n.leaseReqs, s)
		}
	}
	n.leaseMu.Unlock()
	b, err := encodeMsg(msgLeaseRequest, leaseRequest{From: n.cfg.NodeName, Seq: seq})
	if err != nil {
		return
	}
	_ = n.ml.SendBestEffort(m, b)
}

// answerLease runs on the leader for each request.
func (n *Node) answerLease(q leaseRequest) {
	if n.raft.State() != raft.Leader {
		return
	}
	remaining := n.leaderLease.Load() - n.now()
	if remaining <= 0 {
		return
	}
	m := n.member(q.From)
	if m == nil {
		return
	}
	b, err := encodeMsg(msgLeaseResponse, leaseResponse{
		From: n.cfg.NodeName, Seq: q.Seq, Applied: n.fsm.state.Load().Index, Remaining: durationNS(remaining),
	})
	if err != nil {
		return
	}
	_ = n.ml.SendBestEffort(m, b)
}

// acceptLease runs on a follower for each answer.
func (n *Node) acceptLease(a leaseResponse) {
	if a.From != n.Leader() {
		return
	}
	n.leaseFor(a)
}

// leaseFor extends the lease for an answer to one of our requests, if we
// have applied what the leader had applied when it answered.
func (n *Node) leaseFor(a leaseResponse) bool {
	n.leaseMu.Lock()
	sent, ok := n.leaseReqs[a.Seq]
	delete(n.leaseReqs, a.Seq)
	n.leaseMu.Unlock()
	if !ok || n.fsm.state.Load().Index < a.Applied {
		return false // unknown request, or behind the leader: the next heartbeat asks again
	}
	until := sent + min(int64(n.cfg.Lease), int64(a.Remaining))
	storeMax(&n.lease, until)
	return true
}

// storeMax raises v to x unless it is already higher.
func storeMax(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if cur >= x || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

func durationNS(ns int64) time.Duration { return time.Duration(ns) }
