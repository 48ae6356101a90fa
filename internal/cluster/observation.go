package cluster

import "time"

// NodeObservation is what one proxy saw of one database node at its last
// probe. Proxies send their observations to every member each heartbeat;
// the failover logic counts them as evidence (is the primary down for a
// quorum of proxies?) and reads the WAL positions.
type NodeObservation struct {
	Shard string `json:"s"`
	Node  string `json:"n"`
	// Up is true when the last probe succeeded.
	Up bool `json:"u,omitempty"`
	// DownFor is how long probes have failed without a success in
	// between, measured by the observer when it sent the observation.
	DownFor time.Duration `json:"d,omitempty"`
	// InRecovery is pg_is_in_recovery() (a replica).
	InRecovery bool `json:"r,omitempty"`
	// Timeline is the node's timeline (for a replica, the one it receives).
	Timeline int `json:"t,omitempty"`
	// CurrentLSN is pg_current_wal_lsn() of a writable node.
	CurrentLSN uint64 `json:"c,omitempty"`
	// LastWritableLSN is the highest CurrentLSN this proxy has seen on the
	// node while it was writable; kept after the node went down, it bounds
	// how much a candidate replica may lack.
	LastWritableLSN uint64 `json:"lw,omitempty"`
	// ReceiveLSN and ReplayLSN are pg_last_wal_receive_lsn() and
	// pg_last_wal_replay_lsn() of a replica.
	ReceiveLSN uint64 `json:"rl,omitempty"`
	ReplayLSN  uint64 `json:"pl,omitempty"`
	// Receiver is pg_stat_wal_receiver.status ("" when no WAL receiver
	// runs), Sender the host:port it streams from, and ReceiverAge the age
	// of the last message it got from the sender.
	Receiver    string        `json:"ws,omitempty"`
	Sender      string        `json:"wf,omitempty"`
	ReceiverAge time.Duration `json:"wa,omitempty"`
	// Epoch is max(term) of the shard in tiergate.ha_epoch on the node.
	Epoch uint64 `json:"e,omitempty"`
	// SyncStandbys is synchronous_standby_names of a writable node.
	SyncStandbys string `json:"ss,omitempty"`
	// Err is the last probe error, shortened.
	Err string `json:"x,omitempty"`
}

// Observations is one proxy's view of every database node.
type Observations struct {
	From  string            `json:"f"`
	Seq   uint64            `json:"q"`
	Nodes []NodeObservation `json:"o"`
}

// PeerObservations is the last Observations received from a peer and when
// (monotonic clock).
type PeerObservations struct {
	Observations
	Received time.Time
}

// Node returns the observation of node in shard, if present.
func (o *Observations) Node(shard, node string) (NodeObservation, bool) {
	for _, n := range o.Nodes {
		if n.Shard == shard && n.Node == node {
			return n, true
		}
	}
	return NodeObservation{}, false
}
