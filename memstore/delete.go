package memstore

import (
	"context"
	"time"

	"github.com/cairndb/cairn"
)

// DeleteStream implements [cairn.Backend].
func (s *Store) DeleteStream(ctx context.Context, id string, expected cairn.ExpectedVersion) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRemoveLocked(ctx, "delete", id, expected); err != nil {
		return err
	}
	st, err := s.liveLocked("delete", id)
	if err != nil {
		return err
	}
	rec, err := cairn.NewDeletionRecord(cairn.Deletion{Stream: id, Version: st.current()}, time.Now())
	if err != nil {
		return err
	}
	st.deleted = true
	st.before = int64(len(st.positions))
	delete(s.snapshots, id)
	s.writeLocked(cairn.DeletionsStream, []cairn.EventData{rec})
	return nil
}

// TombstoneStream implements [cairn.Tombstoner].
func (s *Store) TombstoneStream(ctx context.Context, id string, expected cairn.ExpectedVersion) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRemoveLocked(ctx, "tombstone", id, expected); err != nil {
		return err
	}
	st := s.streams[id]
	if st == nil {
		st = &stream{}
		s.streams[id] = st
	}
	rec, err := cairn.NewDeletionRecord(cairn.Deletion{Stream: id, Hard: true, Version: st.current()}, time.Now())
	if err != nil {
		return err
	}
	st.tombstoned = true
	st.before = int64(len(st.positions))
	delete(s.snapshots, id)
	s.writeLocked(cairn.DeletionsStream, []cairn.EventData{rec})
	return nil
}

// checkRemoveLocked checks a delete or tombstone of id: the store is open,
// the stream is not tombstoned, and its version satisfies expected. s.mu is
// held.
func (s *Store) checkRemoveLocked(ctx context.Context, op, id string, expected cairn.ExpectedVersion) error {
	if err := s.checkLocked(ctx); err != nil {
		return err
	}
	st := s.streams[id]
	if st != nil && st.tombstoned {
		return cairn.Deleted(op, id)
	}
	current := int64(-1)
	if st != nil {
		current = st.current()
	}
	return expected.Check(id, current)
}

// TruncateStream implements [cairn.Truncater].
func (s *Store) TruncateStream(ctx context.Context, id string, before int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return err
	}
	st, err := s.liveLocked("truncate", id)
	if err != nil {
		return err
	}
	st.before = max(st.before, before)
	return nil
}
