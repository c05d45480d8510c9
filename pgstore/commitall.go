package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5"
)

// CommitAll implements [cairn.TxCommitter]: the events are appended and the
// projections run in the same SQL transaction, which commits only when they
// all succeed. The projections receive the events with their positions, so
// the head lock is taken before they run and held until the commit.
func (s *Store) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	reqs := []cairn.AppendRequest{req}
	var err error
	for attempt := 1; ; attempt++ {
		if err := s.check(ctx); err != nil {
			return cairn.AppendResult{}, err
		}
		var res cairn.AppendResult
		res, err = s.commitAllOnce(ctx, reqs, projections)
		var pe projectionError
		if errors.As(err, &pe) {
			return cairn.AppendResult{}, pe.err
		}
		if err == nil || errors.Is(err, cairn.ErrWrongExpectedVersion) || errors.Is(err, cairn.ErrStreamDeleted) ||
			errors.Is(err, cairn.ErrDuplicateEvent) || errors.Is(err, cairn.ErrConditionFailed) {
			return res, err
		}
		if attempt == maxAttempts || !retryable(err) || ctx.Err() != nil || s.closed.Load() {
			break
		}
		s.log.Warn("pgstore: commit failed, trying again", "attempt", attempt, "err", err)
	}
	return cairn.AppendResult{}, s.wrap("commit", err)
}

// endAndSettle rolls tx back, which wrote nothing, and writes the durable
// mark (see settle).
func (s *Store) endAndSettle(ctx context.Context, tx pgx.Tx) error {
	if err := tx.Rollback(ctx); err != nil {
		return err
	}
	_, err := s.settle(ctx, s.pool)
	return err
}

// projectionError carries an error returned by a projection, which is never
// retried.
type projectionError struct{ err error }

func (e projectionError) Error() string { return e.err.Error() }

func (s *Store) commitAllOnce(ctx context.Context, reqs []cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return cairn.AppendResult{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	p, err := s.lockAndCheck(ctx, tx, reqs, false)
	if err != nil {
		return cairn.AppendResult{}, err
	}
	if p.errs[0] != nil || p.retry[0] {
		// Nothing is written. The outcome may rest on appends that are
		// not durable yet: make them so before answering.
		if err := s.endAndSettle(ctx, tx); err != nil {
			return cairn.AppendResult{}, err
		}
		return p.results[0], p.errs[0]
	}
	if _, err := tx.Exec(ctx, s.updateStreamsSQL(), p.streams, p.lasts); err != nil {
		return cairn.AppendResult{}, err
	}
	var first int64
	err = tx.QueryRow(ctx, s.insertSQL(), s.insertArgs(p)...).Scan(&first, nil, nil)
	if err != nil {
		return cairn.AppendResult{}, err
	}
	if len(p.conds.reqs) > 0 {
		_, err := tx.Exec(ctx, s.checkSQL(), p.checkArgs()...)
		if failed, cerr := conditionErrors(err, p.errs); failed {
			if cerr != nil {
				return cairn.AppendResult{}, cerr
			}
			if err := s.endAndSettle(ctx, tx); err != nil {
				return cairn.AppendResult{}, err
			}
			return cairn.AppendResult{}, p.errs[0]
		}
		if err != nil {
			return cairn.AppendResult{}, err
		}
	}
	if _, err := tx.Exec(ctx, s.indexSQL(), p.indexArgs()...); err != nil {
		return cairn.AppendResult{}, err
	}
	req := reqs[0]
	events := make([]cairn.Event, len(req.Events))
	for i, e := range req.Events {
		e.Tags = slices.Clone(e.Tags)
		events[i] = cairn.Event{
			EventData: e,
			StreamID:  req.Stream,
			Version:   p.runs.version[0] + int64(i),
			Position:  uint64(first) + uint64(i),
			Created:   p.created,
		}
	}
	ptx := &pgTx{tx: tx, table: s.readModel}
	for _, proj := range projections {
		if err := proj(ctx, ptx, events); err != nil {
			return cairn.AppendResult{}, projectionError{err}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return cairn.AppendResult{}, err
	}
	p.place(reqs, first)
	return p.results[0], nil
}

// pgTx is the [cairn.Tx] handed to projections: it reads and writes the
// read_model table inside the commit's SQL transaction.
type pgTx struct {
	tx    pgx.Tx
	table string
}

// SQLTx returns the SQL transaction behind a [cairn.Tx] that this engine
// handed to a projection, so that the projection can write its own tables
// in the transaction of the commit. It reports false for a Tx of another
// engine. The transaction must not be committed or rolled back by the
// projection.
func SQLTx(tx cairn.Tx) (pgx.Tx, bool) {
	t, ok := tx.(*pgTx)
	if !ok {
		return nil, false
	}
	return t.tx, true
}

// validateEntry refuses a table that cairn.ValidateTable refuses and a key
// that cairn.ValidateKey refuses, before any SQL runs: a failed statement
// would abort the commit's transaction.
func validateEntry(table, key string) error {
	if err := cairn.ValidateTable(table); err != nil {
		return err
	}
	return cairn.ValidateKey(key)
}

func (t *pgTx) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := validateEntry(table, key); err != nil {
		return nil, false, err
	}
	var v []byte
	err := t.tx.QueryRow(ctx, `SELECT value FROM `+t.table+` WHERE tbl = $1 AND key = $2`, table, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: read model get: %w", err)
	}
	return v, true, nil
}

func (t *pgTx) Put(ctx context.Context, table, key string, value []byte) error {
	if err := validateEntry(table, key); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO `+t.table+` (tbl, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value`, table, key, value)
	if err != nil {
		return fmt.Errorf("pgstore: read model put: %w", err)
	}
	return nil
}

func (t *pgTx) Delete(ctx context.Context, table, key string) error {
	if err := validateEntry(table, key); err != nil {
		return err
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM `+t.table+` WHERE tbl = $1 AND key = $2`, table, key); err != nil {
		return fmt.Errorf("pgstore: read model delete: %w", err)
	}
	return nil
}
