package reshard

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// Cutover switches the proxies to the new map. It first catches up online
// (CatchUp), then calls pause, which must return only once no write
// transaction is in flight on any proxy and new ones wait. With writes
// paused it applies the last captured changes, re-copies every reference
// table written since its copy, verifies every moved set (Verify), records
// the decision (PhaseCutover) and calls Options.Switch. resume is called
// on every return path once pause was called.
//
// The pause lasts the final catch-up (at most about catchup_threshold
// changes) plus a verification scan of the moving tables on the sources
// and targets: see the package documentation for the figures.
//
// On a verification failure it returns a *VerifyError, the proxies keep
// the old map, and nothing is deleted. If Switch fails the job stays in
// PhaseCutover; running Cutover again pauses, applies what was captured
// meanwhile and switches again, without verifying (writes that reached the
// new shards through proxies that did switch would fail it; the replay
// from the still-installed capture is what keeps the sets equal).
//
// It fails with ErrState before the copy is done and is a no-op once cut
// over.
func (r *Resharder) Cutover(ctx context.Context, pause, resume func()) error {
	if r.opts.Switch == nil || pause == nil || resume == nil {
		return errors.New("reshard: cutover needs Options.Switch, pause and resume")
	}
	phase := r.Phase()
	switch phase {
	case PhaseCopy:
		return fmt.Errorf("%w: the copy is not finished", ErrState)
	case PhaseDelete, PhaseDone:
		return nil
	}
	release, err := r.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := r.prepare(ctx); err != nil {
		return err
	}
	resumed := phase == PhaseCutover
	if resumed {
		if err := r.checkCapture(ctx); err != nil {
			return err
		}
	}
	if !resumed {
		if err := r.CatchUp(ctx); err != nil {
			return err
		}
	}
	r.progress.startPhase(PhaseCutover)
	start := r.now()
	pause()
	resumeOnce := sync.OnceFunc(func() {
		resume()
		r.log.Info("writes resumed", zap.Duration("paused", r.now().Sub(start)))
	})
	defer resumeOnce()
	r.log.Info("writes paused")

	if _, err := r.drainAll(ctx, true); err != nil {
		return err
	}
	r.progress.markReplayed()
	if err := r.syncRefs(ctx); err != nil {
		return err
	}
	if !resumed {
		verified, err := r.verify(ctx)
		if err != nil {
			return err
		}
		if err := r.update(ctx, func(s *State) {
			s.Verified = verified
			s.Phase = PhaseCutover
		}); err != nil {
			return err
		}
	}
	if err := r.opts.Switch(ctx); err != nil {
		return fmt.Errorf("reshard: switch to the new map (the job stays in phase %s; run the cutover again): %w", PhaseCutover, err)
	}
	if err := r.setPhase(ctx, PhaseDelete); err != nil {
		return err
	}
	// Writes are still paused. A change logged since the drain above came
	// from a client that bypassed the proxies' pause; apply it while the
	// new shards have taken no write yet.
	if _, err := r.drainAll(ctx, true); err != nil {
		r.log.Error("applying changes that bypassed the pause failed; they may be lost", zap.Error(err))
	} else if n := r.progress.replayedSince(); n > 0 {
		r.log.Warn("changes were written during the pause by clients that bypass the proxies; they were applied", zap.Int64("changes", n))
	}
	// The proxies route moved keys to their new shards: the capture has
	// nothing left to see. Drop its triggers now, while no write holds a
	// table lock (one short try; Delete retries what fails here).
	for _, s := range r.sources() {
		if err := r.dropTriggers(ctx, s, false); err != nil {
			r.log.Warn("change capture triggers left for the delete phase", zap.Error(err))
		}
	}
	resumeOnce()
	return nil
}

// syncRefs copies again every reference table that was written since its
// copy (writes paused) or was never copied.
func (r *Resharder) syncRefs(ctx context.Context) error {
	for _, rc := range r.plan.References {
		dirty := !r.refCopied(rc)
		if !dirty {
			c, err := connect(ctx, r.primary(rc.From))
			if err != nil {
				return err
			}
			err = c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+refDirty+` WHERE tbl = $1 AND dest = $2)`, rc.Table, rc.To).Scan(&dirty)
			closeConn(c)
			if err != nil {
				return fmt.Errorf("reshard: %s: %w", rc.From, err)
			}
		}
		if dirty {
			if err := r.copyRef(ctx, rc); err != nil {
				return err
			}
		}
	}
	return nil
}
