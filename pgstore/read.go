package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const eventColumns = `position, stream, version, id, type, content_type, data, metadata, tags, created`

// eEventColumns are eventColumns of the table aliased e.
const eEventColumns = `e.position, e.stream, e.version, e.id, e.type, e.content_type, e.data, e.metadata, e.tags, e.created`

// collectEvents scans rows of eventColumns and closes them.
func collectEvents(rows pgx.Rows) ([]cairn.Event, error) {
	defer rows.Close()
	var out []cairn.Event
	for rows.Next() {
		var (
			e     cairn.Event
			pos   int64
			ctype int16
			id    uuid.UUID
		)
		if err := rows.Scan(&pos, &e.StreamID, &e.Version, &id, &e.Type, &ctype, &e.Data, &e.Metadata, &e.Tags, &e.Created); err != nil {
			return nil, err
		}
		e.ID = id
		e.Position = uint64(pos)
		e.ContentType = cairn.ContentType(ctype)
		e.Created = e.Created.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReadStream implements [cairn.Backend].
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sql := s.readStreamSQL(dir)
	if dir == cairn.Backward && from == cairn.StreamEnd {
		from = math.MaxInt64
	}
	read := func(q querier) ([]cairn.Event, error) {
		rows, err := q.Query(ctx, sql, stream, from, count)
		if err != nil {
			return nil, s.wrap("read stream", err)
		}
		events, err := collectEvents(rows)
		return events, s.wrap("read stream", err)
	}
	events, err := read(s.pool)
	if err != nil || len(events) > 0 {
		return events, err
	}
	// No events: say whether the stream is missing, deleted, or has none in
	// the range. The stream's state and its events must come from one
	// snapshot (a stream's row and its events commit together), and events
	// may have committed since the first query: read both in one
	// repeatable-read transaction.
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := s.streamStateOn(ctx, tx, "read", stream); err != nil {
			return err
		}
		events, err = read(tx)
		return err
	})
	if err != nil && !errors.Is(err, cairn.ErrStreamNotFound) && !errors.Is(err, cairn.ErrStreamDeleted) {
		err = s.wrap("read stream", err)
	}
	return events, err
}

// readStreamSQL reads a stream's events ($1 the stream, $2 the version to
// start from, $3 how many) through its runs: the runs that hold the
// versions asked for, in order, and the events of each by position. The
// runs scanned start at the one that holds the lowest version to read (the
// last one that begins at or before it); versions below the truncation
// point are skipped, and a deleted stream has no runs to read. Only the
// runs needed for $3 events are joined (those before which fewer than $3
// events were found), so that the final sort has fewer than 2×$3 rows
// whatever plan PostgreSQL chooses.
func (s *Store) readStreamSQL(dir cairn.Direction) string {
	// lo is the lowest version to read, NULL when the stream is deleted.
	lo := `(SELECT greatest($2::bigint, s.before) FROM ` + s.streams + ` s WHERE s.id = $1 AND NOT s.deleted AND NOT s.tombstoned)`
	if dir == cairn.Backward {
		lo = `(SELECT s.before FROM ` + s.streams + ` s WHERE s.id = $1 AND NOT s.deleted AND NOT s.tombstoned)`
	}
	// runs are the runs that hold versions from lo on, with the range of
	// positions to read in each (lo and hi, inclusive).
	runs := `SELECT r.version, r.position + greatest(b.lo - r.version, 0) AS lo, r.position + %s AS hi
		FROM (SELECT ` + lo + ` AS lo) b, ` + s.runs + ` r
		WHERE r.stream = $1 AND r.version + r.count > b.lo
			AND r.version >= (SELECT coalesce(max(r2.version), 0) FROM ` + s.runs + ` r2 WHERE r2.stream = $1 AND r2.version <= b.lo)`
	if dir == cairn.Forward {
		return `SELECT ` + eEventColumns + ` FROM (
				SELECT *, sum(hi - lo + 1) OVER (ORDER BY version) - (hi - lo + 1) AS before FROM (
					` + fmt.Sprintf(runs, `r.count - 1`) + `
					ORDER BY r.version LIMIT $3
				) r
			) r
			CROSS JOIN LATERAL (
				SELECT ` + eventColumns + ` FROM ` + s.events + `
				WHERE position >= r.lo AND position <= r.hi ORDER BY position LIMIT $3
			) e
			WHERE r.before < $3
			ORDER BY e.version LIMIT $3`
	}
	return `SELECT ` + eEventColumns + ` FROM (
			SELECT *, sum(hi - lo + 1) OVER (ORDER BY version DESC) - (hi - lo + 1) AS before FROM (
				` + fmt.Sprintf(runs, `least(r.count - 1, $2::bigint - r.version)`) + ` AND r.version <= $2::bigint
				ORDER BY r.version DESC LIMIT $3
			) r
		) r
		CROSS JOIN LATERAL (
			SELECT ` + eventColumns + ` FROM ` + s.events + `
			WHERE position >= r.lo AND position <= r.hi ORDER BY position DESC LIMIT $3
		) e
		WHERE r.before < $3
		ORDER BY e.version DESC LIMIT $3`
}

// streamState returns the state of an existing stream, or the error for op
// on a stream that does not exist, was soft-deleted or tombstoned.
func (s *Store) streamState(ctx context.Context, op, stream string) (streamState, error) {
	return s.streamStateOn(ctx, s.pool, op, stream)
}

// streamStateOn is streamState through q: the pool, or a transaction.
func (s *Store) streamStateOn(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, op, stream string) (streamState, error) {
	var st streamState
	err := q.QueryRow(ctx, `SELECT version, before, deleted, tombstoned FROM `+s.streams+` WHERE id = $1`, stream).
		Scan(&st.version, &st.before, &st.deleted, &st.tombstoned)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return st, cairn.NotFound(op, stream)
	case err != nil:
		return st, s.wrap(op, err)
	case st.tombstoned:
		return st, cairn.Deleted(op, stream)
	case st.current() < 0:
		return st, cairn.NotFound(op, stream)
	}
	return st, nil
}

// ReadAll implements [cairn.Backend]. Every position below the highest one a
// query sees is committed and visible (see the package documentation), so
// reading forward from the last position seen never skips an event.
func (s *Store) ReadAll(ctx context.Context, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var sql string
	if dir == cairn.Forward {
		if from > math.MaxInt64 {
			return nil, nil
		}
		sql = `SELECT ` + eventColumns + ` FROM ` + s.events + ` WHERE position >= $1 ORDER BY position LIMIT $2`
	} else {
		from = min(from, math.MaxInt64)
		sql = `SELECT ` + eventColumns + ` FROM ` + s.events + ` WHERE position <= $1 ORDER BY position DESC LIMIT $2`
	}
	rows, err := s.pool.Query(ctx, sql, int64(from), count)
	if err != nil {
		return nil, s.wrap("read all", err)
	}
	events, err := collectEvents(rows)
	if err != nil {
		return nil, s.wrap("read all", err)
	}
	return events, nil
}

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
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.events+`)`).Scan(&ok); err != nil {
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

// DeleteStream implements [cairn.Backend]: the stream's row is marked
// deleted and its versions so far hidden from stream reads; the events stay
// in the global log until Compact. The snapshot is removed.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return s.remove(ctx, "delete", stream, expected, false)
}

// TombstoneStream implements [cairn.Tombstoner].
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return s.remove(ctx, "tombstone", stream, expected, true)
}

// remove soft-deletes or tombstones stream in one transaction that holds
// the stream's row lock from the expected-version check to the commit, so
// that no append slips in between.
func (s *Store) remove(ctx context.Context, op, stream string, expected cairn.ExpectedVersion, hard bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for {
		again := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var st streamState
			err := tx.QueryRow(ctx, `SELECT version, before, deleted, tombstoned FROM `+s.streams+` WHERE id = $1 FOR UPDATE`, stream).
				Scan(&st.version, &st.before, &st.deleted, &st.tombstoned)
			exists := err == nil
			if errors.Is(err, pgx.ErrNoRows) {
				st.version, err = -1, nil
			}
			if err != nil {
				return err
			}
			if st.tombstoned {
				return cairn.Deleted(op, stream)
			}
			if err := expected.Check(stream, st.current()); err != nil {
				return err
			}
			switch {
			case hard && !exists:
				tag, err := tx.Exec(ctx, `INSERT INTO `+s.streams+` (id, tombstoned) VALUES ($1, true) ON CONFLICT (id) DO NOTHING`, stream)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 { // created meanwhile: check again
					again = true
					return errRetry
				}
			case hard:
				_, err = tx.Exec(ctx, `UPDATE `+s.streams+` SET tombstoned = true, deleted = false, before = greatest(before, version + 1) WHERE id = $1`, stream)
			case st.current() < 0:
				return cairn.NotFound(op, stream)
			default:
				_, err = tx.Exec(ctx, `UPDATE `+s.streams+` SET deleted = true, before = greatest(before, version + 1) WHERE id = $1`, stream)
			}
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `DELETE FROM `+s.snapshots+` WHERE stream = $1`, stream)
			return err
		})
		if again {
			continue
		}
		return s.wrap(op, err)
	}
}

// errRetry rolls back a transaction that must be run again.
var errRetry = errors.New("retry")

// TruncateStream implements [cairn.Truncater].
func (s *Store) TruncateStream(ctx context.Context, stream string, before int64) error {
	return s.updateStream(ctx, "truncate", stream,
		`UPDATE `+s.streams+` SET before = greatest(before, $2)
		WHERE id = $1 AND version >= 0 AND NOT deleted AND NOT tombstoned`, before)
}

// updateStream runs an UPDATE of an existing stream's row; when it matches
// no row, the stream's state gives the error.
func (s *Store) updateStream(ctx context.Context, op, stream, sql string, args ...any) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, sql, append([]any{stream}, args...)...)
	if err != nil {
		return s.wrap(op, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	_, err = s.streamState(ctx, op, stream)
	if err == nil { // it came to exist since the update
		return s.updateStream(ctx, op, stream, sql, args...)
	}
	return err
}

// Compact implements [cairn.Compacter]: it deletes the rows of events that
// truncation, deletion or a tombstone removed from their streams. Their
// positions stay unused; the positions of the other events do not change.
// The runs of deleted events go too; a run that keeps some of its events
// forgets its first event's id, as that event is gone. It does not VACUUM.
func (s *Store) Compact(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `WITH t AS (
			SELECT r.stream, r.version, r.position, r.count, s.before FROM `+s.runs+` r
			JOIN `+s.streams+` s ON s.id = r.stream AND r.version < s.before
		), gone AS (
			DELETE FROM `+s.events+` e USING t
			WHERE e.position >= t.position AND e.position < t.position + least(t.count, t.before - t.version)
		), whole AS (
			DELETE FROM `+s.runs+` r USING t
			WHERE r.stream = t.stream AND r.version = t.version AND t.version + t.count <= t.before
		)
		UPDATE `+s.runs+` r SET id = NULL FROM t
		WHERE r.stream = t.stream AND r.version = t.version AND t.version + t.count > t.before AND r.id IS NOT NULL`)
	return s.wrap("compact", err)
}

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

// ReadModelGet implements [cairn.ReadModelReader].
func (s *Store) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM `+s.readModel+` WHERE tbl = $1 AND key = $2`, table, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.wrap("read model get", err)
	}
	return v, true, nil
}

// ReadModelScan implements [cairn.ReadModelReader].
func (s *Store) ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]cairn.Entry, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM `+s.readModel+`
		WHERE tbl = $1 AND key >= $2 AND key > $3 AND starts_with(key, $2)
		ORDER BY key LIMIT $4`, table, prefix, after, limit)
	if err != nil {
		return nil, s.wrap("read model scan", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cairn.Entry, error) {
		var e cairn.Entry
		err := r.Scan(&e.Key, &e.Value)
		return e, err
	})
	if err != nil {
		return nil, s.wrap("read model scan", err)
	}
	return entries, nil
}
