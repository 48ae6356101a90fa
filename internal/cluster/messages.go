package cluster

import (
	"encoding/binary"
	"slices"
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

// SendToPeers sends payload under topic to every live peer, best effort
// (see sendToPeers). Partitions made with Faults apply. It does not block.
func (n *Node) SendToPeers(topic byte, payload []byte) {
	if n.ml == nil {
		return
	}
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(n.cfg.NodeName)+len(payload))
	b = append(b, msgTopic, topic)
	b = binary.AppendUvarint(b, uint64(len(n.cfg.NodeName)))
	b = append(b, n.cfg.NodeName...)
	b = append(b, payload...)
	n.sendToPeers(b, "topic")
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
