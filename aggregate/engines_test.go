package aggregate_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
)

// engine opens a fresh, empty store on one of cairn's engines for a test,
// and closes it when the test ends. peer opens another Store over the same
// data, as a second application node would: a separate connection pool on
// PostgreSQL, the same Store where the engine allows one process only.
type engine struct {
	name string
	open func(t testing.TB) (store *cairn.Store, peer func() *cairn.Store)
}

// engines returns the engines the aggregate tests run on.
func engines() []engine {
	return []engine{
		{"memory", func(t testing.TB) (*cairn.Store, func() *cairn.Store) {
			s := openMemory(t)
			return s, func() *cairn.Store { return s }
		}},
		{"disk", func(t testing.TB) (*cairn.Store, func() *cairn.Store) {
			db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s := cairn.NewStore(db, cairn.Options{})
			t.Cleanup(func() { s.Close() })
			// One process owns a directory: both nodes share the Store.
			return s, func() *cairn.Store { return s }
		}},
		{"postgres", openPostgres},
	}
}

func openMemory(t testing.TB) *cairn.Store {
	s := memstore.Open()
	t.Cleanup(func() { s.Close() })
	return s
}

// openPostgres opens the PostgreSQL engine of CAIRN_TEST_POSTGRES in a new
// schema, dropped when the test ends. Without CAIRN_TEST_POSTGRES the test is
// skipped, unless CI=true.
func openPostgres(t testing.TB) (*cairn.Store, func() *cairn.Store) {
	url, schema := pgtest.URL(t), pgtest.Schema(t, "cairn_aggregate")
	open := func() *cairn.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		s := cairn.NewStore(b, cairn.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open
}
