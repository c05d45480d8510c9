package cairn

import (
	"context"
	"fmt"
)

// CommitSnapshot stores snap if its version is newer than the stored one;
// otherwise it does nothing and succeeds.
func (s *Store) CommitSnapshot(ctx context.Context, snap Snapshot) error {
	if err := s.validStream(snap.StreamID); err != nil {
		return err
	}
	if snap.Version < 0 {
		return invalidf("snapshot version", "%d is negative", snap.Version)
	}
	if n := len(snap.Data) + len(snap.Metadata); n > s.opts.MaxEventBytes {
		return invalidf("snapshot", "data and metadata are %d bytes, the limit is %d", n, s.opts.MaxEventBytes)
	}
	sn, ok := s.b.(Snapshotter)
	if !ok {
		return fmt.Errorf("commit snapshot: %w", ErrNotSupported)
	}
	return s.failed("commit snapshot", sn.CommitSnapshot(ctx, snap))
}

// GetSnapshot returns the snapshot of stream when min < version ≤ max, and
// false when there is none in those bounds.
func (s *Store) GetSnapshot(ctx context.Context, stream string, min, max int64) (Snapshot, bool, error) {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return Snapshot{}, false, err
	}
	if max < min {
		return Snapshot{}, false, invalidf("max", "%d is below min %d", max, min)
	}
	sn, ok := s.b.(Snapshotter)
	if !ok {
		return Snapshot{}, false, fmt.Errorf("get snapshot: %w", ErrNotSupported)
	}
	return sn.GetSnapshot(ctx, stream, min, max)
}
