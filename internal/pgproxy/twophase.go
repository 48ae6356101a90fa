package pgproxy

import (
	"context"
	"fmt"
)

// gid is the two-phase transaction identifier of one shard's part.
func (f *fanout) gid(s *session, shard int) string {
	return fmt.Sprintf("tg2pc_%d_%d", s.id, shard)
}

func (s *session) commitTwoPhase(ctx context.Context, sdb *shardedDB) error {
	return errMultiShardTx
}

func (s *session) abortTwoPhase(f *fanout) {}

func (s *session) finishTwoPhase(ctx context.Context, f *fanout) error { return errMultiShardTx }

func (s *session) runCopySplit(ctx context.Context, sdb *shardedDB, u *unitRoute) error {
	return s.shardFail(fmt.Errorf("%w: COPY into a sharded table", errUnsupported), false)
}
