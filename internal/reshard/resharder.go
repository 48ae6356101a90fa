package reshard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/shardmap"
)

// closeTimeout bounds closing a session.
const closeTimeout = 5 * time.Second

// Node is how to reach one shard.
type Node struct {
	// Primary is the primary's DSN (postgres://... or key=value). The
	// user must own the sharded tables (it creates triggers on them) and
	// be allowed to create a schema. Required.
	Primary string
	// Replica is an optional streaming replica's DSN; with copy_from:
	// replica the bulk copy reads from it, sparing the primary.
	Replica string
}

// Options is a resharding job.
type Options struct {
	// Old and New are the shard maps before and after. Required.
	Old, New *shardmap.Map
	// Nodes maps every shard name of both maps (shardmap.Map.ShardName)
	// to its servers. Required for every shard the plan touches.
	Nodes map[string]Node
	// Config tunes the job; zero fields take their defaults.
	Config Config
	// Store keeps the checkpoints; nil keeps them in memory (a crash then
	// loses them, so the CLI passes a FileStore for -state).
	Store Store
	// Switch makes every proxy route by the new map (a config reload). It
	// must be idempotent: a resumed cutover calls it again. Required for
	// Cutover.
	Switch func(ctx context.Context) error
	// Pause and Resume stop and restart writes on every proxy, for Run's
	// cutover (see Resharder.Cutover). Required when Cutover is set.
	Pause, Resume func()
	// Cutover makes Run cut over and delete the moved rows once caught up;
	// without it Run stops when ready to cut over (change capture stays
	// installed), and a later Run with Cutover continues from there.
	Cutover bool
	// Progress receives progress reports, at most one per
	// Config.ProgressInterval and one at each phase end. Calls do not
	// overlap and hold up the job, so return quickly. Optional; Bar.Update
	// renders them.
	Progress func(Progress)
	// Log receives one line per phase and per noteworthy event. Optional.
	Log *zap.Logger
	// Now is the clock for rates and ETAs. Default time.Now.
	Now func() time.Time
}

// Resharder runs one job step by step: Copy, CatchUp, Cutover, Delete (Run
// does all of them). Its methods must not be called concurrently; each one
// resumes from the saved state, so any of them can be re-run after an
// error or a crash.
type Resharder struct {
	opts  Options
	cfg   Config
	plan  *Plan
	store Store
	log   *zap.Logger
	now   func() time.Time

	mu    sync.Mutex // guards state and its saving
	state *State

	cols     map[string][]column // table → copied columns, from prepare
	text     map[string]bool     // table → copy in text format (see copytext.go)
	progress *tracker
	lock     jobLock
}

// New validates opts, computes the plan and loads (or starts) the job's
// state. It fails with ErrState when the saved state belongs to another
// plan. It does not connect to any shard.
func New(ctx context.Context, opts Options) (*Resharder, error) {
	plan, err := NewPlan(opts.Old, opts.New)
	if err != nil {
		return nil, err
	}
	cfg := opts.Config
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("reshard: config: %w", err)
	}
	var missing []string
	for _, s := range plan.Shards() {
		if opts.Nodes[s].Primary == "" {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("reshard: no primary DSN for shard(s) %v", missing)
	}
	r := &Resharder{opts: opts, cfg: cfg, plan: plan, store: opts.Store, log: opts.Log, now: opts.Now, cols: map[string][]column{}, text: map[string]bool{}}
	if r.store == nil {
		r.store = &MemStore{}
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.now == nil {
		r.now = time.Now
	}
	st, err := r.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case st == nil:
		st = r.freshState()
		if err := r.store.Save(ctx, st); err != nil {
			return nil, err
		}
	case st.Plan != plan.Fingerprint():
		return nil, fmt.Errorf("%w: the saved state is for plan %s (v%d→v%d), this job's plan is %s (v%d→v%d); finish or abort that job first",
			ErrState, st.Plan, st.OldVersion, st.NewVersion, plan.Fingerprint(), opts.Old.Version(), opts.New.Version())
	}
	r.state = st
	r.progress = newTracker(r)
	return r, nil
}

func (r *Resharder) freshState() *State {
	st := &State{
		Plan: r.plan.Fingerprint(), OldVersion: r.opts.Old.Version(), NewVersion: r.opts.New.Version(),
		Phase: PhaseCopy, Sources: map[string]*SourceState{}, References: map[string]*RefState{},
	}
	for _, tp := range r.plan.Tables {
		for _, sp := range tp.Sources {
			st.Sources[sourceKey(tp.Name, sp.Shard)] = &SourceState{}
		}
	}
	for _, rc := range r.plan.References {
		st.References[sourceKey(rc.Table, rc.To)] = &RefState{}
	}
	if r.plan.Empty() {
		st.Phase = PhaseDone
	}
	return st
}

// Plan returns the job's plan.
func (r *Resharder) Plan() *Plan { return r.plan }

// State returns a copy of the job's current state.
func (r *Resharder) State() *State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.clone()
}

// Phase returns the job's current phase.
func (r *Resharder) Phase() Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Phase
}

// update changes the state under the lock and saves it.
func (r *Resharder) update(ctx context.Context, fn func(s *State)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.state)
	// Save even when ctx is done: the change happened on the database.
	return r.store.Save(context.WithoutCancel(ctx), r.state)
}

// setPhase moves the job to phase p and saves it.
func (r *Resharder) setPhase(ctx context.Context, p Phase) error {
	r.log.Info("reshard phase", zap.String("phase", string(p)))
	err := r.update(ctx, func(s *State) { s.Phase = p })
	r.progress.report(true)
	return err
}

// copyDSN is where the bulk copy of shard reads.
func (r *Resharder) copyDSN(shard string) string {
	n := r.opts.Nodes[shard]
	if r.cfg.CopyFrom == CopyFromReplica && n.Replica != "" {
		return n.Replica
	}
	return n.Primary
}

// primary is the primary DSN of shard.
func (r *Resharder) primary(shard string) string { return r.opts.Nodes[shard].Primary }

// sources returns the distinct source shards of the plan (sharded tables
// and reference copies), sorted.
func (r *Resharder) sources() []string {
	var out []string
	for _, tp := range r.plan.Tables {
		for _, sp := range tp.Sources {
			out = append(out, sp.Shard)
		}
	}
	for _, rc := range r.plan.References {
		out = append(out, rc.From)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// units returns every (table, source) pair.
func (r *Resharder) units() []unit {
	var out []unit
	for _, tp := range r.plan.Tables {
		for _, sp := range tp.Sources {
			out = append(out, unit{tp, sp})
		}
	}
	return out
}

type unit struct {
	tp *TablePlan
	sp *SourcePlan
}

// parallel runs fn for every item with at most n at once; the first error
// cancels the others and is returned.
func parallel[T any](ctx context.Context, n int, items []T, fn func(ctx context.Context, item T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// prepare reads every table's columns on its sources and checks them
// against its targets (binary COPY needs identical types).
func (r *Resharder) prepare(ctx context.Context) error {
	if len(r.cols) > 0 {
		return nil
	}
	conns := map[string]*connCache{}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	get := func(shard string) *connCache {
		if conns[shard] == nil {
			conns[shard] = &connCache{dsn: r.primary(shard)}
		}
		return conns[shard]
	}
	cols := map[string][]column{}
	text := map[string]bool{}
	check := func(table string, sources, targets []string) error {
		var ref []column
		var refShard string
		for _, s := range append(slices.Clone(sources), targets...) {
			c, err := get(s).get(ctx)
			if err != nil {
				return err
			}
			got, err := tableColumns(ctx, c, table)
			if err != nil {
				return fmt.Errorf("shard %s: %w", s, err)
			}
			if ref == nil {
				ref, refShard = got, s
				if text[table], err = needsText(ctx, c, table); err != nil {
					return fmt.Errorf("shard %s: %w", s, err)
				}
				continue
			}
			if err := sameColumns(table, refShard, s, ref, got); err != nil {
				return err
			}
		}
		cols[table] = ref
		return nil
	}
	var errs []error
	for _, tp := range r.plan.Tables {
		var sources []string
		for _, sp := range tp.Sources {
			sources = append(sources, sp.Shard)
		}
		errs = append(errs, check(tp.Name, sources, tp.Targets))
		if ref := cols[tp.Name]; ref != nil && !slices.ContainsFunc(ref, func(c column) bool { return c.Name == tp.Column }) {
			errs = append(errs, fmt.Errorf("%w: table %s has no column %q", ErrSchema, tp.Name, tp.Column))
		}
	}
	for _, rc := range r.plan.References {
		if _, ok := cols[rc.Table]; ok {
			continue
		}
		var targets []string
		for _, o := range r.plan.References {
			if o.Table == rc.Table {
				targets = append(targets, o.To)
			}
		}
		errs = append(errs, check(rc.Table, []string{rc.From}, targets))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.cols, r.text = cols, text
	return nil
}

// keyIndex is the position of the table's key column among its copied
// columns.
func (r *Resharder) keyIndex(tp *TablePlan) int {
	return slices.IndexFunc(r.cols[tp.Name], func(c column) bool { return c.Name == tp.Column })
}
