package diskstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/google/uuid"
)

// TestCompactGivesSpaceBack deletes, tombstones and truncates most of a
// store: after Compact the store takes much less space on disk, what was
// kept reads back, and positions are not reused, even after a reopen.
// With small segments, compaction removes the segments that hold no live
// event rather than punching holes in them.
func TestCompactGivesSpaceBack(t *testing.T) {
	for _, segment := range []int64{0, 64 << 10} {
		t.Run(fmt.Sprintf("segment=%d", segment), func(t *testing.T) { testCompact(t, segment) })
	}
}

func testCompact(t *testing.T, segment int64) {
	ctx := context.Background()
	dir := t.TempDir()
	// Small memtables, so that the write-ahead logs pebble keeps for reuse
	// are small beside the data.
	opts := diskstore.Options{NoSync: true, MemTableBytes: 256 << 10, SegmentBytes: segment}
	db, err := diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	const streams, perStream = 40, 500
	for i := range streams {
		for range perStream / 50 {
			batch := make([]cairn.EventData, 50)
			for j := range batch {
				data := make([]byte, 256)
				for k := range data {
					data[k] = byte(rng.Uint32())
				}
				batch[j] = cairn.EventData{Type: "E", ContentType: cairn.ContentBinary, Data: data}
			}
			if _, err := s.Append(ctx, fmt.Sprintf("s%02d", i), cairn.Any, batch...); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, err := s.DiskBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range streams {
		id := fmt.Sprintf("s%02d", i)
		switch i % 4 {
		case 0, 1:
			err = s.DeleteStream(ctx, id, cairn.Any)
		case 2:
			err = s.TombstoneStream(ctx, id, cairn.Any)
		case 3:
			err = s.TruncateStream(ctx, id, perStream-10)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := s.DiskBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk bytes: %d before, %d after compaction", before, after)
	if after > before/4 {
		t.Fatalf("compaction kept %d of %d bytes; the live events are 2%% of them", after, before)
	}
	if segment > 0 {
		// 10 live events in each of 10 streams, spread over the log:
		// at most 10 segments hold a live event, plus the last.
		segs, err := filepath.Glob(filepath.Join(dir, "log", "*.log"))
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) > 11 {
			t.Fatalf("%d segments after compaction, want at most 11", len(segs))
		}
	}
	n := 0
	for e, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cairn.ParseDeletion(&e); ok {
			continue // the records of the deletes stay
		}
		if i, _ := strconv.Atoi(e.StreamID[1:]); i%4 != 3 || e.Version < perStream-10 {
			t.Fatalf("event %s@%d survived compaction", e.StreamID, e.Version)
		}
		n++
	}
	if n != streams/4*10 {
		t.Fatalf("%d events after compaction, want %d", n, streams/4*10)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Delete the last stream of the appends too, and end the log with
	// events that are all truncated away; compact, reopen: the next
	// append still gets a fresh position, and a deleted stream continues
	// its versions.
	db, err = diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s = cairn.NewStore(db, cairn.Options{})
	last := fmt.Sprintf("s%02d", streams-1)
	if err := s.DeleteStream(ctx, last, cairn.Any); err != nil {
		t.Fatal(err)
	}
	tail := []cairn.EventData{{Type: "E"}, {Type: "E"}, {Type: "E"}, {Type: "E"}, {Type: "E"}}
	if _, err := s.Append(ctx, "tail", cairn.NoStream, tail...); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateStream(ctx, "tail", 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if has, err := s.HasEvents(ctx); err != nil || !has {
		t.Fatalf("HasEvents = %v, %v", has, err)
	}
	_ = s.Close()
	db, err = diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s = cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	res, err := s.Append(ctx, last, cairn.NoStream, cairn.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	// After the appends: the records of 31 deletes and tombstones, and
	// the 5 events of tail.
	if want := uint64(streams*perStream + 31 + 5); res.Position != want || res.Version != perStream {
		t.Fatalf("append after compaction and reopen = %+v, want position %d version %d", res, want, perStream)
	}
	if _, err := s.Append(ctx, "s02", cairn.Any, cairn.EventData{Type: "E"}); !errors.Is(err, cairn.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream after compaction: %v", err)
	}
}

// TestCompactInsideFrames removes events from the middle of write groups
// (an atomic batch over several streams is one group): the log read in
// position order, forward and backward, and each stream still hold exactly
// the events that were kept.
func TestCompactInsideFrames(t *testing.T) {
	ctx := context.Background()
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	streams := []string{"a", "b", "c", "d"}
	for round := range 3 {
		var reqs []cairn.AppendRequest
		for _, id := range streams {
			reqs = append(reqs, cairn.AppendRequest{Stream: id, Expected: cairn.Any, Events: []cairn.EventData{
				{Type: "E", Data: []byte(fmt.Sprintf(`{"r":%d,"n":0}`, round))},
				{Type: "E", Data: []byte(fmt.Sprintf(`{"r":%d,"n":1}`, round))},
			}})
		}
		if _, err := s.AppendBatch(ctx, reqs...); err != nil {
			t.Fatal(err)
		}
	}
	// b goes; c loses its first three events (a whole run and half of the
	// next); d goes to a tombstone.
	if err := s.DeleteStream(ctx, "b", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateStream(ctx, "c", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, "d", cairn.Any); err != nil {
		t.Fatal(err)
	}
	keep := func(e cairn.Event) bool {
		return e.StreamID == "a" || (e.StreamID == "c" && e.Version >= 3) || e.StreamID == cairn.DeletionsStream
	}
	var want []cairn.Event
	for e, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		if keep(e) {
			want = append(want, e)
		}
	}
	for pass := range 2 { // compacting again changes nothing
		if err := s.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		var got []cairn.Event
		for e, err := range s.All(ctx, 0, cairn.Forward) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if len(got) != len(want) {
			t.Fatalf("pass %d: %d events after compaction, want %d", pass, len(got), len(want))
		}
		for i := range got {
			if got[i].Position != want[i].Position || string(got[i].Data) != string(want[i].Data) || got[i].StreamID != want[i].StreamID {
				t.Fatalf("pass %d: event %d = %s@%d (position %d), want %s@%d (position %d)", pass, i, got[i].StreamID, got[i].Version, got[i].Position, want[i].StreamID, want[i].Version, want[i].Position)
			}
		}
		back, err := s.ReadAll(ctx, math.MaxUint64, 100, cairn.Backward)
		if err != nil {
			t.Fatal(err)
		}
		for i := range back {
			if w := want[len(want)-1-i]; back[i].Position != w.Position {
				t.Fatalf("pass %d: backward event %d at position %d, want %d", pass, i, back[i].Position, w.Position)
			}
		}
		if len(back) != len(want) {
			t.Fatalf("pass %d: %d events read backward, want %d", pass, len(back), len(want))
		}
		// From a position inside a removed range.
		mid, err := s.ReadAll(ctx, want[2].Position-1, 1, cairn.Forward)
		if err != nil || len(mid) != 1 || mid[0].Position < want[2].Position-1 {
			t.Fatalf("read from position %d: %v, %v", want[2].Position-1, mid, err)
		}
		c, err := s.ReadStream(ctx, "c", 0, 10, cairn.Forward)
		if err != nil || len(c) != 3 || c[0].Version != 3 {
			t.Fatalf("stream c after compaction: %d events from version %v, %v; want versions 3-5", len(c), c, err)
		}
	}
}

// TestCompactInSteps compacts streams of many small appends, deleted,
// tombstoned and truncated (once inside an append), with purge steps of
// three appends, so that every stream is purged over several steps, each
// resuming where the one before stopped. The store then reads exactly as
// after a compaction in one step, passes the offline check, and goes on
// after a reopen: a deleted stream continues its versions, a tombstoned
// one stays closed.
func TestCompactInSteps(t *testing.T) {
	one := compactSmallAppends(t, 0)
	stepped := compactSmallAppends(t, 3)
	if !slices.Equal(one, stepped) {
		t.Fatalf("after compaction in steps of 3 appends the store reads\n%v\nafter one step\n%v", stepped, one)
	}
}

// TestCompactRetryRecordsInTheIndex: compaction removes the retry records
// of the appends it removes whether they are still in memory (as in
// TestCompactInSteps, whose appends were just made) or already in the
// index, ingested when the index was flushed (here, by a Reclaim before
// the compaction): the store then reads the same, passes the check, and
// takes the removed appends' events anew.
func TestCompactRetryRecordsInTheIndex(t *testing.T) {
	want := compactSmallAppends(t, 0)
	got := compactSmallAppendsWith(t, func(t *testing.T, db *diskstore.DB, s *cairn.Store) {
		ctx := context.Background()
		if err := errors.Join(db.Reclaim(ctx), s.Compact(ctx)); err != nil {
			t.Fatal(err)
		}
	})
	if !slices.Equal(got, want) {
		t.Fatalf("compacted after its retry records were ingested, the store reads\n%v\nwithout\n%v", got, want)
	}
}

// TestApplyPurgeSteps compacts through Apply, as a replicated store's
// copies do: PurgeWrite steps of three appends, each applied as a group
// of its own with its mark, an applied append between each two, then
// Reclaim. The store reads as after Compact, but for the appends made
// between the steps, and the mark is the last group's.
func TestApplyPurgeSteps(t *testing.T) {
	want := compactSmallAppends(t, 0)
	var steps int
	got := compactSmallAppendsWith(t, func(t *testing.T, db *diskstore.DB, _ *cairn.Store) {
		ctx := context.Background()
		apply := func(mark int, w diskstore.Write) diskstore.Outcome {
			t.Helper()
			a, err := db.Apply(ctx, &diskstore.Group{Mark: []byte{byte(mark)}, Time: time.Now(), Writes: []diskstore.Write{w}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.Wait()
			if err != nil {
				t.Fatal(err)
			}
			return res.Outcomes[0]
		}
		for step := (&diskstore.PurgeWrite{Runs: 3}); step != nil; steps++ {
			out := apply(2*steps, step)
			if out.Err != nil {
				t.Fatalf("purge step %d (%+v): %v", steps, *step, out.Err)
			}
			step = out.Resume
			between := &diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "between", Expected: cairn.Any,
				Events: []cairn.EventData{{ID: uuid.New(), Type: "E"}}}}}
			if out := apply(2*steps+1, between); out.Err != nil {
				t.Fatalf("an append after purge step %d: %v", steps, out.Err)
			}
		}
		if m, ok, err := db.Mark(ctx); err != nil || !ok || len(m) != 1 || int(m[0]) != 2*steps-1 {
			t.Fatalf("mark after %d purge steps: %v, %v, %v; want [%d]", steps, m, ok, err, 2*steps-1)
		}
		if err := db.Reclaim(ctx); err != nil {
			t.Fatal(err)
		}
		// A purge step shares its group with no other write.
		a, err := db.Apply(ctx, &diskstore.Group{Time: time.Now(), Writes: []diskstore.Write{&diskstore.PurgeWrite{}, &diskstore.TruncateWrite{Stream: "keep"}}})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := a.Wait(); err != nil || res.Outcomes[0].Err == nil {
			t.Fatalf("a purge step applied beside another write: %v, %v; want it refused", res.Outcomes, err)
		}
	})
	// 60 dead single-event appends and the truncated append of five, in
	// steps of three.
	if steps < 20 {
		t.Fatalf("the purge took %d steps of three appends", steps)
	}
	var kept []string
	for _, line := range got {
		if !strings.Contains(line, " between@") {
			kept = append(kept, line)
		}
	}
	if len(got)-len(kept) != steps {
		t.Fatalf("%d appends between the purge steps read back, want %d", len(got)-len(kept), steps)
	}
	if !slices.Equal(kept, want) {
		t.Fatalf("after purge steps applied the store reads\n%v\nafter Compact\n%v", kept, want)
	}
}

// compactSmallAppends fills a store with small appends, removes most of
// them, compacts it with purge steps of runs appends (0: the default)
// and returns what it reads afterwards, after checking it.
func compactSmallAppends(t *testing.T, runs int) []string {
	if runs > 0 {
		defer diskstore.SetPurgeRuns(runs)()
	}
	return compactSmallAppendsWith(t, func(t *testing.T, _ *diskstore.DB, s *cairn.Store) {
		if err := s.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// compactSmallAppendsWith is compactSmallAppends with compact compacting
// the store.
func compactSmallAppendsWith(t *testing.T, compact func(*testing.T, *diskstore.DB, *cairn.Store)) []string {
	ctx := context.Background()
	dir := t.TempDir()
	opts := diskstore.Options{NoSync: true}
	db, err := diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	fillSmallAppends(t, s)
	compact(t, db, s)
	got := logLines(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := diskstore.Check(ctx, dir, diskstore.CheckOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("check after compaction: %v", rep.Problems)
	}
	db, err = diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s = cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	if again := logLines(t, s); !slices.Equal(again, got) {
		t.Fatalf("after a reopen the store reads\n%v\nbefore\n%v", again, got)
	}
	// Compaction removed the retry records of the deleted stream's
	// appends, the last ones too: appending their events again appends
	// them anew, continuing the stream's versions.
	for i := range 20 {
		ev := cairn.EventData{ID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "del-%d", i)), Type: "E"}
		if res, err := s.Append(ctx, "del", cairn.Any, ev); err != nil || res.Version != int64(20+i) {
			t.Fatalf("append again of the deleted stream's event %d after compaction: %+v, %v; want version %d", i, res, err, 20+i)
		}
	}
	if _, err := s.Append(ctx, "tomb", cairn.Any, cairn.EventData{Type: "E"}); !errors.Is(err, cairn.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream after compaction: %v", err)
	}
	// What is kept: trunc from version 22 (three of the five), keep whole,
	// and the records of the deletes.
	var kept int
	for _, line := range got {
		if strings.Contains(line, " trunc@") || strings.Contains(line, " keep@") {
			kept++
		}
	}
	if kept != 3+20 {
		t.Fatalf("%d events of trunc and keep after compaction, want 23:\n%v", kept, got)
	}
	return got
}

// TestCompactInterrupted ends a compaction after each of its purge steps
// in turn, as a crash would: the store then passes the offline check, its
// log reads what it read before less some of the dead events, and a
// compaction after a reopen finishes the work, to the store a compaction
// without interruption leaves.
func TestCompactInterrupted(t *testing.T) {
	defer diskstore.SetPurgeRuns(3)()
	want := compactSmallAppends(t, 3)
	errStop := errors.New("stopped after a purge step")
	for stop := 1; ; stop++ {
		steps := 0
		restore := diskstore.SetPurgeStepped(func() error {
			if steps++; steps == stop {
				return errStop
			}
			return nil
		})
		ctx := context.Background()
		dir := t.TempDir()
		opts := diskstore.Options{NoSync: true}
		db, err := diskstore.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		s := cairn.NewStore(db, cairn.Options{})
		fillSmallAppends(t, s)
		before := logLines(t, s)
		err = s.Compact(ctx)
		restore()
		if err == nil {
			if stop == 1 {
				t.Fatal("the compaction took one step: nothing was interrupted")
			}
			_ = s.Close()
			return // every step was interrupted once
		}
		if !errors.Is(err, errStop) {
			t.Fatalf("compaction stopped after step %d: %v", stop, err)
		}
		// Some dead events are gone from the log's reads, none of the
		// others.
		if got := logLines(t, s); !subsequence(want, got) || !subsequence(got, before) {
			t.Fatalf("after a compaction stopped after step %d the store reads\n%v\nnot between what a whole compaction leaves\n%v\nand what it read before\n%v", stop, got, want, before)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := diskstore.Check(ctx, dir, diskstore.CheckOptions{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("check after a compaction stopped after step %d: %v", stop, rep.Problems)
		}
		db, err = diskstore.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		s = cairn.NewStore(db, cairn.Options{})
		if err := s.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		if got := logLines(t, s); !slices.Equal(got, want) {
			t.Fatalf("a compaction stopped after step %d, then one to the end, leave\n%v\nnot\n%v", stop, got, want)
		}
		_ = s.Close()
	}
}

// fillSmallAppends appends 20 single-event appends to each of four
// streams, interleaved, and five events in one append to one of them, then
// deletes one stream, tombstones one and truncates one inside the append
// of five. Event IDs are the same in every store.
func fillSmallAppends(t *testing.T, s *cairn.Store) {
	t.Helper()
	ctx := context.Background()
	ids := []string{"del", "tomb", "trunc", "keep"}
	for i := range 20 {
		for _, id := range ids {
			ev := cairn.EventData{ID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s-%d", id, i)), Type: "E", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
			if _, err := s.Append(ctx, id, cairn.Any, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	five := make([]cairn.EventData, 5)
	for i := range five {
		five[i] = cairn.EventData{ID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "five-%d", i)), Type: "E", Data: []byte(fmt.Sprintf(`{"five":%d}`, i))}
	}
	if _, err := s.Append(ctx, "trunc", cairn.Any, five...); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(s.DeleteStream(ctx, "del", cairn.Any), s.TombstoneStream(ctx, "tomb", cairn.Any),
		s.TruncateStream(ctx, "trunc", 22), s.TruncateStream(ctx, "keep", 0)); err != nil {
		t.Fatal(err)
	}
}

// logLines returns what the store's log reads, an event a line; the store's
// own records of deletes without their IDs, which each store makes anew.
func logLines(t *testing.T, s *cairn.Store) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for e, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		id := e.ID.String()
		if strings.HasPrefix(e.StreamID, "$") {
			id = "-" // the store's own record of a delete, with an ID of its own
		}
		out = append(out, fmt.Sprintf("%d %s@%d %s %s", e.Position, e.StreamID, e.Version, id, e.Data))
	}
	return out
}

// subsequence reports whether a's lines are all in b, in the same order.
func subsequence(a, b []string) bool {
	for _, line := range b {
		if len(a) > 0 && a[0] == line {
			a = a[1:]
		}
	}
	return len(a) == 0
}

// A store closed while it compacts, or while it frees what a compaction
// purged, waits for its reading of the index, or ends it: Compact returns
// nil or ErrClosed, and the store reopens sound.
func TestCompactWhileClosing(t *testing.T) {
	for i, delay := range []time.Duration{-1, 0, time.Millisecond, 5 * time.Millisecond} {
		ctx := context.Background()
		dir := t.TempDir()
		db, err := diskstore.Open(dir, diskstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		s := cairn.NewStore(db, cairn.Options{})
		for k := range 16 {
			stream := fmt.Sprint("gone-", k)
			for j := range 100 {
				if _, err := s.Append(ctx, stream, cairn.Any, cairn.EventData{Type: "E", Data: fmt.Appendf(nil, `{"j":%d}`, j)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteStream(ctx, stream, cairn.Any); err != nil {
				t.Fatal(err)
			}
		}
		flushed := make(chan struct{})
		if delay < 0 {
			// Closed once the index is flushed for freeing, while the
			// freeing waits a moment.
			defer diskstore.SetFlushedToFree(func() {
				close(flushed)
				time.Sleep(50 * time.Millisecond)
			})()
		}
		done := make(chan error, 1)
		go func() { done <- db.Compact(ctx) }()
		if delay < 0 {
			<-flushed
		} else {
			time.Sleep(delay)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("round %d: close during compaction: %v", i, err)
		}
		if err := <-done; err != nil && !errors.Is(err, cairn.ErrClosed) {
			t.Fatalf("round %d: compaction of a store closed meanwhile: %v", i, err)
		}
		diskstore.SetFlushedToFree(nil)
		rep, err := diskstore.Check(ctx, dir, diskstore.CheckOptions{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("round %d: check after a close during compaction: %v", i, rep.Problems)
		}
	}
}
