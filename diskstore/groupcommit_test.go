package diskstore_test

import (
	"context"
	"errors"
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

// TestCommitStats: the counts of the group commit follow the appends, and
// the syncs they count are the syncs of the log.
func TestCommitStats(t *testing.T) {
	ctx := context.Background()
	fs, syncs := syncCounter(vfs.Default)
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	stats := func() cairn.CommitStats {
		t.Helper()
		st, err := s.CommitStats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// One writer: a group and a sync per append.
	for i := range 10 {
		before, fsBefore := stats(), syncs.Load()
		if _, err := s.Append(ctx, "one", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
		after := stats()
		if w, g, n := after.Writes-before.Writes, after.Groups-before.Groups, after.Syncs-before.Syncs; w != 1 || g != 1 || n != uint64(syncs.Load()-fsBefore) || n == 0 {
			t.Fatalf("append %d: %d writes, %d groups, %d syncs counted, %d syncs of the log", i, w, g, n, syncs.Load()-fsBefore)
		}
		if after.SyncTime <= before.SyncTime {
			t.Fatalf("append %d: sync time %v, then %v", i, before.SyncTime, after.SyncTime)
		}
	}

	// A refused append writes nothing: no group.
	before := stats()
	if _, err := s.Append(ctx, "one", cairn.NoStream, cairn.EventData{Type: "E"}); !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("append to a stream that exists with NoStream: %v", err)
	}
	if after := stats(); after.Groups != before.Groups || after.Writes != before.Writes {
		t.Fatalf("a refused append alone: %+v, then %+v", before, after)
	}

	// Many writers: every append counted once, in fewer groups, each
	// sync covering at least one group.
	const writers, appends = 32, 20
	before, fsBefore := stats(), syncs.Load()
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
	after := stats()
	w, g, n := after.Writes-before.Writes, after.Groups-before.Groups, after.Syncs-before.Syncs
	t.Logf("%d writes in %d groups, %d syncs", w, g, n)
	if w != writers*appends || g > w || n > g || n != uint64(syncs.Load()-fsBefore) {
		t.Fatalf("%d appends: %d writes, %d groups, %d syncs counted, %d syncs of the log", writers*appends, w, g, n, syncs.Load()-fsBefore)
	}
}

// TestCommitStatsNoSync: without syncs, groups are counted and syncs are
// not.
func TestCommitStatsNoSync(t *testing.T) {
	ctx := context.Background()
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	for range 5 {
		if _, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	st := db.CommitStats()
	if st.Writes != 5 || st.Groups != 5 || st.Syncs != 0 || st.SyncTime != 0 {
		t.Fatalf("5 appends without syncs: %+v", st)
	}
}
