// Package clustertest starts several cluster nodes in one test process, on
// 127.0.0.1 with free ports, fast timers and a shared fault layer, so tests
// can partition them.
package clustertest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tiergate/tiergate/internal/cluster"
)

// Timing is the set of timers (and the gossip key) the test nodes use.
type Timing struct {
	Lease          time.Duration // default 1s
	Heartbeat      time.Duration // default 100ms
	RaftTimeout    time.Duration // default 300ms
	RejoinInterval time.Duration // default 500ms
	// EncryptionKey, when set, encrypts the gossip (base64 AES key).
	EncryptionKey string
}

func (t *Timing) defaults() {
	if t.Lease == 0 {
		t.Lease = time.Second
	}
	if t.Heartbeat == 0 {
		t.Heartbeat = 100 * time.Millisecond
	}
	if t.RaftTimeout == 0 {
		t.RaftTimeout = 300 * time.Millisecond
	}
	if t.RejoinInterval == 0 {
		t.RejoinInterval = 500 * time.Millisecond
	}
}

// Cluster is a set of running nodes.
type Cluster struct {
	Nodes  []*cluster.Node
	Faults *cluster.Faults
	byName map[string]*cluster.Node
	stop   func()
}

// Stop shuts every node down and waits for them (also done in t.Cleanup).
func (c *Cluster) Stop() { c.stop() }

// Node returns the node with the given name.
func (c *Cluster) Node(name string) *cluster.Node { return c.byName[name] }

// Start starts one node per name ("p1", "p2", ...), all peers of each
// other, and stops them in t.Cleanup. Logs go to t.Log at warn level and
// above unless verbose.
func Start(t testing.TB, names []string, tm Timing, verbose bool) *Cluster {
	t.Helper()
	tm.defaults()
	gossip := make([]string, len(names))
	raftAddrs := make([]string, len(names))
	for i := range names {
		gossip[i] = FreeAddr(t)
		raftAddrs[i] = FreeAddr(t)
	}
	peers := make([]cluster.PeerConfig, len(names))
	for i, n := range names {
		peers[i] = cluster.PeerConfig{Name: n, Raft: raftAddrs[i]}
	}
	c := &Cluster{Faults: cluster.NewFaults(), byName: map[string]*cluster.Node{}}
	for i, n := range names {
		c.Faults.Register(n, gossip[i], raftAddrs[i])
	}
	lvl := zap.WarnLevel
	if verbose {
		lvl = zap.DebugLevel
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, len(names))
	for i, name := range names {
		cfg := cluster.Config{
			NodeName: name, Bind: gossip[i], RaftBind: raftAddrs[i], Peers: peers,
			Seeds: gossip, Profile: cluster.ProfileLocal, Label: "tiergate-test",
			Lease: tm.Lease, Heartbeat: tm.Heartbeat, RaftTimeout: tm.RaftTimeout, RejoinInterval: tm.RejoinInterval,
			EncryptionKey: tm.EncryptionKey,
		}
		cfg.SetDefaults()
		log := Logger(t, lvl).Named(name)
		node, err := cluster.New(cfg, cluster.Options{Logger: log, Faults: c.Faults})
		if err != nil {
			cancel()
			t.Fatalf("start %s: %v", name, err)
		}
		c.Nodes = append(c.Nodes, node)
		c.byName[name] = node
		go func() { _ = node.Run(ctx); done <- struct{}{} }()
	}
	var once sync.Once
	c.stop = func() {
		once.Do(func() {
			cancel()
			for range c.Nodes {
				<-done
			}
		})
	}
	t.Cleanup(c.stop)
	return c
}

// Logger returns a logger writing to t.Log at lvl and above, which goes
// quiet once the test's cleanups run (background goroutines of memberlist
// and Raft may still log while shutting down, and t.Log after the test
// ended panics).
func Logger(t testing.TB, lvl zapcore.Level) *zap.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	enc := zap.NewDevelopmentEncoderConfig()
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), lvl)
	return zap.New(core)
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Leader waits until exactly one node among those not cut off leads and
// every node in group agrees, and returns it.
func (c *Cluster) Leader(t testing.TB, timeout time.Duration, group ...string) *cluster.Node {
	t.Helper()
	if len(group) == 0 {
		for _, n := range c.Nodes {
			group = append(group, n.Name())
		}
	}
	var leader *cluster.Node
	Eventually(t, timeout, func() error {
		leader = nil
		for _, name := range group {
			n := c.byName[name]
			if n.IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.Name(), n.Name())
				}
				leader = n
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader among %v", group)
		}
		for _, name := range group {
			if l := c.byName[name].Leader(); l != leader.Name() {
				return fmt.Errorf("%s thinks the leader is %q, not %s", name, l, leader.Name())
			}
		}
		return nil
	})
	return leader
}

// Eventually polls cond every 20ms until it returns nil or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		<-tick.C
	}
}

// FreeAddr returns 127.0.0.1:port with a port that was free for both TCP
// and UDP a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = u.Close()
		return addr
	}
	t.Fatal("no free port")
	return ""
}
