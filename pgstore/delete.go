package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5"
)

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
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.snapshots+` WHERE stream = $1`, stream); err != nil {
				return err
			}
			// The record of the delete, in the same transaction
			// (cairn.Deletion).
			rec, err := cairn.NewDeletionRecord(cairn.Deletion{Stream: stream, Hard: hard, Version: st.current()}, time.Now())
			if err != nil {
				return err
			}
			return s.appendInTx(ctx, tx, cairn.AppendRequest{Stream: cairn.DeletionsStream, Expected: cairn.Any, Events: []cairn.EventData{rec}})
		})
		if again {
			continue
		}
		if errors.Is(err, cairn.ErrWrongExpectedVersion) || errors.Is(err, cairn.ErrStreamNotFound) || errors.Is(err, cairn.ErrStreamDeleted) {
			// Refused on the stream's row, which an append not durable
			// yet may have written: make it durable before answering.
			if _, serr := s.settle(ctx, s.pool); serr != nil {
				return s.wrap(op, serr)
			}
		}
		return s.wrap(op, err)
	}
}

// appendInTx appends req inside tx, as the commit of [Store.CommitAll]
// does: its stream's row is locked after the rows tx holds (the deleted
// stream's), and the head row last, the order every append takes them in.
func (s *Store) appendInTx(ctx context.Context, tx pgx.Tx, req cairn.AppendRequest) error {
	reqs := []cairn.AppendRequest{req}
	p, err := s.lockAndCheck(ctx, tx, reqs, false)
	if err != nil {
		return err
	}
	if p.errs[0] != nil {
		return p.errs[0]
	}
	if p.retry[0] {
		return fmt.Errorf("pgstore: the event %s in %q is recorded already", req.Events[0].ID, req.Stream)
	}
	if _, err := tx.Exec(ctx, s.updateStreamsSQL(), p.streams, p.lasts); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, s.insertSQL(), s.insertArgs(p)...).Scan(nil, nil, nil); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, s.indexSQL(), p.indexArgs()...)
	return err
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

// Compact implements [cairn.Compacter]: it deletes the events that
// truncation, deletion or a tombstone removed from their streams: the
// chunks of such events only, and the leading events of a chunk that keeps
// later ones, which then forgets its append's first event id as that event
// is gone. The positions of deleted events stay unused; the positions of
// the other events do not change. It does not VACUUM.
func (s *Store) Compact(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `WITH t AS (
			SELECT c.position, c.version + c.count <= s.before AS whole, s.before - c.version AS k
			FROM `+s.chunks+` c JOIN `+s.streams+` s ON s.id = c.stream AND c.version < s.before
		), gone AS (
			DELETE FROM `+s.chunks+` c USING t WHERE c.position = t.position AND t.whole
		)
		UPDATE `+s.chunks+` c SET position = c.position + t.k, version = c.version + t.k, count = c.count - t.k,
			first_id = NULL, ids = c.ids[t.k + 1:], types = c.types[t.k + 1:], ctypes = c.ctypes[t.k + 1:],
			data = c.data[t.k + 1:], metadata = c.metadata[t.k + 1:], tags = c.tags[t.k + 1:]
		FROM t WHERE c.position = t.position AND NOT t.whole`)
	return s.wrap("compact", err)
}
