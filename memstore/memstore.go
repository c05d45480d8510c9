// Package memstore is cairn's in-memory engine: the whole backend contract,
// every optional capability included, with no durability. It is meant for
// tests and examples.
//
// Every operation runs under one read-write mutex, so appends, batches and
// commits with projections are trivially atomic, append conditions are
// checked in the critical section that writes, and the global log is
// gapless for readers. Events are kept in one slice indexed by position;
// the index (cairn.IndexReader, cairn.Querier) is a list of positions per
// key, written with them.
//
// # Caveats
//
// Nothing survives the process. Compact does nothing: memory is not given
// back for deleted or truncated events.
package memstore

import (
	"context"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// Store is the in-memory engine. Its zero value is not usable; call [New].
//
// Locks: mu, the only one, guards every field below it; reads hold it for
// reading, writes (and a projection's tx, which runs inside CommitAll) for
// writing. Methods named …Locked expect it held.
type Store struct {
	mu        sync.RWMutex
	closed    bool
	log       []cairn.Event
	streams   map[string]*stream
	ids       map[uuid.UUID]uint64 // event id → position
	snapshots map[string]cairn.Snapshot
	tables    map[string]map[string][]byte
	index     map[cairn.IndexKey][]uint64 // see index.go
	keys      []cairn.IndexKey            // scratch for fileLocked
}

type stream struct {
	positions  []uint64 // positions[v] is the position of version v
	before     int64    // versions below are truncated or deleted
	deleted    bool     // soft-deleted and not recreated
	tombstoned bool
}

func (s *stream) current() int64 {
	if s.deleted || s.tombstoned {
		return -1
	}
	return int64(len(s.positions)) - 1
}

// New returns an empty in-memory engine.
func New() *Store {
	return &Store{
		streams:   map[string]*stream{},
		ids:       map[uuid.UUID]uint64{},
		snapshots: map[string]cairn.Snapshot{},
		tables:    map[string]map[string][]byte{},
		index:     map[cairn.IndexKey][]uint64{},
	}
}

// Open returns a [cairn.Store] over a new in-memory engine.
func Open() *cairn.Store { return cairn.NewStore(New(), cairn.Options{}) }

var (
	_ cairn.Backend         = (*Store)(nil)
	_ cairn.BatchAppender   = (*Store)(nil)
	_ cairn.Truncater       = (*Store)(nil)
	_ cairn.Tombstoner      = (*Store)(nil)
	_ cairn.Compacter       = (*Store)(nil)
	_ cairn.DiskSizer       = (*Store)(nil)
	_ cairn.HealthChecker   = (*Store)(nil)
	_ cairn.Snapshotter     = (*Store)(nil)
	_ cairn.TxCommitter     = (*Store)(nil)
	_ cairn.ReadModelReader = (*Store)(nil)
	_ cairn.SizedReader     = (*Store)(nil)
	_ cairn.IndexReader     = (*Store)(nil)
	_ cairn.Querier         = (*Store)(nil)
)

// checkLocked fails when the store is closed or ctx is done. s.mu is held.
func (s *Store) checkLocked(ctx context.Context) error {
	if s.closed {
		return cairn.ErrClosed
	}
	return ctx.Err()
}

// liveLocked returns the stream id, or the error for op on a stream that
// does not exist, was soft-deleted or was tombstoned. s.mu is held.
func (s *Store) liveLocked(op, id string) (*stream, error) {
	st := s.streams[id]
	switch {
	case st != nil && st.tombstoned:
		return nil, cairn.Deleted(op, id)
	case st == nil || st.deleted:
		return nil, cairn.NotFound(op, id)
	}
	return st, nil
}

// Compact implements [cairn.Compacter]; in memory it does nothing.
func (s *Store) Compact(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkLocked(ctx)
}

// DiskBytes implements [cairn.DiskSizer]: an in-memory store uses no disk.
func (s *Store) DiskBytes(ctx context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return 0, s.checkLocked(ctx)
}

// Health implements [cairn.HealthChecker].
func (s *Store) Health(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkLocked(ctx)
}

// Close implements [cairn.Backend].
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return cairn.ErrClosed
	}
	s.closed = true
	return nil
}
