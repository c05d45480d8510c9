package memstore

import (
	"context"
	"slices"

	"github.com/cairndb/cairn"
)

// CommitSnapshot implements [cairn.Snapshotter].
func (s *Store) CommitSnapshot(ctx context.Context, snap cairn.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return err
	}
	if old, ok := s.snapshots[snap.StreamID]; ok && old.Version >= snap.Version {
		return nil
	}
	if st := s.streams[snap.StreamID]; st != nil && (st.deleted || st.tombstoned) {
		return nil // a deleted stream has no snapshot
	}
	snap.Data = slices.Clone(snap.Data)
	snap.Metadata = slices.Clone(snap.Metadata)
	snap.Created = cairn.Now()
	s.snapshots[snap.StreamID] = snap
	return nil
}

// GetSnapshot implements [cairn.Snapshotter].
func (s *Store) GetSnapshot(ctx context.Context, id string, min, max int64) (cairn.Snapshot, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return cairn.Snapshot{}, false, err
	}
	snap, ok := s.snapshots[id]
	if !ok || snap.Version <= min || snap.Version > max {
		return cairn.Snapshot{}, false, nil
	}
	snap.Data = slices.Clone(snap.Data)
	snap.Metadata = slices.Clone(snap.Metadata)
	return snap, true, nil
}
