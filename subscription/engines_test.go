package subscription_test

import (
	"context"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
)

// engine opens a fresh store.
type engine struct {
	name string
	open func(t testing.TB) fixture
}

type fixture struct {
	store *cairn.Store
	// reopen closes the store it is given and opens a new one over the
	// same data, as a restart of the process would.
	reopen func(t testing.TB, old *cairn.Store) *cairn.Store
	// node, when not nil, opens another Store over the same data, as
	// another process (another application node) would.
	node func(t testing.TB) *cairn.Store
}

func engines() []engine {
	return []engine{
		{name: "memory", open: openMemory},
		{name: "disk", open: openDisk},
		{name: "postgres", open: openPostgres},
	}
}

// openMemory returns a Store over a memstore. Memory has no restart: reopen
// leaves the old Store open (closing it would close the engine) and returns
// a new Store, with its own change signal, over the same engine.
func openMemory(t testing.TB) fixture {
	b := memstore.New()
	t.Cleanup(func() { b.Close() })
	return fixture{
		store: cairn.NewStore(b, cairn.Options{}),
		reopen: func(testing.TB, *cairn.Store) *cairn.Store {
			return cairn.NewStore(b, cairn.Options{})
		},
	}
}

func openDisk(t testing.TB) fixture {
	dir := t.TempDir()
	open := func(t testing.TB) *cairn.Store {
		// NoSync: a clean close and reopen does not need fsync, and the
		// tests run faster on a shared machine.
		db, err := diskstore.Open(dir, diskstore.Options{NoSync: true})
		if err != nil {
			t.Fatalf("open diskstore: %v", err)
		}
		s := cairn.NewStore(db, cairn.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
	return fixture{
		store: open(t),
		reopen: func(t testing.TB, old *cairn.Store) *cairn.Store {
			if err := old.Close(); err != nil {
				t.Fatalf("close diskstore: %v", err)
			}
			return open(t)
		},
	}
}

// openPostgres uses the database in CAIRN_TEST_POSTGRES, in a fresh schema
// dropped at the end; it skips without one, unless CI=true.
func openPostgres(t testing.TB) fixture {
	url, schema := pgtest.URL(t), pgtest.Schema(t, "cairn_sub_test")
	open := func(t testing.TB) *cairn.Store {
		pg, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatalf("open pgstore: %v", err)
		}
		s := cairn.NewStore(pg, cairn.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
	return fixture{
		store: open(t),
		reopen: func(t testing.TB, old *cairn.Store) *cairn.Store {
			if err := old.Close(); err != nil {
				t.Fatalf("close pgstore: %v", err)
			}
			return open(t)
		},
		node: open,
	}
}
