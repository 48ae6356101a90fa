package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Message kinds, the first byte of every user message.
const (
	msgObservations  = 'o'
	msgLeaseRequest  = 'q'
	msgLeaseResponse = 'a'
	msgTopic         = 't' // an application message, see messages.go
)

// maxBestEffort is the largest message sent over UDP; bigger ones go over
// TCP (SendReliable).
const maxBestEffort = 1200

type leaseRequest struct {
	From string `json:"f"`
	Seq  uint64 `json:"q"`
}

type leaseResponse struct {
	From      string        `json:"f"`
	Seq       uint64        `json:"q"`
	Applied   uint64        `json:"i"` // leader's applied index when answering
	Remaining time.Duration `json:"r"` // leader's own lease left when answering
}

func encodeMsg(kind byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode message: %w", err)
	}
	return append([]byte{kind}, b...), nil
}

func encodeCommand(c command) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode command: %w", err)
	}
	return b, nil
}

// delegate is memberlist's Delegate. memberlist calls it from its packet
// and stream loops, so nothing here blocks: NotifyMsg copies the message
// into the inbox channel (dropping it when the handler is behind).
type delegate struct{ n *Node }

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) NodeMeta(int) []byte { return nil }

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	c := append([]byte(nil), b...) // memberlist reuses b after we return
	select {
	case d.n.inbox <- c:
	default:
		d.n.dropped.Add(1)
	}
}

func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *delegate) LocalState(bool) []byte          { return nil }
func (d *delegate) MergeRemoteState([]byte, bool)   {}

// events keeps this node's copy of the live members and logs changes.
// memberlist calls it with its node lock held and hands out pointers to
// nodes it keeps mutating (reading them later races), so the callbacks
// copy them and publish a new map.
type events struct{ n *Node }

var _ memberlist.EventDelegate = (*events)(nil)

func (e *events) NotifyJoin(m *memberlist.Node) {
	e.n.setMember(m, true)
	e.n.log.Info("proxy joined", zap.String("member", m.Name), zap.String("addr", m.Address()))
}

func (e *events) NotifyLeave(m *memberlist.Node) {
	e.n.setMember(m, false)
	if m.Name != e.n.cfg.NodeName {
		e.n.log.Warn("proxy left or failed", zap.String("member", m.Name), zap.String("addr", m.Address()))
	}
}

func (e *events) NotifyUpdate(m *memberlist.Node) { e.n.setMember(m, true) }

// setMember adds (a copy of) m to the live members, or removes it.
func (n *Node) setMember(m *memberlist.Node, alive bool) {
	n.membersMu.Lock()
	defer n.membersMu.Unlock()
	old := *n.members.Load()
	next := make(map[string]*memberlist.Node, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if alive {
		c := *m
		c.Addr = slices.Clone(m.Addr)
		c.Meta = slices.Clone(m.Meta)
		next[m.Name] = &c
	} else {
		delete(next, m.Name)
	}
	n.members.Store(&next)
}

// liveMembers returns the copies of the live members (shared: read only).
func (n *Node) liveMembers() map[string]*memberlist.Node { return *n.members.Load() }

// peerFilter keeps proxies that are not configured peers out.
type peerFilter struct{ n *Node }

var (
	_ memberlist.AliveDelegate = (*peerFilter)(nil)
	_ memberlist.MergeDelegate = (*peerFilter)(nil)
)

func (p *peerFilter) NotifyAlive(m *memberlist.Node) error {
	if !slices.Contains(p.n.peers, m.Name) {
		return fmt.Errorf("cluster: %q is not a configured peer", m.Name)
	}
	return nil
}

func (p *peerFilter) NotifyMerge(ms []*memberlist.Node) error {
	for _, m := range ms {
		if err := p.NotifyAlive(m); err != nil {
			return err
		}
	}
	return nil
}

// handleLoop processes messages handed over by NotifyMsg.
func (n *Node) handleLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.closed:
			return
		case b := <-n.inbox:
			n.handle(b)
		}
	}
}

func (n *Node) handle(b []byte) {
	switch b[0] {
	case msgObservations:
		var o Observations
		if err := json.Unmarshal(b[1:], &o); err != nil || o.From == n.cfg.NodeName || !slices.Contains(n.peers, o.From) {
			return
		}
		old := *n.peerObs.Load()
		if prev, ok := old[o.From]; ok && prev.Seq >= o.Seq && time.Since(prev.Received) < n.cfg.Lease {
			return // reordered; a restarted peer starts at 1 again, hence the age check
		}
		next := make(map[string]PeerObservations, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		next[o.From] = PeerObservations{Observations: o, Received: time.Now()}
		n.peerObs.Store(&next)
	case msgLeaseRequest:
		var q leaseRequest
		if err := json.Unmarshal(b[1:], &q); err != nil {
			return
		}
		n.answerLease(q)
	case msgLeaseResponse:
		var a leaseResponse
		if err := json.Unmarshal(b[1:], &a); err != nil {
			return
		}
		n.acceptLease(a)
	case msgTopic:
		n.handleTopic(b[1:])
	}
}

// heartbeatLoop renews the lease and sends observations every Heartbeat.
func (n *Node) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		n.renewLease()
		n.sendObservations()
		select {
		case <-ctx.Done():
			return
		case <-n.closed:
			return
		case <-t.C:
		}
	}
}

// rejoinLoop joins the seeds at start and again while a configured peer is
// missing, so the cluster re-forms after a partition longer than
// memberlist's dead-node timeouts.
func (n *Node) rejoinLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		if len(n.liveMembers()) < len(n.peers) {
			var seeds []string
			for _, s := range n.cfg.Seeds {
				if s != n.gossip {
					seeds = append(seeds, s)
				}
			}
			if len(seeds) > 0 {
				if k, err := n.ml.Join(seeds); err != nil {
					n.log.Debug("join seeds", zap.Int("contacted", k), zap.Error(err))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-n.closed:
			return
		case <-t.C:
		}
	}
}

// member finds a live gossip member by name.
func (n *Node) member(name string) *memberlist.Node { return n.liveMembers()[name] }

func (n *Node) sendObservations() {
	obs := n.local.Load()
	if obs == nil {
		return
	}
	b, err := encodeMsg(msgObservations, obs)
	if err != nil {
		n.log.Error("encode observations", zap.Error(err))
		return
	}
	n.sendToPeers(b, "observations")
}

// sendToPeers sends message b to every live peer: over UDP when it fits a
// datagram, else over TCP in the background, at most one such send per
// peer and kind at a time (a message finding one running is dropped). It
// does not block.
func (n *Node) sendToPeers(b []byte, kind string) {
	for _, m := range n.liveMembers() {
		if m.Name == n.cfg.NodeName {
			continue
		}
		if len(b) <= maxBestEffort {
			_ = n.ml.SendBestEffort(m, b)
			continue
		}
		key := kind + "\x00" + m.Name
		if _, busy := n.sending.LoadOrStore(key, struct{}{}); busy {
			continue
		}
		go func() {
			defer n.sending.Delete(key)
			if err := n.ml.SendReliable(m, b); err != nil {
				n.log.Debug("send to peer", zap.String("kind", kind), zap.String("member", m.Name), zap.Error(err))
			}
		}()
	}
}
