package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ErrNotLeader is matched (errors.Is) by the *NotLeaderError that Propose
// returns on a proxy that is not the Raft leader.
var ErrNotLeader = errors.New("cluster: not the raft leader")

// ErrClosed is returned after the node was shut down.
var ErrClosed = errors.New("cluster: node is closed")

// NotLeaderError says which proxy leads, when known.
type NotLeaderError struct {
	Leader string // "" when no leader is known
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "cluster: not the raft leader (no leader elected)"
	}
	return "cluster: not the raft leader (leader is " + e.Leader + ")"
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Options are a Node's collaborators; the zero value works.
type Options struct {
	// Logger receives the node's logs, memberlist's and Raft's
	// (bridged). Default: no logging.
	Logger *zap.Logger
	// Registerer exports the node's metrics. Default: none.
	Registerer prometheus.Registerer
	// Faults cuts traffic between proxies in tests. Default: none.
	Faults *Faults
}

// Node is this proxy's member of the coordination cluster: memberlist for
// membership and observations, Raft for the decided state of every shard,
// and a write lease renewed with the Raft leader.
//
// Every method is safe for concurrent use. LeaseValid, State and
// PeerObservations are lock-free reads meant for hot paths.
type Node struct {
	cfg    Config
	log    *zap.Logger
	faults *Faults
	peers  []string

	fsm       *fsm
	raft      *raft.Raft
	raftTrans *raft.NetworkTransport
	raftAddr  string
	ml        *memberlist.Memberlist
	mlTrans   memberlist.NodeAwareTransport
	gossip    string // advertised gossip address
	observer  *raft.Observer
	obsCh     chan raft.Observation

	base        time.Time    // monotonic origin of the lease clocks
	lease       atomic.Int64 // this proxy's lease end, ns since base
	leaderLease atomic.Int64 // the leader's own lease end (leader only)
	verifying   atomic.Bool

	local   atomic.Pointer[Observations]
	peerObs atomic.Pointer[map[string]PeerObservations]
	obsSeq  atomic.Uint64

	membersMu sync.Mutex // serializes writers of members
	members   atomic.Pointer[map[string]*memberlist.Node]

	inbox    chan []byte
	dropped  atomic.Uint64
	handlers atomic.Pointer[map[byte]TopicHandler] // application topics (messages.go)
	sending  sync.Map                              // kind+member -> struct{} while a reliable send runs

	leaseMu   sync.Mutex
	leaseSeq  uint64
	leaseReqs map[uint64]int64 // seq -> send time (ns since base)

	closeOnce sync.Once
	closed    chan struct{}
}

// New binds the gossip and Raft listeners, starts memberlist and Raft (and
// bootstraps Raft with the configured peers on first start), and returns
// the node. Call Run to start its loops and Close (or cancel Run's context)
// to leave the cluster. cfg must have had SetDefaults called.
func New(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	z := opts.Logger
	if z == nil {
		z = zap.NewNop()
	}
	n := &Node{
		cfg:       cfg,
		log:       z.With(zap.String("proxy", cfg.NodeName)),
		faults:    opts.Faults,
		peers:     cfg.PeerNames(),
		fsm:       newFSM(),
		base:      time.Now(),
		inbox:     make(chan []byte, 256),
		leaseReqs: map[uint64]int64{},
		closed:    make(chan struct{}),
	}
	empty := map[string]PeerObservations{}
	n.peerObs.Store(&empty)
	noMembers := map[string]*memberlist.Node{}
	n.members.Store(&noMembers)
	if err := n.startRaft(); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.startGossip(); err != nil {
		n.Close()
		return nil, err
	}
	n.faults.Register(cfg.NodeName, n.gossip, n.raftAddr)
	if opts.Registerer != nil {
		if err := n.registerMetrics(opts.Registerer); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// startRaft binds the Raft transport and starts Raft.
func (n *Node) startRaft() error {
	ln, err := net.Listen("tcp", n.cfg.RaftBind)
	if err != nil {
		return fmt.Errorf("cluster: raft listen: %w", err)
	}
	adv := n.cfg.RaftAdvertise
	if adv == n.cfg.RaftBind && portOf(adv) == 0 {
		adv = ln.Addr().String()
	}
	advAddr, err := net.ResolveTCPAddr("tcp", adv)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("cluster: raft_advertise: %w", err)
	}
	n.raftAddr = adv
	hl := newHCLog(n.log.Named("raft"))
	n.raftTrans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: ln, adv: advAddr, self: n.cfg.NodeName, faults: n.faults},
		MaxPool: 3,
		Timeout: max(2*n.cfg.RaftTimeout, time.Second),
		Logger:  hl.Named("transport"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeName)
	rc.HeartbeatTimeout = n.cfg.RaftTimeout
	rc.ElectionTimeout = n.cfg.RaftTimeout
	rc.LeaderLeaseTimeout = n.cfg.RaftTimeout / 2
	rc.CommitTimeout = min(50*time.Millisecond, n.cfg.RaftTimeout/5)
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 1024
	rc.Logger = hl
	rc.NoLegacyTelemetry = true

	var snaps raft.SnapshotStore = raft.NewInmemSnapshotStore()
	if n.cfg.DataDir != "" {
		dir := filepath.Join(n.cfg.DataDir, "raft")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cluster: data_dir: %w", err)
		}
		fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl.Named("snapshots"))
		if err != nil {
			return fmt.Errorf("cluster: snapshot store: %w", err)
		}
		snaps = fs
	}
	store := raft.NewInmemStore()
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("cluster: raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, n.raftTrans)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	n.obsCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	})
	r.RegisterObserver(n.observer)
	if !has {
		servers := make([]raft.Server, len(n.cfg.Peers))
		for i, p := range n.cfg.Peers {
			addr := p.Raft
			if p.Name == n.cfg.NodeName {
				addr = n.raftAddr
			}
			servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.Name), Address: raft.ServerAddress(addr)}
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("cluster: bootstrap raft: %w", err)
		}
	}
	return nil
}

// startGossip creates the memberlist member.
func (n *Node) startGossip() error {
	host, port, err := splitHostPort(n.cfg.Bind)
	if err != nil {
		return fmt.Errorf("cluster: bind: %w", err)
	}
	var mlog = memberlistLogger(n.log.Named("memberlist"))
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: mlog})
	if err != nil {
		return fmt.Errorf("cluster: gossip listen: %w", err)
	}
	var mc *memberlist.Config
	switch n.cfg.Profile {
	case ProfileLocal:
		mc = memberlist.DefaultLocalConfig()
	case ProfileWAN:
		mc = memberlist.DefaultWANConfig()
	default:
		mc = memberlist.DefaultLANConfig()
	}
	advHost, advPort, err := splitHostPort(n.cfg.Advertise)
	if err != nil {
		_ = nt.Shutdown()
		return fmt.Errorf("cluster: advertise: %w", err)
	}
	if advPort == 0 {
		advPort = nt.GetAutoBindPort()
	}
	n.gossip = net.JoinHostPort(advHost, strconv.Itoa(advPort))
	n.mlTrans = nt
	if n.faults != nil {
		n.mlTrans = &faultTransport{NetTransport: nt, self: n.cfg.NodeName, f: n.faults}
	}
	mc.Name = n.cfg.NodeName
	mc.Transport = n.mlTrans
	mc.BindAddr, mc.BindPort = host, nt.GetAutoBindPort()
	mc.AdvertiseAddr, mc.AdvertisePort = advHost, advPort
	mc.Label = n.cfg.Label
	mc.Logger = mlog
	mc.Delegate = &delegate{n: n}
	mc.Events = &events{n: n}
	mc.Alive = &peerFilter{n: n}
	mc.Merge = &peerFilter{n: n}
	if n.cfg.EncryptionKey != "" {
		key, err := decodeKey(n.cfg.EncryptionKey)
		if err != nil {
			_ = nt.Shutdown()
			return fmt.Errorf("cluster: encryption_key %w", err)
		}
		mc.SecretKey = key
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = nt.Shutdown()
		return fmt.Errorf("cluster: start gossip: %w", err)
	}
	n.ml = ml
	return nil
}

// Run runs the node's loops (message handling, heartbeats with lease
// renewal and observations, periodic re-join) until ctx ends, then leaves
// the cluster and shuts down. It returns nil after a clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	defer n.Close()
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){n.handleLoop, n.heartbeatLoop, n.rejoinLoop, n.raftStateLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.guard(ctx, loop)
		}()
	}
	select {
	case <-ctx.Done():
	case <-n.closed:
	}
	wg.Wait()
	return nil
}

// guard runs a loop, logging and restarting it after a panic.
func (n *Node) guard(ctx context.Context, loop func(context.Context)) {
	for ctx.Err() == nil && !n.isClosed() {
		func() {
			defer func() {
				if r := recover(); r != nil {
					n.log.Error("cluster loop panicked; restarting", zap.Any("panic", r), zap.Stack("stack"))
				}
			}()
			loop(ctx)
		}()
		select { // do not spin on a loop that keeps panicking
		case <-ctx.Done():
		case <-n.closed:
		case <-time.After(time.Second):
		}
	}
}

func (n *Node) isClosed() bool {
	select {
	case <-n.closed:
		return true
	default:
		return false
	}
}

// Close leaves the gossip cluster and stops Raft. Safe to call more than
// once; Run calls it on return.
func (n *Node) Close() {
	n.closeOnce.Do(func() {
		close(n.closed)
		n.lease.Store(0)
		n.leaderLease.Store(0)
		if n.ml != nil {
			_ = n.ml.Leave(200 * time.Millisecond)
			_ = n.ml.Shutdown()
		}
		if n.raft != nil {
			if n.observer != nil {
				n.raft.DeregisterObserver(n.observer)
			}
			_ = n.raft.Shutdown().Error()
		}
		if n.raftTrans != nil {
			_ = n.raftTrans.Close()
		}
	})
}

// Name is this proxy's node name.
func (n *Node) Name() string { return n.cfg.NodeName }

// Peers returns the configured proxies' names (the Raft voters).
func (n *Node) Peers() []string { return slices.Clone(n.peers) }

// Quorum is a majority of the configured peers.
func (n *Node) Quorum() int { return len(n.peers)/2 + 1 }

// GossipAddr and RaftAddr are the advertised addresses (useful when the
// config bound port 0).
func (n *Node) GossipAddr() string { return n.gossip }

// RaftAddr is the advertised Raft address.
func (n *Node) RaftAddr() string { return n.raftAddr }

// IsLeader reports whether this proxy is the Raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the name of the Raft leader, or "" when none is known.
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// RaftTerm is Raft's current term (not a shard's term).
func (n *Node) RaftTerm() uint64 { return n.raft.CurrentTerm() }

// now returns the monotonic time since base in ns.
func (n *Node) now() int64 { return int64(time.Since(n.base)) }

// LeaseValid reports whether this proxy holds a write lease: it heard from
// the Raft leader recently (the leader itself: confirmed its leadership
// with a quorum) and had applied every state change the leader had applied
// then. Lock-free.
func (n *Node) LeaseValid() bool { return n.now() < n.lease.Load() }

// LeaseRemaining returns how long the current lease lasts (0 when none).
func (n *Node) LeaseRemaining() time.Duration {
	return max(0, time.Duration(n.lease.Load()-n.now()))
}

// LeaseDuration is the configured lease length: a change of primary must
// wait at least this long after fencing before promoting.
func (n *Node) LeaseDuration() time.Duration { return n.cfg.Lease }

// State returns the last applied decided state. Lock-free; never nil.
func (n *Node) State() *State { return n.fsm.state.Load() }

// Watch returns a channel that receives a token after each applied change
// of the decided state (several changes may share one token), and a
// function to stop watching.
func (n *Node) Watch() (<-chan struct{}, func()) { return n.fsm.watch() }

// Propose commits s as the new state of its shard if the shard is still at
// version expect (0: the shard has no state yet). Only the Raft leader may
// propose; others get a *NotLeaderError. It returns ErrConflict or
// ErrInvalidChange (wrapped) when the state machine refused the change.
// When Propose returns nil the change is applied on this node.
func (n *Node) Propose(ctx context.Context, expect uint64, s ShardState) error {
	if n.isClosed() {
		return ErrClosed
	}
	if !n.IsLeader() {
		return &NotLeaderError{Leader: n.Leader()}
	}
	data, err := encodeCommand(command{Shard: s.Shard, Expect: expect, State: s})
	if err != nil {
		return err
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return &NotLeaderError{Leader: n.Leader()}
		}
		return fmt.Errorf("cluster: propose: %w", err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// Publish sets this proxy's observations; they are sent to every member at
// the next heartbeats. obs must not be modified afterwards.
func (n *Node) Publish(obs *Observations) {
	obs.From = n.cfg.NodeName
	obs.Seq = n.obsSeq.Add(1)
	n.local.Store(obs)
}

// PeerObservations returns the last observations received from each other
// proxy, by proxy name. The map is shared: do not modify it.
func (n *Node) PeerObservations() map[string]PeerObservations { return *n.peerObs.Load() }

// Member is one live gossip member.
type Member struct {
	Name string
	Addr string
}

// Members returns the live gossip members, this node included, by name.
func (n *Node) Members() []Member {
	var out []Member
	for _, m := range n.liveMembers() {
		out = append(out, Member{Name: m.Name, Addr: m.Address()})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Info is a summary of this node for status pages.
type Info struct {
	Name      string
	Leader    string
	IsLeader  bool
	RaftState string
	RaftTerm  uint64
	Applied   uint64
	Lease     time.Duration // remaining
	Members   []string      // live gossip members
	Peers     []string      // configured
	Dropped   uint64        // messages dropped because the inbox was full
}

// Info returns a summary of this node.
func (n *Node) Info() Info {
	var members []string
	for _, m := range n.Members() {
		members = append(members, m.Name)
	}
	return Info{
		Name: n.cfg.NodeName, Leader: n.Leader(), IsLeader: n.IsLeader(),
		RaftState: n.raft.State().String(), RaftTerm: n.raft.CurrentTerm(),
		Applied: n.State().Index, Lease: n.LeaseRemaining(),
		Members: members, Peers: n.Peers(), Dropped: n.dropped.Load(),
	}
}

// raftStateLoop drops the leader's lease as soon as Raft leaves the leader
// state.
func (n *Node) raftStateLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.closed:
			return
		case o := <-n.obsCh:
			if st, ok := o.Data.(raft.RaftState); ok {
				n.log.Info("raft state", zap.String("state", st.String()), zap.String("leader", n.Leader()))
				if st != raft.Leader && n.leaderLease.Swap(0) != 0 {
					n.lease.Store(0)
				}
			}
		}
	}
}

func (n *Node) registerMetrics(reg prometheus.Registerer) error {
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tiergate", Subsystem: "cluster", Name: "is_leader",
			Help: "1 when this proxy is the Raft leader."}, func() float64 { return b2f(n.IsLeader()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tiergate", Subsystem: "cluster", Name: "lease_valid",
			Help: "1 while this proxy holds a write lease from the Raft leader."}, func() float64 { return b2f(n.LeaseValid()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tiergate", Subsystem: "cluster", Name: "members",
			Help: "Live gossip members, this proxy included."}, func() float64 { return float64(len(n.liveMembers())) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "tiergate", Subsystem: "cluster", Name: "dropped_messages_total",
			Help: "Gossip messages dropped because the handler fell behind."}, func() float64 { return float64(n.dropped.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("cluster: metrics: %w", err)
		}
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return h, port, nil
}

func portOf(addr string) int {
	_, p, _ := splitHostPort(addr)
	return p
}

// streamLayer is Raft's TCP stream layer with the fault layer on dials.
type streamLayer struct {
	net.Listener
	adv    net.Addr
	self   string
	faults *Faults
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Addr() net.Addr { return s.adv }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if !s.faults.allowed(s.self, string(addr)) {
		return nil, ErrPartitioned
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return s.faults.wrap(s.self, string(addr), c), nil
}
