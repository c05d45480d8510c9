package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/diskstore/backup"
	"github.com/google/uuid"
)

// small segments and memtables, so that a test store has many segments
// and index tables, and flushes while it is written.
var storeOpts = diskstore.Options{NoSync: true, SegmentBytes: 32 << 10, MemTableBytes: 1 << 20}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, dir string) *diskstore.DB {
	t.Helper()
	db, err := diskstore.Open(dir, storeOpts)
	must(t, err)
	return db
}

// acked is an append that was acknowledged.
type acked struct {
	stream string
	res    cairn.AppendResult
	events []cairn.EventData
}

// writers appends to their own streams until stopped, within a budget of
// appends in all that the test raises, recording every append
// acknowledged.
type writers struct {
	mu    sync.Mutex
	acked []acked
	stop  chan struct{}
	wg    sync.WaitGroup
	err   atomic.Pointer[error]
	// finished is set once every writer has returned.
	finished atomic.Bool
	// issued counts the appends begun, which budget bounds.
	issued, budget atomic.Int64
}

// allow lets the writers go on until n appends in all.
func (w *writers) allow(n int) { w.budget.Store(int64(n)) }

func startWriters(store *cairn.Store, n, dataBytes int) *writers {
	w := &writers{stop: make(chan struct{})}
	for i := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-w.stop:
					return
				default:
				}
				if w.issued.Add(1) > w.budget.Load() {
					w.issued.Add(-1)
					j--
					time.Sleep(time.Millisecond)
					continue
				}
				stream := fmt.Sprintf("w%d-%d", i, j%7)
				var events []cairn.EventData
				for k := range 1 + j%3 {
					events = append(events, cairn.EventData{ID: uuid.Must(uuid.NewV7()), Type: "E", Data: bytes.Repeat([]byte{byte('a' + (j+k)%26)}, dataBytes)})
				}
				res, err := store.Append(context.Background(), stream, cairn.Any, events...)
				if err != nil {
					w.err.Store(&err)
					return
				}
				w.mu.Lock()
				w.acked = append(w.acked, acked{stream, res, events})
				w.mu.Unlock()
			}
		}()
	}
	go func() { w.wg.Wait(); w.finished.Store(true) }()
	return w
}

// ackedSoFar returns the appends acknowledged so far.
func (w *writers) ackedSoFar() []acked {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]acked(nil), w.acked...)
}

// waitFor waits until n appends are acknowledged.
func (w *writers) waitFor(t *testing.T, n int) {
	t.Helper()
	for len(w.ackedSoFar()) < n {
		if p := w.err.Load(); p != nil {
			t.Fatal(*p)
		}
		if w.finished.Load() {
			t.Fatalf("the writers stopped after %d appends, before %d", len(w.ackedSoFar()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *writers) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	if p := w.err.Load(); p != nil {
		t.Fatal(*p)
	}
}

// holdsEvery checks that the store in dir holds every append of want,
// each event at its version and position, with its id and data.
func holdsEvery(t *testing.T, dir string, want []acked) {
	t.Helper()
	ctx := context.Background()
	db, err := diskstore.Open(dir, diskstore.Options{ReadOnly: true})
	must(t, err)
	defer db.Close()
	for _, a := range want {
		first := a.res.Version - int64(len(a.events)) + 1
		got, err := db.ReadStream(ctx, a.stream, first, len(a.events), cairn.Forward)
		if err != nil {
			t.Fatalf("%s from version %d: %v", a.stream, first, err)
		}
		if len(got) != len(a.events) {
			t.Fatalf("%s from version %d: %d events, want %d", a.stream, first, len(got), len(a.events))
		}
		for i, e := range got {
			pos := a.res.Position - uint64(len(a.events)-1-i)
			if e.ID != a.events[i].ID || e.Position != pos || !bytes.Equal(e.Data, a.events[i].Data) {
				t.Fatalf("%s version %d: id %s position %d, want id %s position %d", a.stream, e.Version, e.ID, e.Position, a.events[i].ID, pos)
			}
		}
	}
}

// checked runs the offline check of the store in dir, which must pass.
func checked(t *testing.T, dir string) *diskstore.CheckReport {
	t.Helper()
	r, err := diskstore.Check(context.Background(), dir, diskstore.CheckOptions{TempDir: t.TempDir()})
	must(t, err)
	for _, p := range r.Problems {
		t.Errorf("check %s: %s", dir, p)
	}
	if t.Failed() {
		t.FailNow()
	}
	return r
}

// backupInto backs the store up into the set in dest.
func backupInto(t *testing.T, db *diskstore.DB, dest string, opts backup.Options) *backup.Result {
	t.Helper()
	set, err := backup.OpenSet(dest)
	must(t, err)
	defer set.Close()
	b, err := db.BeginBackup(context.Background())
	must(t, err)
	defer b.Close()
	res, err := set.Write(context.Background(), b, opts)
	must(t, err)
	return res
}

// restored restores from into a new directory, and returns it.
func restored(t *testing.T, from string, opts backup.RestoreOptions) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	_, err := backup.Restore(context.Background(), from, dir, opts)
	must(t, err)
	return dir
}

// A backup taken while writers go on holds every append acknowledged
// before it began; restored, the store holds them too, passes the
// offline check, and takes appends. A second backup into the same set
// copies only what the first lacks, and is as complete; each generation
// stands alone once the other is deleted.
func TestBackupWhileWritingAndIncremental(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts backup.Options
	}{{"links", backup.Options{}}, {"copies", backup.Options{Copy: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			base := t.TempDir()
			db := openStore(t, filepath.Join(base, "store"))
			store := cairn.NewStore(db, cairn.Options{})
			defer store.Close()
			w := startWriters(store, 4, 300)
			dest := filepath.Join(base, "backups")

			// The writers go on while each backup runs.
			w.allow(300)
			w.waitFor(t, 300)
			w.allow(600)
			before1 := w.ackedSoFar()
			res1 := backupInto(t, db, dest, mode.opts)
			w.waitFor(t, 600)
			w.allow(900)
			before2 := w.ackedSoFar()
			res2 := backupInto(t, db, dest, mode.opts)
			w.allow(950)
			w.waitFor(t, 950)
			w.halt(t)

			if res1.Manifest.Generation != 1 || res2.Manifest.Generation != 2 || res2.Previous != res1.Dir {
				t.Fatalf("generations %d and %d, the second reusing %q", res1.Manifest.Generation, res2.Manifest.Generation, res2.Previous)
			}
			if res1.Reused.Files != 0 || res2.Reused.Files == 0 {
				t.Fatalf("reused %d files in the first backup, %d in the second", res1.Reused.Files, res2.Reused.Files)
			}
			if res2.Copied.Bytes+res2.Linked.Bytes+res2.Reused.Bytes+res2.Resumed.Bytes != res2.Manifest.Bytes() {
				t.Fatalf("the second backup copied %d bytes, linked %d, reused %d, resumed %d, of %d", res2.Copied.Bytes, res2.Linked.Bytes, res2.Reused.Bytes, res2.Resumed.Bytes, res2.Manifest.Bytes())
			}
			// Of the log's segments the first backup copied, the second
			// copies none again: it reuses them, or (for those the log
			// had not gone on from) resumes them where the first left
			// off; with links, it links them from the store.
			for _, f := range res1.Manifest.Files {
				if !strings.HasPrefix(f.Name, "log/0") {
					continue
				}
				var g backup.File
				for _, h := range res2.Manifest.Files {
					if h.Name == f.Name {
						g = h
					}
				}
				if mode.opts.Copy && !g.Reused && g.Prefix != f.Size {
					t.Errorf("the second backup copied %s again (%+v), which the first holds (%+v)", f.Name, g, f)
				}
			}
			if mode.opts.Copy && res1.Linked.Files != 0 {
				t.Fatalf("with Copy the backup linked %d files", res1.Linked.Files)
			}
			if !mode.opts.Copy && res1.Linked.Files == 0 {
				t.Fatal("on the store's filesystem the backup linked nothing")
			}
			last := before2[len(before2)-1].res.Position
			if res2.Manifest.Head <= last {
				t.Fatalf("the second backup's head %d is not after the last append acknowledged before it (%d)", res2.Manifest.Head, last)
			}
			t.Logf("first: copied %+v linked %+v; second: copied %+v linked %+v reused %+v resumed %+v", res1.Copied, res1.Linked, res2.Copied, res2.Linked, res2.Reused, res2.Resumed)

			// Each generation is a store that can be checked where it is.
			checked(t, res1.Dir)
			checked(t, res2.Dir)

			for _, tc := range []struct {
				from string
				want []acked
			}{{res1.Dir, before1}, {dest, before2}} {
				dir := restored(t, tc.from, backup.RestoreOptions{Copy: mode.opts.Copy})
				holdsEvery(t, dir, tc.want)
				r := checked(t, dir)
				if r.Lag != 0 {
					t.Fatalf("the restored store's index lags its log by %d frames: the restore did not open it", r.Lag)
				}
				// It serves: appends go on after the last version.
				rdb, err := diskstore.Open(dir, diskstore.Options{})
				must(t, err)
				rs := cairn.NewStore(rdb, cairn.Options{})
				// It recognises retries of the appends it holds, those
				// acknowledged last included (their retry records were
				// in memory when the backup began).
				for _, a := range tc.want[max(0, len(tc.want)-100):] {
					if res, err := rs.Append(context.Background(), a.stream, cairn.Any, a.events...); err != nil || res != a.res {
						t.Fatalf("retry of an append to %s in the restored store = %+v, %v; want %+v", a.stream, res, err, a.res)
					}
				}
				a := tc.want[len(tc.want)-1]
				v, err := rs.StreamVersion(context.Background(), a.stream)
				must(t, err)
				if _, err := rs.Append(context.Background(), a.stream, cairn.Exact(v), cairn.EventData{Type: "After"}); err != nil {
					t.Fatalf("append to the restored store: %v", err)
				}
				must(t, rs.Close())
				checked(t, dir)
			}

			// Generations stand alone: with the first gone, the second
			// restores.
			must(t, os.RemoveAll(res1.Dir))
			holdsEvery(t, restored(t, dest, backup.RestoreOptions{}), before2)
		})
	}
}

// Compaction of the store never takes from a backup what its index
// needs: it waits while a backup copies, and punches no hole in a
// segment the backup links.
func TestCompactionSparesALinkedBackup(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	db := openStore(t, filepath.Join(base, "store"))
	store := cairn.NewStore(db, cairn.Options{})
	defer store.Close()
	// Events of 6000 bytes: a deleted stream's events span whole blocks,
	// which compaction frees.
	for i := range 60 {
		_, err := store.Append(ctx, fmt.Sprint("s", i%4), cairn.Any, cairn.EventData{Type: "E", Data: bytes.Repeat([]byte{'x'}, 6000)})
		must(t, err)
	}
	must(t, store.DeleteStream(ctx, "s1", cairn.Any))
	must(t, store.TruncateStream(ctx, "s2", 10))
	res := backupInto(t, db, filepath.Join(base, "backups"), backup.Options{})
	if res.Linked.Files == 0 {
		t.Fatal("the backup linked nothing")
	}
	must(t, store.Compact(ctx))
	// The backup's index still holds the deleted and truncated events:
	// every one must still be in its log.
	checked(t, res.Dir)
	dir := restored(t, res.Dir, backup.RestoreOptions{})
	checked(t, dir)
	rdb, err := diskstore.Open(dir, diskstore.Options{})
	must(t, err)
	defer rdb.Close()
	all, err := rdb.ReadAll(ctx, 0, 1000, cairn.Forward)
	must(t, err)
	if len(all) != 61 {
		t.Fatalf("the restored store holds %d events, want the 61 of the backup (60 and the delete's record)", len(all))
	}
}

// A backup set holds one store's backups; a restore goes only into a new
// or empty directory; a set is written by one backup at a time; what an
// interrupted backup left is removed by the next.
func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	a := openStore(t, filepath.Join(base, "a"))
	defer a.Close()
	b := openStore(t, filepath.Join(base, "b"))
	defer b.Close()
	for _, db := range []*diskstore.DB{a, b} {
		store := cairn.NewStore(db, cairn.Options{})
		_, err := store.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"})
		must(t, err)
	}
	dest := filepath.Join(base, "backups")
	res := backupInto(t, a, dest, backup.Options{})

	t.Run("another store", func(t *testing.T) {
		set, err := backup.OpenSet(dest)
		must(t, err)
		defer set.Close()
		bk, err := b.BeginBackup(ctx)
		must(t, err)
		defer bk.Close()
		if _, err := set.Write(ctx, bk, backup.Options{}); err == nil || !strings.Contains(err.Error(), "holds backups of another store") {
			t.Fatalf("backup of another store into the set: %v", err)
		}
		if gens, _ := backup.List(dest); len(gens) != 1 {
			t.Fatalf("the set holds %d generations", len(gens))
		}
	})
	t.Run("locked", func(t *testing.T) {
		set, err := backup.OpenSet(dest)
		must(t, err)
		defer set.Close()
		if _, err := backup.OpenSet(dest); err == nil || !strings.Contains(err.Error(), "another backup is writing to this set") {
			t.Fatalf("a second backup into a set being written: %v", err)
		}
	})
	t.Run("not a set", func(t *testing.T) {
		other := filepath.Join(base, "photos")
		must(t, os.MkdirAll(other, 0o755))
		must(t, os.WriteFile(filepath.Join(other, "cat.jpg"), []byte("meow"), 0o644))
		if _, err := backup.OpenSet(other); err == nil || !strings.Contains(err.Error(), "holds files that are not backups (cat.jpg)") {
			t.Fatalf("a backup into a directory of other files: %v", err)
		}
		if entries, _ := os.ReadDir(other); len(entries) != 1 {
			t.Fatalf("the refused backup wrote into the directory: %v", entries)
		}
		if _, err := backup.OpenSet(res.Dir); err == nil || !strings.Contains(err.Error(), "is one generation of a backup set") {
			t.Fatalf("a backup into a generation: %v", err)
		}
	})
	t.Run("restore into a non-empty directory", func(t *testing.T) {
		dir := filepath.Join(base, "full")
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o644))
		if _, err := backup.Restore(ctx, dest, dir, backup.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "is not empty") {
			t.Fatalf("restore into a non-empty directory: %v", err)
		}
		entries, err := os.ReadDir(dir)
		must(t, err)
		if len(entries) != 1 {
			t.Fatalf("the refused restore changed the directory: %v", entries)
		}
		// An empty directory is fine.
		empty := filepath.Join(base, "empty")
		must(t, os.MkdirAll(empty, 0o755))
		_, err = backup.Restore(ctx, dest, empty, backup.RestoreOptions{})
		must(t, err)
	})
	t.Run("a generation is not opened for writing", func(t *testing.T) {
		if db, err := diskstore.Open(res.Dir, diskstore.Options{}); err == nil || !strings.Contains(err.Error(), "is a backup") {
			if err == nil {
				db.Close()
			}
			t.Fatalf("open of a generation for writing: %v", err)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		set, err := backup.OpenSet(dest)
		must(t, err)
		bk, err := a.BeginBackup(ctx)
		must(t, err)
		cctx, cancel := context.WithCancel(ctx)
		_, err = set.Write(cctx, bk, backup.Options{Copy: true, Progress: func(files, bytes int64) { cancel() }})
		must(t, bk.Close())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled backup: %v", err)
		}
		// A backup stopped harder leaves its partial generation.
		leftover := filepath.Join(dest, "000009-20250101T000000Z.partial")
		must(t, os.MkdirAll(filepath.Join(leftover, "log"), 0o755))
		must(t, set.Close())
		if gens, _ := backup.List(dest); len(gens) != 1 {
			t.Fatalf("the set holds %d generations after an interrupted backup", len(gens))
		}
		next := backupInto(t, a, dest, backup.Options{})
		if next.Manifest.Generation != 2 {
			t.Fatalf("the backup after an interrupted one is generation %d, want 2", next.Manifest.Generation)
		}
		if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the next backup left what the interrupted one wrote: %v", err)
		}
	})
}

// Keep removes the oldest generations once a backup is complete.
func TestBackupKeep(t *testing.T) {
	base := t.TempDir()
	db := openStore(t, filepath.Join(base, "store"))
	store := cairn.NewStore(db, cairn.Options{})
	defer store.Close()
	dest := filepath.Join(base, "backups")
	var last *backup.Result
	for i := range 4 {
		_, err := store.Append(context.Background(), "s", cairn.Any, cairn.EventData{Type: "E", Data: []byte(fmt.Sprint(i))})
		must(t, err)
		last = backupInto(t, db, dest, backup.Options{Keep: 2})
	}
	gens, err := backup.List(dest)
	must(t, err)
	if len(gens) != 2 || gens[0].Manifest.Generation != 3 || gens[1].Dir != last.Dir {
		t.Fatalf("with Keep 2, the set holds %d generations: %+v", len(gens), gens)
	}
}

// A backup streamed from a server (Send) and received into a set
// (Receive) is the same backup: complete, and incremental.
func TestBackupStreamed(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	db := openStore(t, filepath.Join(base, "store"))
	store := cairn.NewStore(db, cairn.Options{})
	defer store.Close()
	w := startWriters(store, 2, 300)
	dest := filepath.Join(base, "backups")
	stream := func() (*backup.Result, int64) {
		set, err := backup.OpenSet(dest)
		must(t, err)
		defer set.Close()
		prev, err := set.PreviousManifest()
		must(t, err)
		bk, err := db.BeginBackup(ctx)
		must(t, err)
		defer bk.Close()
		chunks := make(chan backup.Chunk, 4)
		var sent int64
		go func() {
			defer close(chunks)
			err := backup.Send(ctx, bk, prev, func(c backup.Chunk) error {
				sent += int64(len(c.Data))
				chunks <- c
				return nil
			})
			if err != nil {
				chunks <- backup.Chunk{File: "error: " + err.Error()}
			}
		}()
		res, err := set.Receive(ctx, func() (backup.Chunk, error) {
			c, ok := <-chunks
			if !ok {
				return backup.Chunk{}, io.EOF
			}
			return c, nil
		}, backup.Options{})
		for range chunks {
		}
		must(t, err)
		return res, sent
	}
	w.allow(300)
	w.waitFor(t, 300)
	w.allow(500)
	before1 := w.ackedSoFar()
	res1, sent1 := stream()
	w.waitFor(t, 500)
	w.allow(700)
	before2 := w.ackedSoFar()
	res2, sent2 := stream()
	w.halt(t)
	if res2.Reused.Files == 0 || res2.Resumed.Files == 0 || sent2 > res2.Manifest.Bytes()-res2.Reused.Bytes-res2.Resumed.Bytes {
		t.Fatalf("the second streamed backup reused %d files, resumed %d, and received %d bytes of %d", res2.Reused.Files, res2.Resumed.Files, sent2, res2.Manifest.Bytes())
	}
	t.Logf("sent %d bytes, then %d (reused %d, resumed %d)", sent1, sent2, res2.Reused.Bytes, res2.Resumed.Bytes)
	checked(t, res1.Dir)
	checked(t, res2.Dir)
	holdsEvery(t, restored(t, res1.Dir, backup.RestoreOptions{}), before1)
	dir := restored(t, dest, backup.RestoreOptions{})
	holdsEvery(t, dir, before2)
	checked(t, dir)
}
