package pgproxy

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	peers "github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/pgtest"
	"github.com/tiergate/tiergate/shardmap"
)

// TestShardFailover: with a sharded database each shard fails over on its
// own: killing shard s0's primary promotes s0's replica (and only it), and
// writes to keys of both shards work again.
func TestShardFailover(t *testing.T) {
	cs := pgtest.NewShards(t, 2, pgtest.Spec{Name: "hashard", Replicas: 1,
		Conf: map[string]string{"wal_retrieve_retry_interval": "'200ms'"}})
	ctx := ctxT(t, 3*time.Minute)
	for _, c := range cs {
		if err := setupApp(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	sharding := webappSharding(2)
	cfg := shardedTestConfig(t, cs, "appha", 2, sharding, webappSchema)
	gossip, raft := freeTCP(t), freeTCP(t)
	cfg.Cluster = &peers.Config{NodeName: "solo", Bind: gossip, RaftBind: raft, Peers: []peers.PeerConfig{{Name: "solo", Raft: raft}},
		Seeds: []string{gossip}, Profile: peers.ProfileLocal, Label: "tiergate-shard-ha-test",
		Lease: 2 * time.Second, Heartbeat: 200 * time.Millisecond, RaftTimeout: time.Second, RejoinInterval: 500 * time.Millisecond}
	cfg.Failover = &failover.Config{FailoverAfter: time.Second, CheckInterval: 250 * time.Millisecond, CheckTimeout: time.Second, SSLMode: "disable"}
	p := startProxy(t, cfg)
	m := testShardMap(t, sharding)
	keyOn := func(shard int, from int64) int64 {
		for k := from; ; k++ {
			if s, _ := m.ShardFor("users", shardmap.Int64Key(k)); s == shard {
				return k
			}
		}
	}
	insert := func(id int64) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, p.dsn("app", appPassword))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(cctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, 'u', 'x')", id)
		return err
	}
	next := int64(1)
	fresh := func(shard int) int64 { k := keyOn(shard, next); next = k + 1; return k }
	waitFor(t, ctx, "writes to both shards", func() bool { return insert(fresh(0)) == nil && insert(fresh(1)) == nil })

	if err := cs[0].Primary().Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// New logins writing to s1 keep working while s0 fails over: they
	// succeed before s0 takes writes again.
	var s1At, s0At time.Duration
	waitFor(t, ctx, "writes to both shards again", func() bool {
		if s1At == 0 {
			if err := insert(fresh(1)); err == nil {
				s1At = time.Since(killed)
			} else {
				t.Logf("%v: s1: %v", time.Since(killed).Round(time.Millisecond), err)
			}
		}
		if s0At == 0 && insert(fresh(0)) == nil {
			s0At = time.Since(killed)
		}
		return s0At > 0 && s1At > 0
	})
	t.Logf("after s0's primary was killed: new logins wrote to s1 after %v, to s0 after %v", s1At.Round(10*time.Millisecond), s0At.Round(10*time.Millisecond))
	if s1At > s0At {
		t.Fatalf("logins writing to s1 waited for s0's failover (%v > %v)", s1At, s0At)
	}
	var rec bool
	if err := cs[0].Replicas()[0].QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil || rec {
		t.Fatalf("s0's replica was not promoted: in recovery %v, %v", rec, err)
	}
	if err := cs[1].Replicas()[0].QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil || !rec {
		t.Fatalf("s1's replica was promoted too: in recovery %v, %v", rec, err)
	}
}
