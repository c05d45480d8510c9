package diskstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// countRuns counts the runs in the index of the store in dir (closed).
func countRuns(t *testing.T, dir string) int {
	t.Helper()
	d := &DB{}
	d.opts.ensureDefaults()
	d.lg = d.opts.Logger
	po := d.pebbleOptions()
	po.ReadOnly = true
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	it, err := pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRun}, UpperBound: []byte{prefixRun + 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return n
}

// appended is what a test knows of an append that was acknowledged.
type appended struct {
	stream string
	events []cairn.EventData
	res    cairn.AppendResult
}

// verifyStreams reads every stream forward and backward, whole and from
// every version, and checks that each read returns the events appended.
func verifyStreams(t *testing.T, db *DB, appends []appended) {
	t.Helper()
	ctx := context.Background()
	want := map[string][]uuid.UUID{}
	for _, a := range appends {
		for _, e := range a.events {
			want[a.stream] = append(want[a.stream], e.ID)
		}
	}
	for stream, ids := range want {
		for from := range ids {
			got, err := db.ReadStream(ctx, stream, int64(from), len(ids), cairn.Forward)
			if err != nil {
				t.Fatalf("read %s forward from %d: %v", stream, from, err)
			}
			if len(got) != len(ids)-from {
				t.Fatalf("read %s forward from %d: %d events, want %d", stream, from, len(got), len(ids)-from)
			}
			for i, e := range got {
				if e.Version != int64(from+i) || e.ID != ids[from+i] {
					t.Fatalf("read %s forward from %d: event %d is version %d (%s), want %d (%s)", stream, from, i, e.Version, e.ID, from+i, ids[from+i])
				}
			}
			got, err = db.ReadStream(ctx, stream, int64(from), len(ids), cairn.Backward)
			if err != nil {
				t.Fatalf("read %s backward from %d: %v", stream, from, err)
			}
			if len(got) != from+1 {
				t.Fatalf("read %s backward from %d: %d events, want %d", stream, from, len(got), from+1)
			}
			for i, e := range got {
				if e.Version != int64(from-i) || e.ID != ids[from-i] {
					t.Fatalf("read %s backward from %d: event %d is version %d, want %d", stream, from, i, e.Version, from-i)
				}
			}
		}
		if v, err := db.StreamVersion(ctx, stream); err != nil || v != int64(len(ids)-1) {
			t.Fatalf("version of %s = %d, %v; want %d", stream, v, err, len(ids)-1)
		}
	}
}

// appendSome appends n appends of one to three events, spread over streams.
func appendSome(t *testing.T, db *DB, rng *rand.Rand, streams, n int) []appended {
	t.Helper()
	var out []appended
	for range n {
		a := appended{stream: fmt.Sprint("s-", rng.IntN(streams))}
		for range 1 + rng.IntN(3) {
			a.events = append(a.events, cairn.EventData{ID: uuid.New(), Type: "E", Data: []byte(`{}`)})
		}
		var err error
		if a.res, err = db.Append(context.Background(), a.stream, cairn.Any, a.events); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestRunsAcrossHandOffs reads streams whose runs are partly in pebble and
// partly in memory, in one generation or several, while the committer
// hands them off and the ingester ingests them: readers of a view always
// see every run up to its position, and a reopened store reads the same.
func TestRunsAcrossHandOffs(t *testing.T) {
	defer func(n int) { maxPendingRecords = n }(maxPendingRecords)
	maxPendingRecords = 97
	dir := t.TempDir()
	db, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	const streams = 12
	var (
		mu   sync.Mutex
		ids  = map[string][]uuid.UUID{} // acknowledged events, by version
		all  []appended
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	// On every way out, the readers stop before the store closes.
	open := true
	defer func() {
		stop.Store(true)
		wg.Wait()
		if open {
			db.Close()
		}
	}()
	errs := make(chan error, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := rand.New(rand.NewPCG(uint64(r), 9))
			for !stop.Load() {
				stream := fmt.Sprint("s-", rr.IntN(streams))
				mu.Lock()
				known := append([]uuid.UUID(nil), ids[stream]...)
				mu.Unlock()
				if len(known) == 0 {
					continue
				}
				from := rr.IntN(len(known))
				dir := cairn.Forward
				if rr.IntN(2) == 0 {
					dir = cairn.Backward
				}
				got, err := db.ReadStream(ctx, stream, int64(from), 1<<20, dir)
				if err != nil {
					errs <- fmt.Errorf("read %s from %d: %w", stream, from, err)
					return
				}
				// Every event acknowledged before the read is in it, at
				// its version.
				n := len(known) - from
				if dir == cairn.Backward {
					n = from + 1
				}
				if len(got) < n {
					errs <- fmt.Errorf("read %s %v from %d: %d events, want at least %d", stream, dir, from, len(got), n)
					return
				}
				for i := range n {
					v := from + i
					if dir == cairn.Backward {
						v = from - i
					}
					if got[i].Version != int64(v) || got[i].ID != known[v] {
						errs <- fmt.Errorf("read %s %v from %d: event %d is version %d, want %d", stream, dir, from, i, got[i].Version, v)
						return
					}
				}
			}
		}()
	}
	for range 1500 {
		a := appendSome(t, db, rng, streams, 1)[0]
		mu.Lock()
		for _, e := range a.events {
			ids[a.stream] = append(ids[a.stream], e.ID)
		}
		all = append(all, a)
		mu.Unlock()
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	verifyStreams(t, db, all)
	open = false
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countRuns(t, dir); n != len(all) {
		t.Fatalf("the index holds %d runs after Close, want %d", n, len(all))
	}
	db, err = Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	verifyStreams(t, db, all)
}

// TestRunsMissingFromTheIndex strips a closed store's index of its ID mark,
// its retry records and its runs: the index then holds the runs of no
// frame, and Open takes them all from the log, read-only or not, and the
// check reads the index as Open does. Stripped of its runs alone, the
// store fails the check: its ID mark says the index holds them.
func TestRunsMissingFromTheIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	all := appendSome(t, db, rand.New(rand.NewPCG(5, 6)), 9, 300)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	check := func() *CheckReport {
		t.Helper()
		rep, err := Check(ctx, dir, CheckOptions{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	runBounds := func(db *pebble.DB, b *pebble.Batch) {
		mustDo(t, b.DeleteRange([]byte{prefixRun}, []byte{prefixRun + 1}, nil))
	}

	// The runs alone: the check finds them missing.
	copyDir := t.TempDir()
	copyTree(t, dir, copyDir)
	editIndex(t, copyDir, runBounds)
	rep, err := Check(ctx, copyDir, CheckOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("the check passed a store whose index lacks the runs its ID mark covers")
	}

	editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) {
		runBounds(db, b)
		mustDo(t, b.Delete(idMarkKey, nil))
		mustDo(t, b.DeleteRange([]byte{prefixID}, []byte{prefixID + 1}, nil))
	})
	if n := countRuns(t, dir); n != 0 {
		t.Fatalf("%d runs left", n)
	}
	if rep := check(); !rep.OK() || !rep.Compared {
		t.Fatalf("check: ok %v, compared %v: %v", rep.OK(), rep.Compared, rep.Problems)
	}
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open without runs: %v", err)
	}
	verifyStreams(t, ro, all)
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	verifyStreams(t, db, all)
	for _, a := range all {
		if res, err := db.Append(ctx, a.stream, cairn.Any, a.events); err != nil || res != a.res {
			t.Fatalf("retry of an append to %s = %+v, %v; want %+v", a.stream, res, err, a.res)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countRuns(t, dir); n != len(all) {
		t.Fatalf("the index holds %d runs after a writable open, want %d", n, len(all))
	}
	if rep := check(); !rep.OK() || !rep.Compared {
		t.Fatalf("check after a writable open: ok %v, compared %v: %v", rep.OK(), rep.Compared, rep.Problems)
	}
}

// TestIngestBetweenPurgeSteps appends between the steps of a compaction,
// enough for the runs in memory to be handed off and ingested while the
// memtable holds the runs a purge step rewrote and removed: the memtable is
// flushed by the engine first, never by pebble for an ingest that overlaps
// it (with groups in it that are not durable yet), and every read after
// the compaction and after a reopen is right.
func TestIngestBetweenPurgeSteps(t *testing.T) {
	defer func(n, r int, h func() error) { maxPendingRecords, purgeRuns, purgeStepped = n, r, h }(maxPendingRecords, purgeRuns, purgeStepped)
	maxPendingRecords, purgeRuns = 20, 3
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var all []appended
	add := func(stream string, n int) {
		for range n {
			a := appended{stream: stream, events: []cairn.EventData{{ID: uuid.New(), Type: "E"}}}
			if a.res, err = db.Append(ctx, stream, cairn.Any, a.events); err != nil {
				t.Fatal(err)
			}
			all = append(all, a)
		}
	}
	add("a", 10)
	add("b", 40)
	add("c", 10)
	if err := db.TruncateStream(ctx, "b", 31); err != nil {
		t.Fatal(err)
	}
	steps := 0
	purgeStepped = func() error {
		steps++
		add("a", 15)
		add("c", 15)
		return nil
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if steps < 3 {
		t.Fatalf("%d purge steps: the test needs several", steps)
	}
	if flushed, sealed := db.flushed.Load(), db.sealed.Load(); flushed > sealed {
		t.Fatalf("pebble flushed %d memtables, the engine set aside %d", flushed, sealed)
	}
	var live []appended
	for _, a := range all {
		if a.stream != "b" || a.res.Version >= 31 {
			live = append(live, a)
		}
	}
	check := func(db *DB) {
		t.Helper()
		for _, s := range []string{"a", "c"} {
			var ours []appended
			for _, a := range live {
				if a.stream == s {
					ours = append(ours, a)
				}
			}
			verifyStreams(t, db, ours)
		}
		got, err := db.ReadStream(ctx, "b", 0, 100, cairn.Forward)
		if err != nil || len(got) != 9 || got[0].Version != 31 {
			t.Fatalf("read b after its truncation: %d events from %v, %v", len(got), got, err)
		}
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db)
}
