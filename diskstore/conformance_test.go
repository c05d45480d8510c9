package diskstore_test

import (
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/storetest"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestConformance runs the conformance suite on a real directory, durable.
func TestConformance(t *testing.T) {
	t.Parallel() // the package's long tests share the machine's cores
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestConformanceMemFS runs it on pebble's in-memory filesystem, with small
// caches so that evicted stream heads are reloaded from the database.
func TestConformanceMemFS(t *testing.T) {
	t.Parallel()
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		db, err := diskstore.Open("db", diskstore.Options{FS: vfs.NewMem(), MaxCachedStreams: 1, MaxGroupEvents: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
