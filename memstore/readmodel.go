package memstore

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/cairndb/cairn"
)

// ReadModelGet implements [cairn.ReadModelReader].
func (s *Store) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, false, err
	}
	if err := cairn.ValidateTable(table); err != nil {
		return nil, false, err
	}
	if err := cairn.ValidateKey(key); err != nil {
		return nil, false, err
	}
	v, ok := s.tables[table][key]
	return slices.Clone(v), ok, nil
}

// ReadModelScan implements [cairn.ReadModelReader].
func (s *Store) ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]cairn.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	if err := cairn.ValidateScan(table, prefix, after); err != nil {
		return nil, err
	}
	var keys []string
	for k := range s.tables[table] {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]cairn.Entry, len(keys))
	for i, k := range keys {
		out[i] = cairn.Entry{Key: k, Value: slices.Clone(s.tables[table][k])}
	}
	return out, nil
}
