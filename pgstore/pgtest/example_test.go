package pgtest_test

import (
	"context"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
)

// A test that runs on PostgreSQL, in a schema of its own.
func ExampleSchema() {
	_ = func(t *testing.T) {
		db, err := pgstore.Open(context.Background(), pgtest.URL(t), pgstore.Options{Schema: pgtest.Schema(t, "myapp_test")})
		if err != nil {
			t.Fatal(err)
		}
		store := cairn.NewStore(db, cairn.Options{})
		t.Cleanup(func() { store.Close() })
	}
}
