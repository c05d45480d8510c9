package pgstore

import (
	"context"
	"errors"

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
	var ok, pending bool
	err := s.pool.QueryRow(ctx, `SELECT version >= 0 AND NOT deleted AND NOT tombstoned, `+s.pendingSQL("t")+`
		FROM `+s.streams+` t WHERE id = $1`, stream).Scan(&ok, &pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err == nil && pending {
		_, err = s.settle(ctx, s.pool)
	}
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
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.chunks+` WHERE position < `+s.durableMark+`)`).Scan(&ok); err != nil {
		return false, s.wrap("has events", err)
	}
	return ok, nil
}

// ListStreams implements [cairn.Backend]. When appends that are not durable
// yet have committed, it makes them durable before it answers, as they may
// have created some of the streams listed.
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, (SELECT next FROM `+s.head+`) > `+s.durableMark+` FROM `+s.streams+
		` WHERE id > $1 AND version >= 0 AND NOT deleted AND NOT tombstoned ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, s.wrap("list streams", err)
	}
	ids := []string{}
	pending := false
	for rows.Next() {
		var id string
		var p bool
		if err := rows.Scan(&id, &p); err != nil {
			rows.Close()
			return nil, s.wrap("list streams", err)
		}
		ids = append(ids, id)
		pending = pending || p
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list streams", err)
	}
	if pending {
		if _, err := s.settle(ctx, s.pool); err != nil {
			return nil, s.wrap("list streams", err)
		}
	}
	return ids, nil
}
