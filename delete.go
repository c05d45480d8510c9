package cairn

import (
	"context"
	"errors"
	"fmt"
)

// DeleteStream soft-deletes stream if its version satisfies expected (checked
// atomically with the delete, as an append checks it): reads return
// not-found, its snapshot is removed, and an append with NoStream or Any
// recreates it, its versions continuing after the last deleted one. The
// engine records the delete in the global log in the same commit (see
// [Deletion]).
func (s *Store) DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	if err := validateExpected(expected); err != nil {
		return err
	}
	if err := s.failed("delete", withOp("delete", s.b.DeleteStream(ctx, stream, expected))); err != nil {
		return err
	}
	s.recorded(ctx)
	return nil
}

// recorded wakes the subscribers of the log after a delete, whose record
// ([Deletion]) is a new event: it fires the change signal with the head
// of the log, which holds the record. The delete is done: when the head
// cannot be read, the subscribers are woken all the same and find the
// record by reading.
func (s *Store) recorded(ctx context.Context) {
	last, err := s.b.ReadAll(ctx, LogEnd, 1, Backward)
	if err != nil || len(last) == 0 {
		s.changes.wake()
		return
	}
	s.changes.fire(last[0].Position)
}

// withOp names op in a wrong-expected-version error, which engines make
// with the append's wording.
func withOp(op string, err error) error {
	var wev *WrongExpectedVersionError
	if errors.As(err, &wev) && wev.Op == "" {
		wev.Op = op
	}
	return err
}

// TombstoneStream hard-deletes stream if its version satisfies expected: it
// can never be written or read again, and its snapshot is removed. The
// engine records the tombstone in the global log in the same commit (see
// [Deletion]).
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	if err := validateExpected(expected); err != nil {
		return err
	}
	t, ok := s.b.(Tombstoner)
	if !ok {
		return fmt.Errorf("tombstone %q: %w", stream, ErrNotSupported)
	}
	if err := s.failed("tombstone", withOp("tombstone", t.TombstoneStream(ctx, stream, expected))); err != nil {
		return err
	}
	s.recorded(ctx)
	return nil
}

// TruncateStream removes the events of stream with version < before from
// reads of the stream; the versions of the rest do not change.
func (s *Store) TruncateStream(ctx context.Context, stream string, before int64) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	if before < 0 {
		return invalidf("before", "version %d is negative", before)
	}
	t, ok := s.b.(Truncater)
	if !ok {
		return fmt.Errorf("truncate %q: %w", stream, ErrNotSupported)
	}
	return s.failed("truncate", t.TruncateStream(ctx, stream, before))
}

// Compact asks the engine to reclaim the space of deleted and truncated
// events. Engines without compaction do nothing.
func (s *Store) Compact(ctx context.Context) error {
	if c, ok := s.b.(Compacter); ok {
		return s.failed("compact", c.Compact(ctx))
	}
	return nil
}
