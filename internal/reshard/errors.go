package reshard

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap one of them (or a
// database / context error) with %w; only cmd/dbproxy turns them into exit
// codes and messages.
var (
	// ErrUnsupported: the map change cannot be carried out by the resharder
	// (a table becomes sharded or stops being sharded, a shard key type
	// changes, ...).
	ErrUnsupported = errors.New("reshard: unsupported change")
	// ErrSchema: a table is missing on a shard, or its columns differ
	// between the source and the target.
	ErrSchema = errors.New("reshard: schema mismatch")
	// ErrUnplaceable: a row's key moves but has no shard in the new map
	// (a range or list function without a default); nothing is copied for
	// that table until the map is fixed.
	ErrUnplaceable = errors.New("reshard: key has no shard in the new map")
	// ErrVerify: the rows that move and their copies differ in count or
	// checksum. Nothing is deleted and the map is not switched.
	ErrVerify = errors.New("reshard: verification failed")
	// ErrState: the saved state belongs to another job (other maps), or a
	// step was asked for in the wrong phase (e.g. deleting before cutover).
	ErrState = errors.New("reshard: state")
	// ErrBusy: another job holds the job lock on one of the shards.
	ErrBusy = errors.New("reshard: another resharding job is running")
	// ErrBackend: a PostgreSQL node answered something the resharder
	// cannot use (bad COPY stream, unexpected catalog data).
	ErrBackend = errors.New("reshard: backend")
)

// Mismatch is one (table, from, to) set whose copy does not match its
// source. Reference tables have From = the shard copied from.
type Mismatch struct {
	Table    string
	From, To string
	// Source and Target are what each side holds for the set.
	Source, Target Checksum
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s %s→%s: source %d rows (sum %016x), target %d rows (sum %016x)",
		m.Table, m.From, m.To, m.Source.Rows, m.Source.Sum, m.Target.Rows, m.Target.Sum)
}

// VerifyError lists every set that failed verification. It wraps
// ErrVerify.
type VerifyError struct {
	Mismatches []Mismatch
}

func (e *VerifyError) Error() string {
	parts := make([]string, len(e.Mismatches))
	for i, m := range e.Mismatches {
		parts[i] = m.String()
	}
	return fmt.Sprintf("%v: %s", ErrVerify, strings.Join(parts, "; "))
}

// Unwrap returns ErrVerify.
func (e *VerifyError) Unwrap() error { return ErrVerify }
