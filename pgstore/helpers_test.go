package pgstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
)

// openSchema opens an engine on schema and closes it when the test ends.
func openSchema(t testing.TB, schema string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	opts.Schema = schema
	s, err := pgstore.Open(context.Background(), pgtest.URL(t), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, cairn.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore opens an engine on a fresh schema.
func newStore(t testing.TB) *pgstore.Store {
	t.Helper()
	return openSchema(t, pgtest.Schema(t, "cairn_test"), pgstore.Options{})
}
