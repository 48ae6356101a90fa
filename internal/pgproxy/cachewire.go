package pgproxy

import (
	"context"
	"errors"
	"reflect"

	"go.uber.org/zap"

	peers "github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/querycache"
)

// cacheTopic is the cluster message topic of query cache invalidations.
const cacheTopic = 'c'

// cachePolicies compiles every database's cache rules under cfg.
func cachePolicies(cfg *Config) map[string]*querycache.Policy {
	if !cfg.QueryCache.On() {
		return nil
	}
	out := make(map[string]*querycache.Policy, len(cfg.Databases))
	for name, d := range cfg.Databases {
		out[name] = querycache.NewPolicy(d.Cache, cfg.QueryCache)
	}
	return out
}

// setQueryCache creates the query cache for cfg, or keeps the current one
// when its settings did not change (its entries stay valid across a
// reload: rules only decide what is stored next). Called under srv.mu or
// before Serve.
func (srv *Server) setQueryCache(cfg *Config) error {
	old := srv.qcache.Load()
	if old != nil && reflect.DeepEqual(old.Config(), cfg.QueryCache) {
		registerDBs(old, cfg)
		return nil
	}
	var next *querycache.Cache
	if cfg.QueryCache.On() {
		c, err := querycache.New(cfg.QueryCache, querycache.Options{})
		if err != nil {
			return err
		}
		next = c
		registerDBs(next, cfg)
	}
	srv.qcache.Store(next)
	if next != nil && srv.peers != nil {
		srv.qbroadcast.Store(querycache.NewBroadcaster(next, topicSender{srv.peers}))
		srv.qbroadcastChanged()
	} else {
		srv.qbroadcast.Store(nil)
	}
	if old != nil {
		old.Close()
	}
	return nil
}

// registerDBs creates every configured database's part of the cache up
// front, so peers' invalidations are applied (and their grace period
// observed) before this proxy's first read of a database.
func registerDBs(c *querycache.Cache, cfg *Config) {
	for name := range cfg.Databases {
		c.DB(name)
	}
}

// qcacheMaxEntry is the largest result the current cache keeps.
func (srv *Server) qcacheMaxEntry() int64 {
	if c := srv.qcache.Load(); c != nil {
		return int64(c.Config().MaxEntrySize)
	}
	return 0
}

// topicSender sends cache invalidations to the peer proxies.
type topicSender struct{ n *peers.Node }

func (t topicSender) SendToPeers(payload []byte) { t.n.SendToPeers(cacheTopic, payload) }

// applyRemoteInvalidation is the cluster handler of cacheTopic.
func (srv *Server) applyRemoteInvalidation(from string, payload []byte) {
	c := srv.qcache.Load()
	if c == nil {
		return
	}
	if err := c.ApplyRemote(payload); err != nil {
		srv.log.Warn("bad cache invalidation from peer", zap.String("peer", from), zap.Error(err))
	}
}

// qbroadcastChanged wakes the broadcast loop to pick up a new broadcaster.
func (srv *Server) qbroadcastChanged() {
	select {
	case srv.qbroadcastWake <- struct{}{}:
	default:
	}
}

// broadcastLoop runs the current broadcaster until ctx ends, switching
// when a reload replaces the cache.
func (srv *Server) broadcastLoop(ctx context.Context) {
	for {
		b := srv.qbroadcast.Load()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if b != nil {
				b.Run(runCtx)
			}
		}()
		select {
		case <-ctx.Done():
			cancel()
			<-done
			return
		case <-srv.qbroadcastWake:
			cancel()
			<-done
		}
	}
}

// runPeers runs the gossip node alone, for cache invalidations, when a
// cluster section is configured without failover (with failover, the
// failover manager runs it).
func (srv *Server) runPeers(ctx context.Context) {
	if srv.peers == nil || srv.ha != nil {
		return
	}
	if err := srv.peers.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		srv.log.Error("cluster node stopped", zap.Error(err))
	}
}
