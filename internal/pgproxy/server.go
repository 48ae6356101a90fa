package pgproxy

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/health"
	peers "github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/querycache"
	"github.com/tiergate/tiergate/router/sqlroute"
)

// Options are the code-level dependencies of a Server; the zero value
// works (no logging, no metrics, no console RELOAD).
type Options struct {
	// Log receives the proxy's logs. Default: zap.NewNop().
	Log *zap.Logger
	// Registry, when set, gets the proxy's Prometheus metrics.
	Registry prometheus.Registerer
	// LoadConfig re-reads the config for the console's RELOAD (cmd/dbproxy
	// passes a closure over the file path). nil: RELOAD is refused.
	LoadConfig func() (*Config, error)
}

// Server is the dbproxy engine: it accepts client connections, logs them
// in, and runs their sessions over pooled server connections. Its methods
// are safe for concurrent use.
type Server struct {
	log     *zap.Logger
	metrics *metrics
	loadCfg func() (*Config, error)
	secret  []byte
	onPanic func(any) // tests: fail on a recovered panic

	rt       atomic.Pointer[runtime]
	ids      atomic.Uint64 // session ids (also their BackendKeyData process ids)
	connIDs  atomic.Uint64 // server connection ids
	tags     atomic.Uint64 // unnamed statement tags
	nclients atomic.Int64
	draining atomic.Bool
	paused   atomic.Pointer[chan struct{}]
	writes   writeGate // PAUSE WRITES

	health *health.Manager // active checks of every node
	ha     *ha             // peers and failover; nil when not configured
	peers  *peers.Node     // gossip with the other proxies; nil without a cluster section

	parker *parker // holds idle clients without a goroutine; nil where unsupported

	qcache         atomic.Pointer[querycache.Cache]       // nil: query cache off
	qbroadcast     atomic.Pointer[querycache.Broadcaster] // nil: invalidations stay local
	qbroadcastWake chan struct{}

	mu       sync.Mutex // guards the fields below; never taken per query
	sessions map[uint32]*session
	wg       sync.WaitGroup
}

// runtime is one immutable generation of the config with the objects built
// from it. Sessions load it per unit of work; a reload swaps it.
type runtime struct {
	cfg        *Config
	users      map[string]*userEntry
	clusters   map[string]*cluster   // by database name, or database/shard for a shard
	sharded    map[string]*shardedDB // sharded databases by name
	nodes      map[string]*node      // by nodeID
	classifier classifier
	tls        *tls.Config // nil: SSLRequest is answered 'N'
	// cachePolicies decide what each database caches (nil: cache off).
	cachePolicies map[string]*querycache.Policy
}

type userEntry struct {
	cfg   UserConfig
	creds *credentials
}

// New builds a Server for cfg (already defaulted and validated, as
// LoadConfig returns it). Nothing runs until Serve.
func New(cfg *Config, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	srv := &Server{
		log:      opts.Log.Named("pgproxy"),
		metrics:  newMetrics(opts.Registry),
		loadCfg:  opts.LoadConfig,
		secret:   randomBytes(32),
		sessions: map[uint32]*session{},

		qbroadcastWake: make(chan struct{}, 1),
	}
	rt, err := srv.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	srv.rt.Store(rt)
	hm, err := health.NewManager(cfg.Health.CheckConfig, srv.probeFactory, health.Options{Logger: srv.log.Named("health"), Listener: healthListener{srv}})
	if err != nil {
		return nil, err
	}
	if err := hm.Update(rt.healthTargets()); err != nil {
		return nil, err
	}
	srv.health = hm
	srv.metrics.registerGauges(srv)
	if srv.ha, err = srv.newHA(cfg, opts.Registry); err != nil {
		return nil, err
	}
	switch {
	case srv.ha != nil:
		srv.peers = srv.ha.node
	case cfg.Cluster != nil:
		if srv.peers, err = peers.New(*cfg.Cluster, peers.Options{Logger: srv.log.Named("cluster"), Registerer: opts.Registry}); err != nil {
			return nil, err
		}
	}
	if srv.peers != nil {
		srv.peers.Handle(cacheTopic, srv.applyRemoteInvalidation)
	}
	if err := srv.setQueryCache(cfg); err != nil {
		return nil, err
	}
	if p, err := newParker(srv.log, srv.resumeSession); err == nil {
		srv.parker = p
	} else {
		srv.log.Info("idle clients keep their goroutines", zap.Error(err))
	}
	return srv, nil
}

// build makes a runtime for cfg, reusing prev's nodes (health state) and
// pools (connections) where they still fit.
func (srv *Server) build(cfg *Config, prev *runtime) (*runtime, error) {
	rt := &runtime{cfg: cfg, users: map[string]*userEntry{}, clusters: map[string]*cluster{}, nodes: map[string]*node{},
		cachePolicies: cachePolicies(cfg)}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.serverConfig()
		if err != nil {
			return nil, err
		}
		rt.tls = tc
	}
	if prev != nil && reflect.DeepEqual(prev.cfg.Routing.Classifier, cfg.Routing.Classifier) {
		rt.classifier = prev.classifier // keep its cache
	} else {
		c, err := sqlroute.New(cfg.Routing.Classifier)
		if err != nil {
			return nil, err
		}
		rt.classifier = c
	}
	for _, u := range cfg.Users {
		e := &userEntry{cfg: u}
		if u.Password != "" {
			if prev != nil {
				if old := prev.users[u.Name]; old != nil && old.cfg.Password == u.Password && old.creds != nil {
					e.creds = old.creds
				}
			}
			if e.creds == nil {
				c, err := newCredentials(u.Name, u.Password)
				if err != nil {
					return nil, fmt.Errorf("user %s: %w", u.Name, err)
				}
				e.creds = c
			}
		}
		rt.users[u.Name] = e
	}
	old := oldState{nodes: map[string]*node{}, stats: map[string]*clusterStats{}, shardStats: map[string]*shardStats{}}
	if prev != nil {
		for _, c := range prev.clusters {
			old.stats[c.name] = c.stats
			for _, n := range c.nodes() {
				old.nodes[c.name+"|"+n.role+"|"+n.addr] = n
			}
		}
		for name, sdb := range prev.sharded {
			old.shardStats[name] = sdb.stats
		}
	}
	for _, name := range cfg.databaseNames() {
		d := cfg.Databases[name]
		if !d.sharded() {
			c, err := srv.buildCluster(rt, &old, name, d.ServerDatabase, d.Primary, d.Replicas)
			if err != nil {
				return nil, err
			}
			c.db, c.shard = name, -1
			rt.clusters[name] = c
			continue
		}
		sdb, err := srv.buildSharded(rt, &old, name, d)
		if err != nil {
			return nil, err
		}
		if rt.sharded == nil {
			rt.sharded = map[string]*shardedDB{}
		}
		rt.sharded[name] = sdb
	}
	return rt, nil
}

// oldState is what a reload carries over from the previous runtime.
type oldState struct {
	nodes      map[string]*node         // by cluster key|role|addr
	stats      map[string]*clusterStats // by cluster key
	shardStats map[string]*shardStats   // by database
}

// buildCluster makes the cluster of one primary and its replicas under
// key (a database name, or database/shard for a shard), reusing nodes
// and pools of the previous runtime that still fit.
func (srv *Server) buildCluster(rt *runtime, old *oldState, key, serverDB, primary string, replicas []string) (*cluster, error) {
	cfg := rt.cfg
	c := &cluster{name: key, serverDB: serverDB, stats: old.stats[key]}
	if c.stats == nil {
		c.stats = &clusterStats{}
	}
	mk := func(addr, role string) *node {
		n := old.nodes[key+"|"+role+"|"+addr]
		if n == nil {
			n = newNode(key, addr, role)
		}
		n.maxLagBytes.Store(int64(cfg.Routing.MaxReplicaLagBytes))
		n.maxLag.Store(int64(cfg.Routing.MaxReplicaLag))
		pools := map[string]*pool{}
		oldPools := *n.pools.Load()
		for _, u := range cfg.Users {
			if p := oldPools[u.Name]; p != nil && p.sameSettings(serverDB, u.ServerUser, u.ServerPassword, cfg.Pool, int(cfg.MaxMessageSize)) {
				pools[u.Name] = p
				continue
			}
			p := newPool(n, u.Name, serverDB, u.ServerUser, u.ServerPassword, cfg.Pool, int(cfg.MaxMessageSize), &srv.connIDs)
			p.onWait = srv.metrics.poolWait
			pools[u.Name] = p
		}
		n.pools.Store(&pools)
		rt.nodes[nodeID(n)] = n
		return n
	}
	c.primary = mk(primary, rolePrimary)
	for _, r := range replicas {
		c.replicas = append(c.replicas, mk(r, roleReplica))
	}
	bal, err := balancer.New(cfg.Routing.Balancer, balancer.Options{})
	if err != nil {
		return nil, err
	}
	c.bal = bal
	c.byBackend = map[*balancer.Backend]*node{}
	backends := make([]*balancer.Backend, 0, len(c.replicas))
	for _, r := range c.replicas {
		c.byBackend[r.be] = r
		backends = append(backends, r.be)
	}
	bal.Update(backends)
	return c, nil
}

// allPools lists the pools of a runtime.
func (rt *runtime) allPools() []*pool {
	var out []*pool
	for _, c := range rt.clusters {
		for _, n := range c.nodes() {
			for _, p := range *n.pools.Load() {
				out = append(out, p)
			}
		}
	}
	return out
}

func (rt *runtime) allNodes() []*node {
	var out []*node
	for _, c := range rt.clusterList() {
		out = append(out, c.nodes()...)
	}
	return out
}

// clusterList returns every cluster (unsharded databases and shards) by
// name: "app", "shop/s0", "shop/s1", ...
func (rt *runtime) clusterList() []*cluster {
	names := make([]string, 0, len(rt.clusters))
	for n := range rt.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*cluster, len(names))
	for i, n := range names {
		out[i] = rt.clusters[n]
	}
	return out
}

// Reload applies a new config without dropping clients: users, routing,
// health and pool settings take effect for the next unit of work; nodes and
// pools whose settings did not change keep their state and connections.
// The listen address and the admin section need a restart.
func (srv *Server) Reload(cfg *Config) error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	prev := srv.rt.Load()
	before := map[*pool]bool{}
	for _, p := range prev.allPools() {
		before[p] = true
	}
	rt, err := srv.build(cfg, prev)
	if err != nil {
		return err
	}
	if err := srv.setQueryCache(cfg); err != nil {
		return err
	}
	srv.rt.Store(rt)
	for _, p := range rt.allPools() {
		delete(before, p)
	}
	for p := range before {
		p.close()
	}
	if err := srv.health.Update(rt.healthTargets()); err != nil {
		srv.log.Error("health targets not updated", zap.Error(err))
	}
	srv.log.Info("config reloaded", zap.String("summary", cfg.Summary()))
	return nil
}

// Serve accepts clients on ln until ctx ends, then drains: no new clients,
// idle clients are closed, open transactions get shutdown_timeout to
// finish. It returns once every session and background loop has stopped.
func (srv *Server) Serve(ctx context.Context, ln net.Listener) error {
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		if err := srv.health.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
			srv.log.Error("health checks stopped", zap.Error(err))
		}
	}()
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		srv.maintainLoop(bg)
	}()
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		srv.twoPhaseLoop(bg) // sharded databases with two_phase_commit
	}()
	if srv.ha != nil {
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			srv.ha.run(bg, srv.log)
		}()
	}
	srv.wg.Add(3)
	go func() {
		defer srv.wg.Done()
		srv.runPeers(bg) // gossip for cache invalidations without failover
	}()
	go func() {
		defer srv.wg.Done()
		srv.parkLoop(bg)
	}()
	go func() {
		defer srv.wg.Done()
		srv.broadcastLoop(bg)
	}()
	srv.log.Info("dbproxy listening", zap.String("addr", ln.Addr().String()))

	var sessions sync.WaitGroup
	acceptDone := make(chan error, 1)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				acceptDone <- err
				return
			}
			sessions.Add(1)
			go srv.serveConn(bg, conn, sessions.Done)
		}
	}()
	var err error
	select {
	case <-ctx.Done():
		_ = ln.Close()
		<-acceptDone
	case err = <-acceptDone:
		err = fmt.Errorf("pgproxy: accept: %w", err)
	}
	srv.drain(&sessions)
	stopBG()
	srv.wg.Wait()
	for _, p := range srv.rt.Load().allPools() {
		p.close()
	}
	return err
}

// drain stops sessions: idle ones now, those in a transaction when it ends
// or when shutdown_timeout passes.
func (srv *Server) drain(sessions *sync.WaitGroup) {
	srv.draining.Store(true)
	srv.Resume()
	srv.forEachSession(func(s *session) { _ = s.conn.SetReadDeadline(time.Now()) })
	if srv.parker != nil {
		srv.parker.wakeAll() // they find the proxy draining and leave
	}
	done := make(chan struct{})
	go func() { sessions.Wait(); close(done) }()
	timeout := srv.rt.Load().cfg.ShutdownTimeout
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		srv.log.Warn("shutdown timeout: closing the remaining clients")
		srv.forEachSession(func(s *session) { _ = s.conn.Close() })
		<-done
	}
}

func (srv *Server) forEachSession(f func(*session)) {
	srv.mu.Lock()
	list := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		list = append(list, s)
	}
	srv.mu.Unlock()
	for _, s := range list {
		f(s)
	}
}

// maintainLoop keeps pools within their idle and lifetime limits.
func (srv *Server) maintainLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		func() {
			defer srv.recoverLog("pool maintenance")
			for _, p := range srv.rt.Load().allPools() {
				p.maintain(ctx)
			}
		}()
	}
}

func (srv *Server) recoverLog(what string) {
	if r := recover(); r != nil {
		srv.log.Error("panic", zap.String("in", what), zap.Any("panic", r), zap.Stack("stack"))
		if srv.onPanic != nil {
			srv.onPanic(r)
		}
	}
}

// serveConn runs one client connection from startup to close.
func (srv *Server) serveConn(ctx context.Context, conn net.Conn, done func()) {
	s := &session{srv: srv, conn: conn, cc: &clientConn{Conn: conn}, addr: conn.RemoteAddr().String(), connectedAt: time.Now(), secret: randomBytes(4),
		cancelWait: make(chan struct{}, 1), ctx: ctx, done: done}
	s.id = srv.ids.Add(1)
	s.log = srv.log
	n := srv.nclients.Add(1)
	loggedIn := false
	defer func() {
		if !loggedIn { // otherwise runSession ends it
			conn.Close()
			srv.nclients.Add(-1)
			done()
		}
	}()
	defer srv.recoverLog("client login")
	if srv.draining.Load() {
		srv.reject(conn, &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: sqlstateCannotConnectNow, Message: "the database system is shutting down"})
		return
	}
	if n > int64(srv.rt.Load().cfg.MaxClientConn) {
		srv.reject(conn, clientError(ErrTooManyClients))
		return
	}
	st, err := srv.login(ctx, s)
	if err != nil {
		if !errors.Is(err, errClientGone) {
			srv.metrics.error(clientError(err).Code)
			s.send(clientError(err))
			_ = s.flush()
		}
		return
	}
	if st == nil {
		return // a CancelRequest was served
	}
	srv.mu.Lock()
	srv.sessions[uint32(s.id)] = s
	srv.mu.Unlock()
	loggedIn = true
	s.send(&pgproto3.BackendKeyData{ProcessID: uint32(s.id), SecretKey: s.secret})
	s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	srv.runSession(s)
}

// runSession serves a logged-in client until it leaves, or until it
// parks (idle: the parker resumes it in a new goroutine when the client
// sends something).
func (srv *Server) runSession(s *session) {
	var err error
	defer func() {
		if !errors.Is(err, errParked) {
			srv.endSession(s, err) // after a panic err is nil: closed without a word
		}
	}()
	defer srv.recoverLog("client session")
	if err = s.flush(); err != nil {
		return
	}
	if s.dbName == ConsoleDatabase {
		err = srv.console(s)
		return
	}
	for {
		err = s.run(s.ctx)
		if !errors.Is(err, errParked) {
			_ = s.stopPump()
			s.close()
			return
		}
		// The last use of s by this goroutine: once parked, another one
		// may resume it at any moment.
		s.state.Store(stateParked)
		s.shrinkForPark()
		if srv.parker != nil && srv.parker.park(s) {
			return
		}
		s.state.Store(stateIdle)
		s.parkDenied.Store(true)
		err = nil
	}
}

// resumeSession continues a parked session whose client sent something.
func (srv *Server) resumeSession(s *session) {
	s.state.Store(stateIdle)
	srv.runSession(s)
}

// endSession reports how the session ended and releases the client.
func (srv *Server) endSession(s *session, err error) {
	switch {
	case err == nil, errors.Is(err, errClientGone):
	default:
		srv.log.Debug("session ended", zap.Uint64("client", s.id), zap.Error(err))
		srv.metrics.error(clientError(err).Code)
		s.out = s.out[:0]
		s.send(clientError(err))
		_ = s.flush()
	}
	srv.mu.Lock()
	delete(srv.sessions, uint32(s.id))
	srv.mu.Unlock()
	_ = s.conn.Close()
	srv.nclients.Add(-1)
	s.done()
}

// reject answers a connection before login (a raw FATAL after reading
// nothing: clients read it as a startup failure).
func (srv *Server) reject(conn net.Conn, e *pgproto3.ErrorResponse) {
	srv.metrics.error(e.Code)
	buf, err := e.Encode(nil)
	if err == nil {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(buf)
	}
}

// cancel serves a CancelRequest: it forwards it to the server connection
// the matching session is using right now, and to no other.
func (srv *Server) cancel(pid uint32, key []byte) {
	srv.mu.Lock()
	s := srv.sessions[pid]
	srv.mu.Unlock()
	if s == nil || subtle.ConstantTimeCompare(s.secret, key) != 1 {
		srv.log.Info("cancel request does not match a client", zap.Uint32("pid", pid))
		return
	}
	if list := s.fanout.Load(); list != nil {
		srv.cancelFanout(s, list)
		return
	}
	sc := s.active.Load()
	if sc == nil {
		if s.state.Load() == stateWaiting {
			// Queued for a server connection: give up waiting.
			select {
			case s.cancelWait <- struct{}{}:
			default:
			}
		}
		return
	}
	sc.cancelRefs.Add(1)
	defer sc.cancelRefs.Add(-1)
	if s.active.Load() != sc {
		return // released meanwhile: it may already serve someone else
	}
	if err := sendCancel(sc.pool.node.addr, sc.pid, sc.key); err != nil {
		srv.log.Info("cancel request failed", zap.String("node", sc.pool.node.addr), zap.Error(err))
	}
}

// sendCancel delivers a CancelRequest and waits until the server closed the
// socket (it has then signalled its backend).
func sendCancel(addr string, pid uint32, key []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	buf, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: key}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := conn.Write(buf); err != nil {
		return err
	}
	var b [1]byte
	_, _ = conn.Read(b[:]) // EOF once the postmaster handled it
	return nil
}

// Pause stops lending server connections (new units wait, up to
// query_wait_timeout) and waits until none is lent out or ctx ends.
func (srv *Server) Pause(ctx context.Context) error {
	ch := make(chan struct{})
	srv.paused.CompareAndSwap(nil, &ch)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		busy := 0
		for _, p := range srv.rt.Load().allPools() {
			busy += int(p.active.Load())
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pause: %d server connection(s) still in use: %w", busy, ctx.Err())
		case <-t.C:
		}
	}
}

// Resume undoes Pause and PauseWrites.
func (srv *Server) Resume() {
	if ch := srv.paused.Swap(nil); ch != nil {
		close(*ch)
	}
	srv.writes.resume()
}

// PauseWrites stops writes (units that may write, and transactions, wait
// before they are routed; reads on replicas go on) and waits until no
// write is in flight and no primary connection is lent out, or ctx ends.
// The resharder's cutover pauses every proxy this way (console PAUSE
// WRITES), reloads them onto the new shard map and resumes them.
func (srv *Server) PauseWrites(ctx context.Context) error {
	return srv.writes.pause(ctx, func() int {
		busy := 0
		rt := srv.rt.Load()
		for _, c := range rt.clusters {
			for _, p := range *c.primary.pools.Load() {
				busy += int(p.active.Load())
			}
		}
		return busy
	})
}

// waitResumed blocks while the proxy is paused.
func (srv *Server) waitResumed(ctx context.Context, deadline time.Time, cancel <-chan struct{}) error {
	ch := srv.paused.Load()
	if ch == nil {
		return nil
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-*ch:
		return nil
	case <-t.C:
		return ErrPoolTimeout
	case <-cancel:
		return ErrCanceled
	case <-ctx.Done():
		return ErrShutdown
	}
}

// Ready reports nil when the proxy takes traffic: not draining and every
// database's primary healthy.
func (srv *Server) Ready() error {
	if srv.draining.Load() {
		return ErrShutdown
	}
	rt := srv.rt.Load()
	var down []string
	for _, c := range rt.clusterList() {
		if p := c.primary; !p.usable() {
			down = append(down, c.name+" ("+p.addr+")")
		}
	}
	if len(down) > 0 {
		sort.Strings(down)
		return fmt.Errorf("primary down: %v", down)
	}
	return nil
}

// Clients returns the number of connected clients.
func (srv *Server) Clients() int { return int(srv.nclients.Load()) }
