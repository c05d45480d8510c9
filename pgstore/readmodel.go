package pgstore

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5"
)

// ReadModelGet implements [cairn.ReadModelReader].
func (s *Store) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	if err := validateEntry(table, key); err != nil {
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
	if err := cairn.ValidateScan(table, prefix, after); err != nil {
		return nil, err
	}
	// A key longer than cairn.MaxKeyBytes, written before keys were
	// checked, is skipped: no Get could read it, and a scan could not
	// resume after it. (PostgreSQL never took a NUL or invalid UTF-8, and
	// the empty key sorts before every after.)
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM `+s.readModel+`
		WHERE tbl = $1 AND key >= $2 AND key > $3 AND starts_with(key, $2) AND octet_length(key) <= $5
		ORDER BY key LIMIT $4`, table, prefix, after, limit, cairn.MaxKeyBytes)
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
