package diskstore

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// testdata/v2-uncompacted/store is a store written by the last build of
// on-disk format 2 (before the index of categories, types and tags): tagged
// events, correlation ids, a batch, a system stream and a stream with no
// category, never compacted, the last two appends in the log only (as a
// crash leaves them, for Open to replay).

// openV2 opens a copy of the format 2 store on a new in-memory filesystem,
// with its messages logged to logged.
func openV2(t *testing.T, logged *syncBuffer) (*DB, vfs.FS) {
	t.Helper()
	fs := vfs.NewMem()
	src := filepath.Join("testdata", "v2-uncompacted", "store")
	err := filepath.WalkDir(src, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := fs.PathJoin("db", filepath.ToSlash(rel))
		if de.IsDir() {
			return fs.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := fs.Create(to, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		return errors.Join(err, f.Sync(), f.Close())
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open("db", Options{FS: fs, Logger: slog.New(slog.NewTextHandler(logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return db, fs
}

// logLists returns every list that the events of the log are filed under,
// as ReadIndex reads it, and checks that each files exactly the events
// cairn.IndexKeys files under it, numbered from 0, all found.
func logLists(t *testing.T, db *DB) map[cairn.IndexKey][]cairn.IndexedEvent {
	t.Helper()
	ctx := context.Background()
	all, err := db.ReadAll(ctx, 0, 1<<20, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	want := map[cairn.IndexKey][]uint64{}
	for _, e := range all {
		for _, k := range cairn.IndexKeys(nil, e.StreamID, e.Version, &e.EventData) {
			want[k] = append(want[k], e.Position)
		}
	}
	got := map[cairn.IndexKey][]cairn.IndexedEvent{}
	for k, positions := range want {
		entries, err := db.ReadIndex(ctx, k, 0, 1<<20, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		var have []uint64
		for i, e := range entries {
			if e.Number != int64(i) || !e.Found || e.Event.Position != e.Position {
				t.Fatalf("list %v: entry %d is %+v", k, i, e)
			}
			have = append(have, e.Position)
		}
		if !slices.Equal(have, positions) {
			t.Fatalf("list %v holds %v, want %v", k, have, positions)
		}
		got[k] = entries
	}
	if len(want) < 10 {
		t.Fatalf("the log files its events under %d lists only", len(want))
	}
	return got
}

// sameLists checks that two readings of the lists agree entry by entry.
func sameLists(t *testing.T, got, want map[cairn.IndexKey][]cairn.IndexedEvent) {
	t.Helper()
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			t.Fatalf("list %v: %d entries, want %d", k, len(g), len(w))
		}
		for i := range w {
			if g[i].Number != w[i].Number || g[i].Position != w[i].Position || g[i].Event.ID != w[i].Event.ID {
				t.Fatalf("list %v: entry %d is %+v, want %+v", k, i, g[i], w[i])
			}
		}
	}
}

// TestFormat2Converted: Open files every event of a store of format 2 in
// the index, once (the next Open does not do it again), the entries of new
// appends follow, and an index rebuilt from the log (which holds frames of
// both formats) is the same.
func TestFormat2Converted(t *testing.T) {
	ctx := context.Background()
	var logged syncBuffer
	db, fs := openV2(t, &logged)
	if !strings.Contains(logged.String(), "building the index") {
		t.Fatalf("Open of a store of format 2 did not say it builds the index: %q", logged.String())
	}
	logLists(t, db)
	// New appends: their entries follow.
	s := cairn.NewStore(db, cairn.Options{})
	placed := cairn.IndexKey{Kind: cairn.IndexType, Value: "Placed"}
	before, err := db.ReadIndex(ctx, placed, cairn.StreamEnd, 1, cairn.Backward)
	if err != nil || len(before) != 1 {
		t.Fatalf("last Placed entry: %v, %v", before, err)
	}
	res, err := s.Append(ctx, "order-9", cairn.NoStream, cairn.EventData{Type: "Placed", Data: []byte("{}"), Tags: []string{"customer:1"}})
	if err != nil {
		t.Fatal(err)
	}
	last, err := db.ReadIndex(ctx, placed, cairn.StreamEnd, 1, cairn.Backward)
	if err != nil || len(last) != 1 || last[0].Number != before[0].Number+1 || last[0].Position != res.Position {
		t.Fatalf("the new Placed entry: %+v, %v; want number %d at position %d", last, err, before[0].Number+1, res.Position)
	}
	want := logLists(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	logged.Reset()
	db, err = Open("db", Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logged.String(), "building the index") {
		t.Fatalf("the second Open built the index again: %q", logged.String())
	}
	sameLists(t, logLists(t, db), want)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The index rebuilt from the log: the frames of format 2 have no
	// blocks, the replay files their events; those after hold theirs.
	names, err := fs.List("db")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n != "log" {
			if err := fs.Remove(fs.PathJoin("db", n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	db, err = Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sameLists(t, logLists(t, db), want)
}

// TestFormat2ConversionInterrupted: a conversion that did not finish (the
// format record still says 2, blocks of any kind left in the index) is
// done again from the start at the next Open; a read-only Open refuses the
// store until then, saying so, with an error matching ErrNeedsRecovery.
func TestFormat2ConversionInterrupted(t *testing.T) {
	var logged syncBuffer
	db, fs := openV2(t, &logged)
	want := logLists(t, db)
	// Back to format 2, with blocks a conversion would not write: an
	// extra one for Placed, and one of a list no event is filed under.
	placed := cairn.IndexKey{Kind: cairn.IndexType, Value: "Placed"}
	stray := cairn.IndexKey{Kind: cairn.IndexTag, Value: "stray"}
	for _, k := range []cairn.IndexKey{placed, stray} {
		key := appendBlockKey(nil, k, 1)
		if err := db.pdb.Set(key, appendBlock(nil, key, 1, []entryRun{{pos: 1, count: 1, off: 16, bytes: 40}}), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.pdb.Set(formatKey, formatValue(formatNoIndex), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	_, err := Open("db", Options{FS: fs, ReadOnly: true})
	if !errors.Is(err, ErrNeedsRecovery) || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("read-only open of a store of format 2: %v, want ErrNeedsRecovery saying why", err)
	}

	db, err = Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sameLists(t, logLists(t, db), want)
	if got, err := db.ReadIndex(context.Background(), stray, 0, 10, cairn.Forward); err != nil || len(got) != 0 {
		t.Fatalf("a block the interrupted conversion left: %+v, %v", got, err)
	}
}
