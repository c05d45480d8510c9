package cairn

import (
	"context"
	"errors"
	"fmt"
)

// DeleteStream soft-deletes stream if its version satisfies expected (checked
// atomically with the delete, as an append checks it): reads return
// not-found, its snapshot is removed, and an append with NoStream or Any
// recreates it, its versions continuing after the last deleted one.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	if err := validateExpected(expected); err != nil {
		return err
	}
	return s.failed("delete", withOp("delete", s.b.DeleteStream(ctx, stream, expected)))
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
// can never be written or read again, and its snapshot is removed.
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
	return s.failed("tombstone", withOp("tombstone", t.TombstoneStream(ctx, stream, expected)))
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
