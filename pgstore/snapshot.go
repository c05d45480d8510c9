package pgstore

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5"
)

// CommitSnapshot implements [cairn.Snapshotter] with one upsert that keeps
// the stored row when its version is not older.
func (s *Store) CommitSnapshot(ctx context.Context, snap cairn.Snapshot) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	// The stream's row is share-locked, so that a snapshot racing a delete
	// waits for it and then sees the stream deleted; a deleted stream has no
	// snapshot.
	_, err := s.pool.Exec(ctx, `WITH st AS (SELECT deleted OR tombstoned AS gone FROM `+s.streams+` WHERE id = $1 FOR SHARE)
		INSERT INTO `+s.snapshots+` AS t (stream, version, data, metadata, created)
		SELECT $1, $2, $3, $4, clock_timestamp() WHERE NOT EXISTS (SELECT 1 FROM st WHERE gone)
		ON CONFLICT (stream) DO UPDATE SET version = excluded.version, data = excluded.data,
			metadata = excluded.metadata, created = excluded.created
		WHERE excluded.version > t.version`, snap.StreamID, snap.Version, snap.Data, snap.Metadata)
	return s.wrap("commit snapshot", err)
}

// GetSnapshot implements [cairn.Snapshotter].
func (s *Store) GetSnapshot(ctx context.Context, stream string, min, max int64) (cairn.Snapshot, bool, error) {
	if err := s.check(ctx); err != nil {
		return cairn.Snapshot{}, false, err
	}
	snap := cairn.Snapshot{StreamID: stream}
	err := s.pool.QueryRow(ctx, `SELECT version, data, metadata, created FROM `+s.snapshots+`
		WHERE stream = $1 AND version > $2 AND version <= $3`, stream, min, max).
		Scan(&snap.Version, &snap.Data, &snap.Metadata, &snap.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return cairn.Snapshot{}, false, nil
	}
	if err != nil {
		return cairn.Snapshot{}, false, s.wrap("get snapshot", err)
	}
	snap.Created = snap.Created.UTC()
	return snap, true, nil
}
