package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	peers "github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/pgtest"
)

func freeTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// haProxies starts n dbproxy peers with failover on, in front of c.
func haProxies(t *testing.T, c *pgtest.Cluster, n int) []*testProxy {
	t.Helper()
	return peerProxies(t, c, n, func(cfg *Config) {
		cfg.Users = append(cfg.Users, UserConfig{Name: "writer", Password: "writer-pw", ServerUser: "postgres", ServerPassword: "x"})
		cfg.Failover = &failover.Config{FailoverAfter: time.Second, CheckInterval: 250 * time.Millisecond, CheckTimeout: time.Second, SSLMode: "disable"}
	})
}

// peerProxies starts n dbproxy peers joined in one cluster (gossip and
// Raft on free loopback ports) in front of c; mutate adjusts each one's
// config before it starts.
func peerProxies(t *testing.T, c *pgtest.Cluster, n int, mutate func(*Config)) []*testProxy {
	t.Helper()
	gossip, raft := make([]string, n), make([]string, n)
	var peerList []peers.PeerConfig
	for i := range n {
		gossip[i], raft[i] = freeTCP(t), freeTCP(t)
		peerList = append(peerList, peers.PeerConfig{Name: fmt.Sprintf("proxy%d", i+1), Raft: raft[i]})
	}
	var out []*testProxy
	for i := range n {
		cfg := testConfig(c)
		cfg.Cluster = &peers.Config{
			NodeName: fmt.Sprintf("proxy%d", i+1), Bind: gossip[i], RaftBind: raft[i], Peers: peerList, Seeds: gossip,
			Profile: peers.ProfileLocal, Label: "tiergate-pgproxy-test",
			Lease: 2 * time.Second, Heartbeat: 200 * time.Millisecond, RaftTimeout: time.Second, RejoinInterval: 500 * time.Millisecond,
		}
		mutate(cfg)
		out = append(out, startProxy(t, cfg))
	}
	return out
}

// TestFailoverThroughProxies kills the primary under a write load through
// three dbproxy peers: writes succeed again through every proxy, exactly
// one replica is promoted, and (synchronous replication) every
// acknowledged row is on the new primary.
func TestFailoverThroughProxies(t *testing.T) {
	c := pgtest.New(t, pgtest.Spec{Name: "ha", Replicas: 2, Sync: true,
		Conf: map[string]string{"wal_retrieve_retry_interval": "'200ms'"}})
	ctx := ctxT(t, 3*time.Minute)
	if err := setupApp(ctx, c); err != nil {
		t.Fatal(err)
	}
	setup, err := pgx.Connect(ctx, c.Primary().DSNFor("app", "postgres", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(ctx, "CREATE TABLE acked (id bigint PRIMARY KEY, proxy int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	setup.Close(ctx)
	proxies := haProxies(t, c, 3)

	// One writer per proxy: numbered rows; an id is recorded once its
	// INSERT was acknowledged. Fenced (25006) and connection errors are
	// retried with a fresh connection.
	var next atomic.Int64
	var mu sync.Mutex
	acked := map[int64]bool{}
	lastOK := make([]atomic.Int64, len(proxies))
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, p := range proxies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *pgx.Conn
			for wctx.Err() == nil {
				if conn == nil {
					cctx, cancel := context.WithTimeout(wctx, 2*time.Second)
					var err error
					conn, err = pgx.Connect(cctx, p.dsn("writer", "writer-pw"))
					cancel()
					if err != nil {
						conn = nil
						continue
					}
				}
				id := next.Add(1)
				ictx, cancel := context.WithTimeout(wctx, 3*time.Second)
				_, err := conn.Exec(ictx, "INSERT INTO acked VALUES ($1, $2)", id, i)
				cancel()
				if err == nil {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
					lastOK[i].Store(time.Now().UnixNano())
					continue
				}
				var pe *pgconn.PgError
				if !(errors.As(err, &pe) && pe.Code == "25006") {
					_ = conn.Close(context.Background())
					conn = nil
				}
			}
			if conn != nil {
				_ = conn.Close(context.Background())
			}
		}()
	}
	waitFor(t, ctx, "writes through every proxy", func() bool {
		for i := range lastOK {
			if lastOK[i].Load() == 0 {
				return false
			}
		}
		return true
	})
	old := c.Primary()
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, ctx, "writes to succeed again through every proxy", func() bool {
		for i := range lastOK {
			if lastOK[i].Load() < killed.UnixNano() {
				return false
			}
		}
		return true
	})
	recovered := time.Since(killed)
	t.Logf("writes succeeded again through all 3 proxies %v after the primary was killed", recovered.Round(10*time.Millisecond))
	if recovered > 10*time.Second {
		t.Errorf("failover took %v, want within 10s", recovered)
	}
	time.Sleep(300 * time.Millisecond) // a few more writes on the new primary
	stopWriters()
	wg.Wait()

	// Exactly one replica was promoted; all acknowledged rows are there.
	var promoted []*pgtest.Node
	for _, n := range c.Nodes {
		if n == old {
			continue
		}
		var rec bool
		if err := n.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			t.Fatal(err)
		}
		if !rec {
			promoted = append(promoted, n)
		}
	}
	if len(promoted) != 1 {
		t.Fatalf("%d nodes out of recovery, want exactly 1", len(promoted))
	}
	rows, err := pgx.Connect(ctx, promoted[0].DSNFor("app", "postgres", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close(context.Background())
	r, err := rows.Query(ctx, "SELECT id FROM acked")
	if err != nil {
		t.Fatal(err)
	}
	present := map[int64]bool{}
	for r.Next() {
		var id int64
		_ = r.Scan(&id)
		present[id] = true
	}
	r.Close()
	var missing []int64
	for id := range acked {
		if !present[id] {
			missing = append(missing, id)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged rows missing on the new primary (of %d), e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	t.Logf("%d acknowledged rows, all present on the new primary %s", len(acked), promoted[0].Name)

	// Every proxy's /status shows the failover with its timeline, and its
	// health checks accept the promoted node as the primary.
	for i, p := range proxies {
		waitFor(t, ctx, "promoted node checked without error", func() bool {
			for _, n := range p.srv.rt.Load().clusters["app"].nodes() {
				if n.addr == promoted[0].Addr() {
					return n.errString() == "" && n.lastCheck.Load() > time.Now().Add(-time.Second).UnixNano()
				}
			}
			return false
		})
		waitFor(t, ctx, "failover timeline in /status", func() bool {
			for _, tl := range p.srv.Status().LastFailover {
				if tl != nil && tl.Shard == "app" && tl.To == promoted[0].Addr() && len(tl.Events) >= 3 && !tl.InProgress {
					return true
				}
			}
			return false
		})
		if i == 0 {
			for _, tl := range p.srv.Status().LastFailover {
				for _, e := range tl.Events {
					t.Logf("proxy1 timeline: %s %s %s", e.Offset, e.Proxy, e.What)
				}
			}
		}
	}
}
