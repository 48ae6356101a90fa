package cluster

import (
	"encoding/binary"
	"slices"

	"go.uber.org/zap"
)

// TopicHandler receives an application message sent by peer from with
// SendToPeers. It runs on the node's message loop: it must not block.
type TopicHandler func(from string, payload []byte)

// Handle registers fn for messages of topic (one byte chosen by the
// application; one handler per topic, the last one wins). Safe to call at
// any time.
func (n *Node) Handle(topic byte, fn TopicHandler) {
	n.membersMu.Lock() // serializes writers; readers load the pointer
	defer n.membersMu.Unlock()
	next := map[byte]TopicHandler{}
	if old := n.handlers.Load(); old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[topic] = fn
	n.handlers.Store(&next)
}

// SendToPeers sends payload under topic to every live peer, best effort:
// over UDP when it fits a datagram, else over TCP in the background (at
// most one such send per peer at a time; a message that finds one running
// is dropped). Partitions made with Faults apply. It does not block.
func (n *Node) SendToPeers(topic byte, payload []byte) {
	if n.ml == nil {
		return
	}
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(n.cfg.NodeName)+len(payload))
	b = append(b, msgTopic, topic)
	b = binary.AppendUvarint(b, uint64(len(n.cfg.NodeName)))
	b = append(b, n.cfg.NodeName...)
	b = append(b, payload...)
	for _, m := range n.liveMembers() {
		if m.Name == n.cfg.NodeName {
			continue
		}
		if len(b) <= maxBestEffort {
			_ = n.ml.SendBestEffort(m, b)
			continue
		}
		key := "topic\x00" + m.Name
		if _, busy := n.sending.LoadOrStore(key, struct{}{}); busy {
			n.dropped.Add(1)
			continue
		}
		go func() {
			defer n.sending.Delete(key)
			if err := n.ml.SendReliable(m, b); err != nil {
				n.log.Debug("send topic message", zap.String("member", m.Name), zap.Error(err))
			}
		}()
	}
}

// handleTopic dispatches a msgTopic message (without its kind byte).
func (n *Node) handleTopic(b []byte) {
	if len(b) < 2 {
		return
	}
	topic := b[0]
	l, k := binary.Uvarint(b[1:])
	if k <= 0 || l > uint64(len(b)-1-k) {
		return
	}
	from := string(b[1+k : 1+k+int(l)])
	if from == n.cfg.NodeName || !slices.Contains(n.peers, from) {
		return
	}
	hs := n.handlers.Load()
	if hs == nil {
		return
	}
	if fn := (*hs)[topic]; fn != nil {
		fn(from, b[1+k+int(l):])
	}
}
