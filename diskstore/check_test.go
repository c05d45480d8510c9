package diskstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// checkOf checks the store in dir, failing the test if the check cannot
// run.
func checkOf(t *testing.T, dir string) *CheckReport {
	t.Helper()
	r, err := Check(context.Background(), dir, CheckOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("check %s: %v", dir, err)
	}
	for _, p := range r.Problems {
		t.Logf("problem: %s (index: %v)", p, p.Index)
	}
	for _, n := range r.Notes {
		t.Logf("note: %s", n)
	}
	return r
}

// frameAt is one frame of a test store's log.
type frameAt struct {
	seg         uint64
	off, length int64
	events      int64 // bytes of event records
	first, next uint64
}

// framesOf returns the frames of the store in dir, in order.
func framesOf(t *testing.T, dir string) []frameAt {
	t.Helper()
	lg, err := seglog.Open(vfs.Default, filepath.Join(dir, "log"), 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	var out []frameAt
	for _, seg := range lg.Segments() {
		size, err := lg.Size(seg)
		if err != nil {
			t.Fatal(err)
		}
		var buf []byte
		for off := int64(0); ; {
			frame, ok, intact, err := lg.InspectFrame(seg, off, size, buf)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || !intact {
				break
			}
			buf = frame
			fi, err := parseFrame(frame, seg, off)
			if err != nil {
				t.Fatal(err)
			}
			m, n := fi.marker, fi.events
			out = append(out, frameAt{seg: seg, off: off, length: int64(len(frame)), events: int64(len(seglog.FrameEvents(frame))), first: m.next - uint64(n), next: m.next})
			off += int64(len(frame))
		}
	}
	return out
}

// editIndex changes the index of the (closed) store in dir through pebble
// itself, as damage that keeps every checksum would.
func editIndex(t *testing.T, dir string, edit func(db *pebble.DB, b *pebble.Batch)) {
	t.Helper()
	d := &DB{opts: Options{}}
	d.opts.ensureDefaults()
	d.lg = d.opts.Logger
	db, err := pebble.Open(dir, d.pebbleOptions())
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewIndexedBatch()
	edit(db, b)
	if err := db.Apply(b, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(db.Flush(), db.Close()); err != nil {
		t.Fatal(err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// problemWith returns the first problem whose text holds every one of
// want, failing the test when there is none.
func problemWith(t *testing.T, r *CheckReport, want ...string) Problem {
	t.Helper()
	for _, p := range r.Problems {
		s := p.String()
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(s, w) }) {
			return p
		}
	}
	t.Fatalf("no problem reported says all of %q", want)
	return Problem{}
}

// readAllOf returns every event of the store in dir.
func readAllOf(t *testing.T, dir string) []cairn.Event {
	t.Helper()
	db, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.ReadAll(context.Background(), 0, 100000, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sameEvents(a, b []cairn.Event) bool {
	return slices.EqualFunc(a, b, func(x, y cairn.Event) bool {
		return x.ID == y.ID && x.StreamID == y.StreamID && x.Version == y.Version && x.Position == y.Position && bytes.Equal(x.Data, y.Data)
	})
}

// A sound store passes, whether closed cleanly, compacted, or not closed
// at all (its index lags its log).
func TestCheckPassesASoundStore(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		st := fillStore(t, dir, Options{NoSync: true}, 100)
		r := checkOf(t, dir)
		if !r.OK() || !r.Compared || r.Compacted || r.Lag != 0 {
			t.Fatalf("check of a sound store: ok %v, compared %v, compacted %v, lag %d", r.OK(), r.Compared, r.Compacted, r.Lag)
		}
		// 10 streams, and the records of the deletes.
		if r.Events != int64(len(st.events)) || r.Streams != 11 || r.Head != uint64(len(st.events)) {
			t.Fatalf("check counted %d events, %d streams, head %d; the store holds %d events of 11 streams", r.Events, r.Streams, r.Head, len(st.events))
		}
	})
	t.Run("compacted", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		fillStore(t, dir, Options{NoSync: true}, 6000)
		db, err := Open(dir, Options{NoSync: true})
		mustDo(t, err)
		mustDo(t, db.Compact(context.Background()))
		mustDo(t, db.Close())
		r := checkOf(t, dir)
		if !r.OK() || !r.Compacted || r.Compared {
			t.Fatalf("check of a compacted store: ok %v, compacted %v, compared %v", r.OK(), r.Compacted, r.Compared)
		}
	})
	t.Run("applied", func(t *testing.T) {
		// A copy of a replicated log (a cluster node's) holds the mark of
		// the last group applied, which check knows.
		dir := filepath.Join(t.TempDir(), "db")
		db, err := Open(dir, Options{NoSync: true})
		mustDo(t, err)
		for i, w := range []Write{
			&AppendWrite{Requests: []cairn.AppendRequest{{Stream: "s", Expected: cairn.Any, Events: []cairn.EventData{{ID: uuid.New(), Type: "E"}}}}},
			&AppendWrite{Requests: []cairn.AppendRequest{{Stream: "gone", Expected: cairn.Any, Events: []cairn.EventData{{ID: uuid.New(), Type: "E"}}}}},
			&DeleteWrite{Stream: "gone", Expected: cairn.Any},
			&PurgeWrite{},
		} {
			a, err := db.Apply(context.Background(), &Group{Mark: []byte{byte(i)}, Time: time.Now(), Writes: []Write{w}})
			mustDo(t, err)
			res, err := a.Wait()
			mustDo(t, err)
			mustDo(t, res.Outcomes[0].Err)
		}
		// Compacted, and the index flushed: check reads the mark from the
		// index, which it cannot compare with a replay of the log.
		mustDo(t, db.Reclaim(context.Background()))
		mustDo(t, db.Close())
		r := checkOf(t, dir)
		if !r.OK() || !r.Compacted || len(r.Notes) != 1 || strings.Contains(r.Notes[0], "does not know") {
			t.Fatalf("check of a store with an applied group: ok %v, notes %q", r.OK(), r.Notes)
		}
	})
	t.Run("not closed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		fillStore(t, dir, Options{NoSync: true}, 100)
		db, err := Open(dir, Options{NoSync: true})
		mustDo(t, err)
		for i := range 10 {
			_, err := db.Append(context.Background(), "late", cairn.Any, []cairn.EventData{{ID: uuid.New(), Type: "E", Data: []byte(fmt.Sprint(i))}})
			mustDo(t, err)
		}
		// A copy of the store as a crash would leave it: the index on
		// disk lacks the last appends, the log has them.
		crashed := filepath.Join(t.TempDir(), "crashed")
		copyTree(t, dir, crashed)
		mustDo(t, db.Close())
		r := checkOf(t, crashed)
		if !r.OK() || r.Lag != 10 {
			t.Fatalf("check of a store not closed: ok %v, lag %d frames, want 10", r.OK(), r.Lag)
		}
	})
}

// Check names each kind of damage — where it is, which stream and
// position — and says whether rebuilding the index repairs it; Repair
// rebuilds it when it does, and leaves the store as it is when it does
// not.
func TestCheckNamesDamageAndRepairRepairsTheIndex(t *testing.T) {
	cases := []struct {
		name string
		// damage damages the store in dir and returns what the report must
		// say of it.
		damage     func(t *testing.T, dir string, frames []frameAt) []string
		repairable bool
	}{
		{"a byte of an event in the log", func(t *testing.T, dir string, frames []frameAt) []string {
			f := frames[len(frames)/2]
			flip(t, filepath.Join(dir, "log", seglog.SegmentName(f.seg)), int(f.off+seglog.HeaderLen+f.events-10))
			return []string{segmentFile(f.seg), fmt.Sprint("offset ", f.off, ":"), "the frame's checksum fails", "1 of its events are damaged"}
		}, false},
		{"a byte of a frame's index writes", func(t *testing.T, dir string, frames []frameAt) []string {
			f := frames[len(frames)/3]
			flip(t, filepath.Join(dir, "log", seglog.SegmentName(f.seg)), int(f.off+f.length-30))
			return []string{segmentFile(f.seg), fmt.Sprint("offset ", f.off, ":"), "the damage is in the frame's index writes"}
		}, false},
		{"a run deleted", func(t *testing.T, dir string, _ []frameAt) []string {
			editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) { mustDo(t, b.Delete(runKey("s7", 3), nil)) })
			return []string{`index: stream "s7" version 3:`, "version 3 is in no run"}
		}, true},
		{"a locator deleted", func(t *testing.T, dir string, frames []frameAt) []string {
			f := frames[40]
			editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) { mustDo(t, b.Delete(locatorKey(f.first), nil)) })
			return []string{numbersAre("position", int64(f.first), int64(f.next)-1) + " in no locator"}
		}, true},
		{"a retry record deleted", func(t *testing.T, dir string, frames []frameAt) []string {
			e := readAllOf(t, dir)[frames[60].first] // the first event of an append
			editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) { mustDo(t, b.Delete(idKey(e.ID), nil)) })
			return []string{fmt.Sprintf("the retry record of the append (first event %s) is missing", e.ID)}
		}, true},
		{"a retry record that points at another event", func(t *testing.T, dir string, frames []frameAt) []string {
			stray := uuid.New()
			editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) {
				k := idKey(stray)
				mustDo(t, b.Set(k, appendUint(nil, k, frames[70].first), nil))
			})
			return []string{fmt.Sprintf("the retry record of event %s points at event", stray)}
		}, true},
		{"a stream's head: its last run deleted", func(t *testing.T, dir string, _ []frameAt) []string {
			var last []byte
			editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) {
				it, err := db.NewIter(runBounds("s9"))
				mustDo(t, err)
				if !it.Last() {
					t.Fatal("s9 has no run")
				}
				last = slices.Clone(it.Key())
				mustDo(t, it.Close())
				mustDo(t, b.Delete(last, nil))
			})
			return []string{`stream "s9"`, "the stream's head is wrong"}
		}, true},
		{"a stream's head: its state says tombstoned", func(t *testing.T, dir string, _ []frameAt) []string {
			editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) {
				k := metaKey("s8")
				mustDo(t, b.Set(k, encodeMeta(k, meta{flags: flagTombstoned}), nil))
			})
			return []string{`stream "s8"`, "the stream's state record differs from the log's: the index says tombstoned", "the log live"}
		}, true},
		{"a block of an index list deleted", func(t *testing.T, dir string, _ []frameAt) []string {
			deleteListBlock(t, dir, cairn.IndexKey{Kind: cairn.IndexType, Value: "E"}, 5)
			return []string{`the index list type "E" has no block of entries`}
		}, true},
		{"the marker", func(t *testing.T, dir string, _ []frameAt) []string {
			editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) {
				v := make([]byte, markerLen)
				putMarker(v, marker{seg: 1, end: 12345, next: 7})
				mustDo(t, b.Set(markerKey, v, nil))
			})
			return []string{"the marker (segment 1, end 12345, next position 7)", "is not the end of a frame of the log"}
		}, true},
		{"the index's MANIFEST", func(t *testing.T, dir string, _ []frameAt) []string {
			indexDamages[0].damage(t, dir)
			return []string{"index: the index cannot be opened"}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "db")
			st := fillStore(t, dir, Options{NoSync: true}, 100)
			want := tc.damage(t, dir, framesOf(t, dir))
			r := checkOf(t, dir)
			if r.OK() {
				t.Fatal("check of a damaged store found nothing")
			}
			p := problemWith(t, r, want...)
			if p.Index != tc.repairable {
				t.Errorf("problem %q: index %v, want %v", p, p.Index, tc.repairable)
			}
			if r.Repairable() != tc.repairable {
				t.Errorf("repairable %v, want %v; advice %q", r.Repairable(), tc.repairable, r.Advice())
			}
			logBefore := readDir(t, filepath.Join(dir, "log"))
			before, after, err := Repair(ctx, dir, CheckOptions{TempDir: t.TempDir()})
			if before == nil || before.OK() {
				t.Fatalf("repair's check found nothing: %v", err)
			}
			if !sameFiles(readDir(t, filepath.Join(dir, "log")), logBefore) {
				t.Fatal("repair changed the log")
			}
			if !tc.repairable {
				if !errors.Is(err, ErrNotRepairable) || after != nil {
					t.Fatalf("repair of damage a rebuild does not repair: %v, want ErrNotRepairable", err)
				}
				return
			}
			if err != nil || after == nil || !after.OK() {
				t.Fatalf("repair: %v (after: %+v)", err, after)
			}
			if again := checkOf(t, dir); !again.OK() {
				t.Fatal("the repaired store fails its check")
			}
			if got := readAllOf(t, dir); !sameEvents(got, st.events) {
				t.Fatalf("the repaired store holds %d events, the store %d (or they differ)", len(got), len(st.events))
			}
			entries, err := os.ReadDir(dir)
			mustDo(t, err)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "index.before-repair") {
					t.Fatalf("repair left %s", e.Name())
				}
			}
		})
	}
}

// A compacted store's index cannot be rebuilt from its log: check says so
// of damage a rebuild would otherwise repair, and repair refuses.
func TestCheckOfACompactedStoreAdvisesARestore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	fillStore(t, dir, Options{NoSync: true}, 6000)
	db, err := Open(dir, Options{NoSync: true})
	mustDo(t, err)
	mustDo(t, db.Compact(ctx))
	mustDo(t, db.Close())
	editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) { mustDo(t, b.Delete(runKey("s7", 3), nil)) })
	r := checkOf(t, dir)
	problemWith(t, r, `stream "s7"`, "version 3 is in no run")
	if r.Repairable() || !strings.Contains(r.Advice(), "compacted") {
		t.Fatalf("check of a damaged compacted store: repairable %v, advice %q", r.Repairable(), r.Advice())
	}
	if _, _, err := Repair(ctx, dir, CheckOptions{TempDir: t.TempDir()}); !errors.Is(err, ErrNotRepairable) {
		t.Fatalf("repair of a compacted store: %v, want ErrNotRepairable", err)
	}
}

// Check refuses a store another process holds for writing (a server), and
// a directory that holds no store.
func TestCheckRefusesAStoreInUseAndNoStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	fillStore(t, dir, Options{NoSync: true}, 10)
	child := exec.Command(os.Args[0], "-test.run=^TestHoldStore$")
	child.Env = append(os.Environ(), "DISKSTORE_TEST_HOLD="+dir)
	stdin, err := child.StdinPipe()
	mustDo(t, err)
	stdout, err := child.StdoutPipe()
	mustDo(t, err)
	mustDo(t, child.Start())
	defer child.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	if _, err := Check(context.Background(), dir, CheckOptions{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("check of a store in use: %v", err)
	}
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	mustDo(t, child.Wait())
	if r := checkOf(t, dir); !r.OK() {
		t.Fatal("check once the writer is gone found problems")
	}
	if _, err := Check(context.Background(), filepath.Join(t.TempDir(), "none"), CheckOptions{}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("check of no store: %v, want ErrNoStore", err)
	}
}

// copyTree copies the files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	mustDo(t, err)
}

// A store copied without its lock file (which only says that no process
// holds it) is checked as it is.
func TestCheckWithoutALockFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	fillStore(t, dir, Options{NoSync: true}, 10)
	mustDo(t, os.Remove(filepath.Join(dir, "LOCK")))
	if r := checkOf(t, dir); !r.OK() || !r.Compared {
		t.Fatalf("check of a store without its lock file: ok %v, compared %v", r.OK(), r.Compared)
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("check made a lock file: %v", err)
	}
}

// deleteListBlock deletes the block of the list key that holds entry n.
func deleteListBlock(t *testing.T, dir string, key cairn.IndexKey, n uint64) {
	t.Helper()
	editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) {
		it, err := db.NewIter(nil)
		mustDo(t, err)
		defer it.Close()
		if !it.SeekLT(appendBlockKey(nil, key, n+1)) {
			t.Fatalf("no block of %v", key)
		}
		mustDo(t, b.Delete(slices.Clone(it.Key()), nil))
	})
}

// The lists of a compacted store are checked for form and numbering.
func TestCheckOfACompactedStoresIndexLists(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	fillStore(t, dir, Options{NoSync: true}, 6000)
	db, err := Open(dir, Options{NoSync: true})
	mustDo(t, err)
	mustDo(t, db.Compact(ctx))
	mustDo(t, db.Close())
	if r := checkOf(t, dir); !r.OK() || r.ListBlocks == 0 {
		t.Fatalf("check of a compacted store: ok %v, %d list blocks", r.OK(), r.ListBlocks)
	}
	deleteListBlock(t, dir, cairn.IndexKey{Kind: cairn.IndexType, Value: "E"}, 5)
	r := checkOf(t, dir)
	problemWith(t, r, `the index list type "E" has no block of entries`)
	if r.Repairable() {
		t.Fatal("a compacted store's index is repairable")
	}
}

// A store of format 2 is checked as it is (its lists are built by the
// next open for writing), and once converted its lists are what a rebuild
// of its log files.
func TestCheckOfAFormat2Store(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	copyTree(t, filepath.Join("testdata", "v2-uncompacted", "store"), dir)
	r := checkOf(t, dir)
	if !r.OK() || !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "on-disk format 2") }) {
		t.Fatalf("check of a store of format 2: ok %v, notes %q", r.OK(), r.Notes)
	}
	db, err := Open(dir, Options{})
	mustDo(t, err)
	mustDo(t, db.Close())
	if r := checkOf(t, dir); !r.OK() || !r.Compared || r.ListBlocks == 0 {
		t.Fatalf("check of a converted store: ok %v, compared %v, %d list blocks", r.OK(), r.Compared, r.ListBlocks)
	}
}
