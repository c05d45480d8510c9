package diskstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// syncCounter counts the syncs of write-ahead log files.
func syncCounter(fs vfs.FS) (vfs.FS, *atomic.Int64) {
	n := new(atomic.Int64)
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				n.Add(1)
			}
		}
		return nil
	})), n
}

// TestAppendWaitsForSync: an append returns only after a sync of the log
// that followed it.
func TestAppendWaitsForSync(t *testing.T) {
	ctx := context.Background()
	fs, syncs := syncCounter(vfs.Default)
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	for i := range 20 {
		before := syncs.Load()
		if _, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
		if syncs.Load() == before {
			t.Fatalf("append %d returned without a sync of the log", i)
		}
	}
}

// TestGroupCommit: concurrent appends share syncs of the log.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	fs, syncs := syncCounter(vfs.Default)
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	const writers, appends = 32, 20
	before := syncs.Load()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range appends {
				if _, err := s.Append(ctx, fmt.Sprint("w", w), cairn.Any, cairn.EventData{Type: "E"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := syncs.Load() - before
	t.Logf("%d appends, %d syncs", writers*appends, n)
	if n >= writers*appends {
		t.Fatalf("%d appends took %d syncs: no group commit", writers*appends, n)
	}
}
