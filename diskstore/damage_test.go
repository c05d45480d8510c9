package diskstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// seededIDs returns a generator of random event IDs that repeats for a
// seed, so that the files a test damages are the same from run to run.
func seededIDs(seed uint64) func() uuid.UUID {
	rng := rand.New(rand.NewPCG(seed, 1))
	return func() uuid.UUID {
		var id uuid.UUID
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		id[6] = id[6]&0x0f | 0x40
		id[8] = id[8]&0x3f | 0x80
		return id
	}
}

// storeState is what a test store holds, to compare after a recovery.
type storeState struct {
	events []cairn.Event
	retry  cairn.AppendRequest // an append to repeat
	res    cairn.AppendResult  // its result
}

// fillStore writes appends to a few streams of a new store in dir, deletes
// one stream, and closes the store (which flushes the index: its tables
// and MANIFEST hold it all).
func fillStore(t *testing.T, dir string, opts Options, data int) storeState {
	t.Helper()
	ctx := context.Background()
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	newID := seededIDs(1)
	var st storeState
	for i := range 200 {
		req := cairn.AppendRequest{Stream: fmt.Sprint("s", i/20), Expected: cairn.Any}
		for j := range 1 + i%3 {
			req.Events = append(req.Events, cairn.EventData{ID: newID(), Type: "E", Data: bytes.Repeat([]byte{byte('a' + j)}, data)})
		}
		res, err := db.Append(ctx, req.Stream, req.Expected, req.Events)
		if err != nil {
			t.Fatal(err)
		}
		if i == 150 {
			st.retry, st.res = req, res
		}
	}
	for i := range 5 {
		if err := db.DeleteStream(ctx, fmt.Sprint("s", i), cairn.Any); err != nil {
			t.Fatal(err)
		}
	}
	if st.events, err = db.ReadAll(ctx, 0, 10000, cairn.Forward); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

// indexFiles returns the paths of the index's files in dir whose names
// match.
func indexFiles(t *testing.T, dir string, match func(name string) bool) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != "log" && match(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no index file to damage in %s", dir)
	}
	return out
}

// flip inverts the byte at off, or at -off from the end when off is
// negative.
func flip(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(b)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var indexDamages = []struct {
	name   string
	damage func(t *testing.T, dir string)
}{
	// A byte of the MANIFEST's first record, which names the tables.
	{"manifest", func(t *testing.T, dir string) {
		for _, p := range indexFiles(t, dir, func(n string) bool { return strings.HasPrefix(n, "MANIFEST-") }) {
			flip(t, p, 10)
		}
	}},
	// A byte of a table's first data block.
	{"table", func(t *testing.T, dir string) {
		for _, p := range indexFiles(t, dir, func(n string) bool { return strings.HasSuffix(n, ".sst") }) {
			flip(t, p, 100)
		}
	}},
	{"missing-table", func(t *testing.T, dir string) {
		for _, p := range indexFiles(t, dir, func(n string) bool { return strings.HasSuffix(n, ".sst") }) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

// openDamaged opens the store in dir, whose index is damaged, and checks
// the failure: one error, on one line, that matches cairn.ErrCorrupt and
// ErrIndexDamaged and contains want, and nothing logged at WARN or above
// while opening (the error says it all), nor pebble's detail carrier.
func openDamaged(t *testing.T, dir string, opts Options, want string) {
	t.Helper()
	var logged syncBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := Open(dir, opts)
	if err == nil {
		_ = db.Close()
		t.Fatal("open of a store with a damaged index succeeded")
	}
	if !errors.Is(err, cairn.ErrCorrupt) || !errors.Is(err, ErrIndexDamaged) {
		t.Errorf("open of a store with a damaged index: %v; want an error matching cairn.ErrCorrupt and ErrIndexDamaged", err)
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "the index is damaged") || !strings.Contains(msg, want) {
		t.Errorf("open of a store with a damaged index: %q; want one line that says the index is damaged and %q", msg, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "detail carrier") {
			t.Errorf("logged while opening a store with a damaged index: %s", line)
		}
	}
}

// TestDamagedIndex: a damaged index (its MANIFEST, a table, a table gone)
// makes Open fail with one clear error that names the recovery; following
// it (moving the index's files aside) opens the store with every event,
// deletion and retry record, rebuilt from the log.
func TestDamagedIndex(t *testing.T) {
	ctx := context.Background()
	for _, tc := range indexDamages {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			st := fillStore(t, dir, Options{NoSync: true}, 100)
			tc.damage(t, dir)
			recovery := fmt.Sprintf("move every entry of %s except the directory log elsewhere", dir)
			openDamaged(t, dir, Options{NoSync: true}, recovery)

			// The recovery, as the error says.
			aside := dir + ".damaged-index"
			if err := os.Mkdir(aside, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, p := range indexFiles(t, dir, func(string) bool { return true }) {
				if err := os.Rename(p, filepath.Join(aside, filepath.Base(p))); err != nil {
					t.Fatal(err)
				}
			}
			db, err := Open(dir, Options{NoSync: true})
			if err != nil {
				t.Fatalf("open after moving the damaged index aside: %v", err)
			}
			defer db.Close()
			got, err := db.ReadAll(ctx, 0, 10000, cairn.Forward)
			if err != nil {
				t.Fatal(err)
			}
			same := func(a, b cairn.Event) bool {
				return a.ID == b.ID && a.StreamID == b.StreamID && a.Version == b.Version && a.Position == b.Position && bytes.Equal(a.Data, b.Data)
			}
			if !slices.EqualFunc(got, st.events, same) {
				t.Fatalf("after the rebuild the log holds %d events, before the damage %d (or they differ)", len(got), len(st.events))
			}
			if _, err := db.StreamVersion(ctx, "s0"); !errors.Is(err, cairn.ErrStreamNotFound) {
				t.Fatalf("a deleted stream after the rebuild: %v, want not found", err)
			}
			res, err := db.Append(ctx, st.retry.Stream, st.retry.Expected, st.retry.Events)
			if err != nil || res != st.res {
				t.Fatalf("retry after the rebuild = %+v, %v; want the first result %+v", res, err, st.res)
			}
		})
	}
}

// TestNoRebuildFromCompactedLog: compaction frees the log's bytes that no
// live event uses, frames' headers and index writes included, so a
// compacted log cannot rebuild the index. With the index gone, Open must
// refuse, saying so, and leave the log as it was, rather than take the
// first freed bytes for the end of the log and overwrite what follows. A
// damaged index of a compacted store is reported without the advice to
// rebuild it.
func TestNoRebuildFromCompactedLog(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	// Events of 6000 bytes: the deleted streams' frames span whole
	// blocks, which compaction frees (where the filesystem punches holes).
	st := fillStore(t, dir, Options{NoSync: true}, 6000)
	db, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "log")
	logBefore := readDir(t, logDir)

	t.Run("damaged", func(t *testing.T) {
		indexDamages[1].damage(t, dir)
		openDamaged(t, dir, Options{NoSync: true}, "was compacted, so the index cannot be rebuilt from it")
	})
	t.Run("removed", func(t *testing.T) {
		for _, p := range indexFiles(t, dir, func(string) bool { return true }) {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
		db, err := Open(dir, Options{NoSync: true})
		if err == nil {
			got, _ := db.ReadAll(ctx, 0, 10000, cairn.Forward)
			_ = db.Close()
			t.Fatalf("open of a compacted log without its index succeeded, with %d events of %d", len(got), len(st.events))
		}
		if !errors.Is(err, cairn.ErrCorrupt) || !strings.Contains(err.Error(), "was compacted, so the index cannot be rebuilt from it") {
			t.Fatalf("open of a compacted log without its index: %v; want cairn.ErrCorrupt saying the log was compacted", err)
		}
		if after := readDir(t, logDir); !sameFiles(after, logBefore) {
			t.Fatal("the refused open changed the log")
		}
	})
}

// readDir returns the contents of the files in dir, by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
