package reshard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Phase is how far a job has gone. Phases only move forward, except that
// Resharder.Abort starts a job over.
type Phase string

// Phases, in order.
const (
	// PhaseCopy: change capture is installed on the sources and the bulk
	// copy runs (or is resumed from its checkpoints).
	PhaseCopy Phase = "copy"
	// PhaseCatchup: every bulk copy is done; captured changes are applied
	// to the targets until the backlog is small. The job waits here for a
	// cutover.
	PhaseCatchup Phase = "catchup"
	// PhaseCutover: with writes paused, the last changes were applied and
	// every moved set verified; the switch to the new map was decided and
	// may or may not have reached the proxies (a resumed job switches
	// again, see Resharder.Cutover).
	PhaseCutover Phase = "cutover"
	// PhaseDelete: the proxies use the new map; the moved rows are being
	// deleted from their old shards.
	PhaseDelete Phase = "delete"
	// PhaseDone: nothing is left to do.
	PhaseDone Phase = "done"
)

var phaseOrder = map[Phase]int{PhaseCopy: 0, PhaseCatchup: 1, PhaseCutover: 2, PhaseDelete: 3, PhaseDone: 4}

// before reports whether p comes before q.
func (p Phase) before(q Phase) bool { return phaseOrder[p] < phaseOrder[q] }

// State is a job's checkpoint, saved after every batch. It is plain data,
// serialized as JSON by FileStore.
type State struct {
	// Plan is the plan's fingerprint: a state is resumed only by the same
	// plan.
	Plan string `json:"plan"`
	// OldVersion and NewVersion are the maps' versions, for people.
	OldVersion int   `json:"old_version"`
	NewVersion int   `json:"new_version"`
	Phase      Phase `json:"phase"`
	// Sources has one entry per (table, old shard), keyed "table|shard".
	Sources map[string]*SourceState `json:"sources"`
	// References has one entry per reference copy, keyed "table|to".
	References map[string]*RefState `json:"references,omitempty"`
	// Verified records the checksums of the last successful verification.
	Verified []Verified `json:"verified,omitempty"`
}

// SourceState is the progress of one (table, old shard).
type SourceState struct {
	// CopyLast is the text form of the last key of the last committed copy
	// batch; nil before the first.
	CopyLast *string `json:"copy_last,omitempty"`
	CopyDone bool    `json:"copy_done"`
	// Scanned, Copied and Bytes count source rows read, rows written to
	// targets and their bytes (binary COPY), over every run.
	Scanned int64 `json:"scanned"`
	Copied  int64 `json:"copied"`
	Bytes   int64 `json:"bytes"`
	// DeleteLast and DeleteDone are the delete phase's checkpoint.
	DeleteLast *string `json:"delete_last,omitempty"`
	DeleteDone bool    `json:"delete_done"`
	// DeleteScanned and Deleted count source rows read and deleted.
	DeleteScanned int64 `json:"delete_scanned"`
	Deleted       int64 `json:"deleted"`
}

// RefState is the progress of one reference table copy.
type RefState struct {
	Copied bool  `json:"copied"`
	Rows   int64 `json:"rows"`
}

// Verified is one verified (table, from, to) set.
type Verified struct {
	Table string   `json:"table"`
	From  string   `json:"from"`
	To    string   `json:"to"`
	Sum   Checksum `json:"checksum"`
}

func sourceKey(table, shard string) string { return table + "|" + shard }

// clone returns a deep copy of s.
func (s *State) clone() *State {
	data, _ := json.Marshal(s)
	var c State
	_ = json.Unmarshal(data, &c)
	return &c
}

// Store keeps a job's State between runs. Implementations must be safe for
// use by one job at a time; Save is called after every batch, with the job
// holding its state lock, so it should be quick.
type Store interface {
	// Load returns the saved state, or nil and no error when there is none.
	Load(ctx context.Context) (*State, error)
	// Save replaces the saved state atomically: after a crash Load returns
	// either the previous or the new state, never a mix.
	Save(ctx context.Context, s *State) error
}

// FileStore keeps the state in a JSON file (dbproxy reshard -state FILE),
// replaced atomically (write to a temporary file, fsync, rename).
type FileStore struct {
	Path string
}

var _ Store = (*FileStore)(nil)

// Load implements Store.
func (f *FileStore) Load(context.Context) (*State, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reshard: read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %s is not a state file: %v", ErrState, f.Path, err)
	}
	return &s, nil
}

// Save implements Store.
func (f *FileStore) Save(_ context.Context, s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("reshard: encode state: %w", err)
	}
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, filepath.Base(f.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("reshard: write state: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("reshard: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("reshard: write state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Remove deletes the state file (after a finished or aborted job).
func (f *FileStore) Remove() error {
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reshard: remove state: %w", err)
	}
	return nil
}

// MemStore keeps the state in memory: a job resumes within one process
// only. The zero MemStore is ready to use.
type MemStore struct {
	mu sync.Mutex
	s  *State
}

var _ Store = (*MemStore)(nil)

// Load implements Store.
func (m *MemStore) Load(context.Context) (*State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.s == nil {
		return nil, nil
	}
	return m.s.clone(), nil
}

// Save implements Store.
func (m *MemStore) Save(_ context.Context, s *State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s = s.clone()
	return nil
}
