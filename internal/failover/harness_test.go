package failover_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/cluster/clustertest"
	"github.com/tiergate/tiergate/internal/failover"
	"github.com/tiergate/tiergate/internal/pgtest"
)

const shard = "app"

// harness is one PostgreSQL cluster (a primary and replicas, via pgtest)
// and three proxies' coordination (cluster nodes and failover managers)
// in this process.
type harness struct {
	t         *testing.T
	pg        *pgtest.Cluster
	cfg       failover.Config
	cl        *clustertest.Cluster
	mgrs      []*failover.Manager
	changes   []*changeLog // OnChange calls, per proxy
	names     []string
	tm        clustertest.Timing
	stopCoord func()
}

func verbose() bool { return os.Getenv("TIERGATE_TEST_VERBOSE") != "" }

// newHarness starts everything and waits until writes are open on every
// proxy.
func newHarness(t *testing.T, spec pgtest.Spec, mod func(*failover.Config)) *harness {
	t.Helper()
	if spec.Conf == nil {
		spec.Conf = map[string]string{}
	}
	// A repointed replica retries streaming this often (default 5s).
	spec.Conf["wal_retrieve_retry_interval"] = "'200ms'"
	pg := pgtest.New(t, spec)
	ctx := testCtx(t, 30*time.Second)
	if err := pg.Nodes[0].Exec(ctx, `CREATE TABLE writes (id bigint PRIMARY KEY, term bigint NOT NULL, node text NOT NULL, pad text)`); err != nil {
		t.Fatal(err)
	}
	cfg := failover.Config{
		FailoverAfter: time.Second,
		CheckInterval: 250 * time.Millisecond,
		CheckTimeout:  time.Second,
		SSLMode:       "disable",
		Shards:        []failover.ShardConfig{{Name: shard, Primary: pg.Nodes[0].Name}},
	}
	for _, n := range pg.Nodes {
		cfg.Shards[0].Nodes = append(cfg.Shards[0].Nodes, failover.NodeConfig{Name: n.Name, Address: n.Addr()})
	}
	if mod != nil {
		mod(&cfg)
	}
	cfg.SetDefaults()
	h := &harness{t: t, pg: pg, cfg: cfg, names: []string{"p1", "p2", "p3"},
		tm: clustertest.Timing{Lease: 2 * time.Second, Heartbeat: 200 * time.Millisecond, RaftTimeout: time.Second, RejoinInterval: 500 * time.Millisecond}}
	h.startCoordination()
	h.waitWritable(30*time.Second, h.mgrs...)
	return h
}

// startCoordination starts the three proxies' cluster nodes and managers.
func (h *harness) startCoordination() {
	t := h.t
	h.cl = clustertest.Start(t, h.names, h.tm, verbose())
	lvl := zap.WarnLevel
	if verbose() {
		lvl = zap.DebugLevel
	}
	mctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	h.mgrs = nil
	h.changes = make([]*changeLog, len(h.names))
	for i, node := range h.cl.Nodes {
		cl := &changeLog{}
		h.changes[i] = cl
		m, err := failover.New(h.cfg, node, failover.Options{
			Logger:   clustertest.Logger(t, lvl).Named(node.Name()),
			Rewinder: &pgRewinder{pg: h.pg},
			OnChange: cl.add,
		})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		h.mgrs = append(h.mgrs, m)
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Run(mctx) }()
	}
	var once sync.Once
	cl := h.cl
	h.stopCoord = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			cl.Stop()
		})
	}
	t.Cleanup(h.stopCoord)
}

// restartCoordination stops every proxy (losing all Raft state) and starts
// fresh ones, as after a full restart.
func (h *harness) restartCoordination() {
	h.stopCoord()
	h.startCoordination()
}

// changeLog records OnChange calls.
type changeLog struct {
	mu  sync.Mutex
	all []failover.Change
}

func (c *changeLog) add(ch failover.Change) {
	c.mu.Lock()
	c.all = append(c.all, ch)
	c.mu.Unlock()
}

func (c *changeLog) list() []failover.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mgr returns the manager of proxy name.
func (h *harness) mgr(name string) *failover.Manager {
	return h.mgrs[slices.Index(h.names, name)]
}

// leader waits for a Raft leader among group (default: everyone) and
// returns its manager.
func (h *harness) leader(group ...string) (*failover.Manager, string) {
	l := h.cl.Leader(h.t, 15*time.Second, group...)
	return h.mgr(l.Name()), l.Name()
}

// waitWritable waits until CheckWrite passes on every given manager, all
// pointing at the same target.
func (h *harness) waitWritable(timeout time.Duration, ms ...*failover.Manager) failover.Target {
	h.t.Helper()
	var tgt failover.Target
	clustertest.Eventually(h.t, timeout, func() error {
		for i, m := range ms {
			got, err := m.CheckWrite(shard)
			if err != nil {
				return err
			}
			if i > 0 && got != tgt {
				return fmt.Errorf("proxies disagree: %+v vs %+v", tgt, got)
			}
			tgt = got
		}
		return nil
	})
	return tgt
}

// state returns the decided state as proxy 0 sees it.
func (h *harness) state(name string) cluster.ShardState {
	st, _ := h.cl.Node(name).State().Shard(shard)
	return st
}

// waitTerm waits until every proxy in group applied a decided (not
// pending) term above `above` and returns it.
func (h *harness) waitTerm(timeout time.Duration, above uint64, group ...string) cluster.ShardState {
	h.t.Helper()
	if len(group) == 0 {
		group = h.names
	}
	var st cluster.ShardState
	clustertest.Eventually(h.t, timeout, func() error {
		for i, name := range group {
			s := h.state(name)
			if s.Term <= above || s.Pending != nil {
				return fmt.Errorf("%s: term %d pending=%v (blocked %q)", name, s.Term, s.Pending != nil, s.Blocked)
			}
			if i > 0 && (s.Term != st.Term || s.Primary != st.Primary) {
				return fmt.Errorf("%s has term %d/%s, %s has %d/%s", group[0], st.Term, st.Primary, name, s.Term, s.Primary)
			}
			st = s
		}
		return nil
	})
	return st
}

// waitTimeline waits until every proxy shows the last change of primary
// with the leader's steps (by text, in order) and its own local events
// (in order, and recorded by itself), then checks the times: sorted,
// offsets from the start, a duration. st gives the expected term and
// primary (To; "" while refused). It returns the first proxy's timeline.
func (h *harness) waitTimeline(timeout time.Duration, st cluster.ShardState, kind, from string, steps, local []string) *failover.FailoverTimeline {
	h.t.Helper()
	var first *failover.FailoverTimeline
	clustertest.Eventually(h.t, timeout, func() error {
		for i, m := range h.mgrs {
			name := h.names[i]
			tl := m.Status().Shards[0].LastFailover
			if tl == nil {
				return fmt.Errorf("%s: no timeline", name)
			}
			if tl.Term != st.Term || tl.Kind != kind || tl.From != from || tl.To != st.Primary || tl.InProgress {
				return fmt.Errorf("%s: timeline term %d %s %s -> %s (in progress %v, outcome %q), want term %d %s %s -> %s",
					name, tl.Term, tl.Kind, tl.From, tl.To, tl.InProgress, tl.Outcome, st.Term, kind, from, st.Primary)
			}
			var all, own []string
			for j, e := range tl.Events {
				all = append(all, e.What)
				if e.Proxy == name {
					own = append(own, e.What)
				}
				if e.Local && e.Proxy != name {
					return fmt.Errorf("%s: local event of %s: %q", name, e.Proxy, e.What)
				}
				if j > 0 && e.At.Before(tl.Events[j-1].At) {
					return fmt.Errorf("%s: event %d (%q) is older than the one before", name, j, e.What)
				}
				if !strings.HasPrefix(e.Offset, "+") || e.At.Before(tl.Started) {
					return fmt.Errorf("%s: event %q at offset %q before the start", name, e.What, e.Offset)
				}
			}
			if err := subsequence(all, steps); err != nil {
				return fmt.Errorf("%s: leader steps: %w", name, err)
			}
			if err := subsequence(own, local); err != nil {
				return fmt.Errorf("%s: own events: %w", name, err)
			}
			if tl.Duration <= 0 || tl.Duration > time.Minute || tl.Took == "" {
				return fmt.Errorf("%s: duration %v (%q)", name, tl.Duration, tl.Took)
			}
			if i == 0 {
				first = tl
			}
		}
		return nil
	})
	if verbose() {
		for _, e := range first.Events {
			h.t.Logf("%s %8s %s %s", h.names[0], e.Offset, e.Proxy, e.What)
		}
	}
	h.t.Logf("last failover (term %d, %s): %s, %d events on %s", first.Term, first.Kind, first.Took, len(first.Events), h.names[0])
	return first
}

// subsequence checks that each of want is a substring of an element of
// got, in order.
func subsequence(got, want []string) error {
	i := 0
	for _, g := range got {
		if i < len(want) && strings.Contains(g, want[i]) {
			i++
		}
	}
	if i < len(want) {
		return fmt.Errorf("%q not found in order in %q", want[i], got)
	}
	return nil
}

// node returns the pgtest node by name.
func (h *harness) node(name string) *pgtest.Node { return h.pg.Node(name) }

// inRecovery reports pg_is_in_recovery() of a running node.
func (h *harness) inRecovery(ctx context.Context, name string) (bool, error) {
	var r bool
	err := h.node(name).QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&r)
	return r, err
}

// waitStreaming waits until replica streams from primary.
func (h *harness) waitStreaming(timeout time.Duration, primary, replica string) {
	h.t.Helper()
	ctx := testCtx(h.t, timeout+5*time.Second)
	clustertest.Eventually(h.t, timeout, func() error {
		var n int
		if err := h.node(primary).QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", replica).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%s does not stream from %s", replica, primary)
		}
		return nil
	})
}

// ack is one acknowledged write.
type ack struct {
	id   int64
	term uint64
	node string
	at   time.Time
}

// writer is the tiny test client: before each write it asks a proxy's
// fence (round robin over the proxies) and writes to the target it gets,
// over a connection opened for that target and term.
type writer struct {
	h      *harness
	mgrs   []*failover.Manager
	nextID atomic.Int64
	fenced atomic.Int64
	failed atomic.Int64

	mu    sync.Mutex
	acks  []ack
	stop  context.CancelFunc
	done  sync.WaitGroup
	pause time.Duration
}

func (h *harness) startWriter(workers int) *writer {
	w := &writer{h: h, mgrs: h.mgrs, pause: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	for i := range workers {
		w.done.Add(1)
		go func() { defer w.done.Done(); w.run(ctx, i) }()
	}
	h.t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	w.stop()
	w.done.Wait()
}

func (w *writer) run(ctx context.Context, worker int) {
	conns := map[connKey]*pgx.Conn{}
	defer func() {
		for _, c := range conns {
			_ = c.Close(context.Background())
		}
	}()
	tick := time.NewTicker(w.pause)
	defer tick.Stop()
	for i := worker; ctx.Err() == nil; i++ {
		m := w.mgrs[i%len(w.mgrs)]
		tgt, err := m.CheckWrite(shard)
		if err != nil {
			if !errors.Is(err, failover.ErrFenced) {
				panic(err)
			}
			w.fenced.Add(1)
		} else if err := w.write(ctx, conns, connKey{tgt.Addr, tgt.Term}, tgt); err != nil && ctx.Err() == nil {
			w.failed.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// connKey identifies a connection opened for one target and term.
type connKey struct {
	addr string
	term uint64
}

func (w *writer) write(ctx context.Context, conns map[connKey]*pgx.Conn, k connKey, tgt failover.Target) error {
	c := conns[k]
	if c == nil {
		for old, oc := range conns { // a new term: drop connections of older ones
			_ = oc.Close(context.Background())
			delete(conns, old)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		c, err = pgx.Connect(cctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", tgt.Addr))
		cancel()
		if err != nil {
			return err
		}
		conns[k] = c
	}
	id := w.nextID.Add(1)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Exec(wctx, "INSERT INTO writes (id, term, node) VALUES ($1, $2, $3)", id, int64(tgt.Term), tgt.Node); err != nil {
		_ = c.Close(context.Background())
		delete(conns, k)
		return err
	}
	w.mu.Lock()
	w.acks = append(w.acks, ack{id: id, term: tgt.Term, node: tgt.Node, at: time.Now()})
	w.mu.Unlock()
	return nil
}

func (w *writer) snapshot() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks)
}

// waitAckAfter waits for an acknowledged write after t to a node other
// than `not`, and returns when it happened.
func (w *writer) waitAckAfter(t time.Time, not string, timeout time.Duration) time.Time {
	w.h.t.Helper()
	var at time.Time
	clustertest.Eventually(w.h.t, timeout, func() error {
		for _, a := range w.snapshot() {
			if a.at.After(t) && a.node != not {
				at = a.at
				return nil
			}
		}
		return fmt.Errorf("no write acknowledged by a node other than %s since the fault (fenced %d, failed %d)", not, w.fenced.Load(), w.failed.Load())
	})
	return at
}

// waitAcks waits for n more acknowledged writes.
func (w *writer) waitAcks(n int, timeout time.Duration) {
	w.h.t.Helper()
	start := len(w.snapshot())
	clustertest.Eventually(w.h.t, timeout, func() error {
		if got := len(w.snapshot()) - start; got < n {
			return fmt.Errorf("%d of %d writes acknowledged (fenced %d, failed %d)", got, n, w.fenced.Load(), w.failed.Load())
		}
		return nil
	})
}

// check verifies the invariants on the final primary: every acknowledged
// write is there (lossless, for synchronous replication or switchovers),
// at most one node accepted writes per term, and the epoch table agrees.
func (w *writer) check(primary string, lossless bool) {
	t := w.h.t
	t.Helper()
	acks := w.snapshot()
	byTerm := map[uint64]string{}
	for _, a := range acks {
		if n, ok := byTerm[a.term]; ok && n != a.node {
			t.Errorf("term %d: writes accepted by both %s and %s", a.term, n, a.node)
		}
		byTerm[a.term] = a.node
	}
	ctx := testCtx(t, 30*time.Second)
	c, err := pgx.Connect(ctx, w.h.node(primary).DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, "SELECT term, primary_name FROM tiergate.ha_epoch WHERE shard = $1", shard)
	if err != nil {
		t.Fatal(err)
	}
	epochs := map[uint64]string{}
	for rows.Next() {
		var term int64
		var name string
		if err := rows.Scan(&term, &name); err != nil {
			t.Fatal(err)
		}
		epochs[uint64(term)] = name
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for term, node := range byTerm {
		if e, ok := epochs[term]; !ok || e != node {
			t.Errorf("term %d: writes went to %s but ha_epoch on %s says %q", term, node, primary, e)
		}
	}
	have := map[int64]bool{}
	rows, err = c.Query(ctx, "SELECT id FROM writes")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	var missing []int64
	for _, a := range acks {
		if !have[a.id] {
			missing = append(missing, a.id)
		}
	}
	terms := make([]uint64, 0, len(byTerm))
	for term := range byTerm {
		terms = append(terms, term)
	}
	slices.Sort(terms)
	t.Logf("writer: %d acknowledged over terms %v, %d fenced, %d failed; %d rows on %s", len(acks), terms, w.fenced.Load(), w.failed.Load(), len(have), primary)
	if len(missing) > 0 {
		if lossless {
			t.Errorf("%d acknowledged writes missing on %s (first %v)", len(missing), primary, missing[:min(len(missing), 10)])
		} else {
			t.Logf("%d acknowledged writes missing on %s (asynchronous replication)", len(missing), primary)
		}
	}
}

// pgRewinder is the harness's Rewinder: it owns the data directories.
type pgRewinder struct{ pg *pgtest.Cluster }

func (r *pgRewinder) Rewind(ctx context.Context, req failover.RewindRequest) error {
	n := r.pg.Node(req.Node.Name)
	if n == nil {
		return fmt.Errorf("no node %s", req.Node.Name)
	}
	if err := n.Resume(); err != nil && !errors.Is(err, pgtest.ErrNotRunning) {
		return err
	}
	if err := n.Stop(ctx); err != nil {
		return err
	}
	confPath := filepath.Join(n.DataDir, "postgresql.conf")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		return err
	}
	bin, err := pgtest.FindBinDir()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_rewind"), "-D", n.DataDir, "--no-sync", "--source-server="+req.SourceConninfo)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = n.Dir
	uid, gid, err := serverIDs()
	if err != nil {
		return err
	}
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_rewind %s: %w\n%s", n.Name, err, out)
	}
	// pg_rewind copied the source's configuration files: restore ours.
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return err
	}
	sig := filepath.Join(n.DataDir, "standby.signal")
	if err := os.WriteFile(sig, nil, 0o600); err != nil {
		return err
	}
	auto := filepath.Join(n.DataDir, "postgresql.auto.conf")
	f, err := os.OpenFile(auto, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "primary_conninfo = '%s'\n", req.PrimaryConninfo)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if uid >= 0 {
		for _, p := range []string{confPath, sig, auto} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
	}
	return n.Start(ctx)
}

// serverIDs returns the uid/gid the servers run as (postgres when we are
// root, as pgtest does), or -1 when they run as us.
func serverIDs() (int, int, error) {
	if os.Geteuid() != 0 {
		return -1, -1, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return 0, 0, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// durations summarizes measured failover times.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprintf("n=%d min=%s median=%s max=%s", len(s), s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

// freeze stops a node's postmaster and every one of its children
// (pgtest.Node.Pause reaches the children, which run in sessions of their
// own), like a hung host.
func freeze(t *testing.T, n *pgtest.Node) []*pgtest.Node {
	t.Helper()
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	return []*pgtest.Node{n}
}

// thaw resumes what freeze stopped.
func thaw(nodes []*pgtest.Node) {
	for _, n := range nodes {
		_ = n.Resume()
	}
}
