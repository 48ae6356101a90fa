package reshard

import (
	"context"
	"errors"
)

// Run carries out a job as far as opts allows, resuming from opts.Store:
// Copy, CatchUp, then with opts.Cutover also Cutover (with opts.Pause and
// opts.Resume) and Delete. Without opts.Cutover it returns nil once caught
// up, with change capture left installed; a later Run with Cutover (and the
// same state) finishes the job. A job already past the cutover decision is
// finished whatever opts.Cutover says.
//
// This is what `dbproxy reshard -config old.yaml -to new.yaml [-cutover]
// [-state FILE]` calls.
func Run(ctx context.Context, opts Options) error {
	r, err := New(ctx, opts)
	if err != nil {
		return err
	}
	if err := r.Copy(ctx); err != nil {
		return err
	}
	phase := r.Phase()
	if !opts.Cutover && phase.before(PhaseCutover) {
		return r.CatchUp(ctx)
	}
	if phase.before(PhaseDelete) {
		if opts.Pause == nil || opts.Resume == nil {
			return errors.New("reshard: the cutover needs Options.Pause and Options.Resume")
		}
		if err := r.Cutover(ctx, opts.Pause, opts.Resume); err != nil {
			return err
		}
	}
	return r.Delete(ctx)
}
