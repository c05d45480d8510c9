package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// StreamVersion implements [cairn.Backend].
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	st, err := s.streamState(ctx, "stream version of", stream)
	if err != nil {
		return 0, err
	}
	return st.version, nil
}

// StreamExists implements [cairn.Backend].
func (s *Store) StreamExists(ctx context.Context, stream string) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.streams+
		` WHERE id = $1 AND version >= 0 AND NOT deleted AND NOT tombstoned)`, stream).Scan(&ok)
	if err != nil {
		return false, s.wrap("stream exists", err)
	}
	return ok, nil
}

// HasEvents implements [cairn.Backend].
func (s *Store) HasEvents(ctx context.Context) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.chunks+`)`).Scan(&ok); err != nil {
		return false, s.wrap("has events", err)
	}
	return ok, nil
}

// ListStreams implements [cairn.Backend].
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM `+s.streams+
		` WHERE id > $1 AND version >= 0 AND NOT deleted AND NOT tombstoned ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, s.wrap("list streams", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.wrap("list streams", err)
	}
	return ids, nil
}
