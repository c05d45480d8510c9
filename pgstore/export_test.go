package pgstore

import (
	"context"
	"testing"

	"github.com/cairndb/cairn"
)

// Hooks for the tests of package pgstore_test.

// MigratedTo returns an engine on a fresh schema migrated up to version to.
func MigratedTo(t *testing.T, to int) *Store {
	s, _ := migratedTo(t, to)
	return s
}

// Migrate applies the migrations the schema lacks.
func (s *Store) Migrate(ctx context.Context) error { return s.migrate(ctx) }

// AppendV4 appends reqs as one group with append_group as migrations 4
// and 5 define it.
func AppendV4(t *testing.T, s *Store, reqs ...cairn.AppendRequest) { appendV4(t, s, reqs...) }

// AppendV6 appends reqs as one group with append_group as migration 6
// defines it.
func AppendV6(t *testing.T, s *Store, reqs ...cairn.AppendRequest) { appendV6(t, s, reqs...) }

// SetBackfillBatch sets how many events the index backfill reads at a
// time, until t ends.
func SetBackfillBatch(t *testing.T, n int) {
	old := backfillBatch
	backfillBatch = n
	t.Cleanup(func() { backfillBatch = old })
}
