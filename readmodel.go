package cairn

import (
	"context"
	"fmt"
	"iter"
)

// ReadModelGet returns the value a projection stored under table and key.
func (s *Store) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := ValidateTable(table); err != nil {
		return nil, false, err
	}
	if err := ValidateKey(key); err != nil {
		return nil, false, err
	}
	r, ok := s.b.(ReadModelReader)
	if !ok {
		return nil, false, fmt.Errorf("read model: %w", ErrNotSupported)
	}
	return r.ReadModelGet(ctx, table, key)
}

// ReadModel returns an iterator over the entries of table whose keys start
// with prefix, in key order.
func (s *Store) ReadModel(ctx context.Context, table, prefix string) iter.Seq2[Entry, error] {
	if err := ValidateScan(table, prefix, ""); err != nil {
		return failedSeq[Entry](err)
	}
	r, ok := s.b.(ReadModelReader)
	if !ok {
		return failedSeq[Entry](fmt.Errorf("read model: %w", ErrNotSupported))
	}
	return paginate(ctx, func(last *Entry) ([]Entry, bool, error) {
		after := ""
		if last != nil {
			after = last.Key
		}
		return countPage[Entry](s.opts.ReadBatch)(r.ReadModelScan(ctx, table, prefix, after, s.opts.ReadBatch))
	})
}
