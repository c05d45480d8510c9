package storetest

// Rules of reads: streams, the global log, iterators, sized reads,
// readers racing writers, the list of streams and the stream metadata
// calls.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

func testReadStream(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	mustAppend(t, s, "other", cairn.NoStream, ev("X"))
	mustAppend(t, s, "s", cairn.NoStream, evs(10, "E")...)
	cases := []struct {
		from  int64
		count int
		dir   cairn.Direction
		want  []int64
	}{
		{0, 3, cairn.Forward, seq[int64](0, 2)},
		{8, 5, cairn.Forward, seq[int64](8, 9)},
		{10, 5, cairn.Forward, nil},
		{0, 100, cairn.Forward, seq[int64](0, 9)},
		{cairn.StreamEnd, 3, cairn.Backward, seq[int64](9, 7)},
		{4, 10, cairn.Backward, seq[int64](4, 0)},
		{100, 2, cairn.Backward, seq[int64](9, 8)},
		{0, 1, cairn.Backward, []int64{0}},
	}
	for _, c := range cases {
		got, err := s.ReadStream(ctx, "s", c.from, c.count, c.dir)
		if err != nil {
			t.Fatalf("ReadStream(from %d, count %d, %v): %v", c.from, c.count, c.dir, err)
		}
		if !slices.Equal(versions(got), c.want) {
			t.Fatalf("ReadStream(from %d, count %d, %v) = versions %v, want %v", c.from, c.count, c.dir, versions(got), c.want)
		}
		for _, e := range got {
			if e.StreamID != "s" {
				t.Fatalf("ReadStream returned an event of %q", e.StreamID)
			}
		}
	}
	for _, dir := range []cairn.Direction{cairn.Forward, cairn.Backward} {
		if _, err := s.ReadStream(ctx, "missing", 0, 1, dir); !errors.Is(err, cairn.ErrStreamNotFound) {
			t.Fatalf("ReadStream of a missing stream (%v): %v, want ErrStreamNotFound", dir, err)
		}
	}
}

func testReadAll(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	if got, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(got) != 0 {
		t.Fatalf("ReadAll of an empty store = %d events, %v", len(got), err)
	}
	if got, err := s.ReadAll(ctx, cairn.LogEnd, 10, cairn.Backward); err != nil || len(got) != 0 {
		t.Fatalf("backward ReadAll of an empty store = %d events, %v", len(got), err)
	}
	var order []string
	for i := range 12 {
		stream := fmt.Sprintf("s-%d", i%3)
		mustAppend(t, s, stream, cairn.Any, ev("E"))
		order = append(order, stream)
	}
	cases := []struct {
		from  uint64
		count int
		dir   cairn.Direction
		want  []uint64
	}{
		{0, 100, cairn.Forward, seq[uint64](0, 11)},
		{5, 3, cairn.Forward, seq[uint64](5, 7)},
		{12, 3, cairn.Forward, nil},
		{cairn.LogEnd, 4, cairn.Backward, seq[uint64](11, 8)},
		{3, 100, cairn.Backward, seq[uint64](3, 0)},
		{50, 2, cairn.Backward, seq[uint64](11, 10)},
	}
	for _, c := range cases {
		got, err := s.ReadAll(ctx, c.from, c.count, c.dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(positions(got), c.want) {
			t.Fatalf("ReadAll(from %d, count %d, %v) = %v, want %v", c.from, c.count, c.dir, positions(got), c.want)
		}
		for _, e := range got {
			if e.StreamID != order[e.Position] || e.Version != int64(e.Position/3) {
				t.Fatalf("position %d holds %q version %d, want %q version %d", e.Position, e.StreamID, e.Version, order[e.Position], e.Position/3)
			}
		}
	}
}

func testIterators(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb, cairn.Options{ReadBatch: 3})
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, evs(10, "E")...)
	var got []int64
	for e, err := range s.Stream(ctx, "s", 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Version)
	}
	if !slices.Equal(got, seq[int64](0, 9)) {
		t.Fatalf("Stream forward in pages of 3 = %v", got)
	}
	got = got[:0]
	for e, err := range s.Stream(ctx, "s", cairn.StreamEnd, cairn.Backward) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Version)
	}
	if !slices.Equal(got, seq[int64](9, 0)) {
		t.Fatalf("Stream backward in pages of 3 = %v", got)
	}
	var pos []uint64
	for e, err := range s.All(ctx, cairn.LogEnd, cairn.Backward) {
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, e.Position)
	}
	if !slices.Equal(pos, seq[uint64](9, 0)) {
		t.Fatalf("All backward in pages of 3 = %v", pos)
	}
	// Stopping early is allowed and stops reading.
	n := 0
	for _, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 4 {
			break
		}
	}
	// An error is yielded, not hidden.
	var errs []error
	for _, err := range s.Stream(ctx, "missing", 0, cairn.Forward) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], cairn.ErrStreamNotFound) {
		t.Fatalf("Stream of a missing stream yielded %v, want one ErrStreamNotFound", errs)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, err := range s.All(cctx, 0, cairn.Forward) {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("All with a cancelled context yielded %v", err)
		}
	}
}

// testSizedReads checks that a sized read stops after the event that
// brings the bytes read to the limit, in every direction and across
// appends, and that the iterators page by size as well as by count.
func testSizedReads(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{ReadBatchBytes: 250})
	need[cairn.SizedReader](t, b, "SizedReader")
	sizedReads(t, s)
}

// sizedReads checks the sized reads of s, whose Options.ReadBatchBytes is
// 250.
func sizedReads(t *testing.T, s *cairn.Store) {
	ctx := context.Background()
	// Events of 100 bytes of data, in appends of 1, 2 and 3 events.
	big := func(n int) []cairn.EventData {
		out := make([]cairn.EventData, n)
		for i := range out {
			out[i] = cairn.EventData{Type: "E", Data: make([]byte, 100), ContentType: cairn.ContentBinary}
		}
		return out
	}
	for i := range 4 {
		mustAppend(t, s, "s", cairn.Any, big(i%3+1)...)
	}
	// 7 events, versions and positions 0..6.
	cases := []struct {
		from            int64
		count, maxBytes int
		dir             cairn.Direction
		want            []int64
	}{
		{0, 10, 250, cairn.Forward, []int64{0, 1, 2}},
		{0, 10, 200, cairn.Forward, []int64{0, 1}},
		{0, 10, 1, cairn.Forward, []int64{0}},
		{0, 2, 1000, cairn.Forward, []int64{0, 1}},
		{5, 10, 1000, cairn.Forward, []int64{5, 6}},
		{5, 10, 150, cairn.Forward, []int64{5, 6}},
		{6, 10, 250, cairn.Backward, []int64{6, 5, 4}},
		{cairn.StreamEnd, 10, 50, cairn.Backward, []int64{6}},
	}
	for _, c := range cases {
		got, err := s.ReadStreamSized(ctx, "s", c.from, c.count, c.maxBytes, c.dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(versions(got), c.want) {
			t.Errorf("ReadStreamSized(from %d, count %d, %d bytes, %v) = %v, want %v", c.from, c.count, c.maxBytes, c.dir, versions(got), c.want)
		}
		from := uint64(c.from)
		if c.from == cairn.StreamEnd {
			from = cairn.LogEnd
		}
		all, err := s.ReadAllSized(ctx, from, c.count, c.maxBytes, c.dir)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]uint64, len(c.want))
		for i, v := range c.want {
			want[i] = uint64(v)
		}
		if !slices.Equal(positions(all), want) {
			t.Errorf("ReadAllSized(from %d, count %d, %d bytes, %v) = %v, want %v", from, c.count, c.maxBytes, c.dir, positions(all), want)
		}
	}
	if _, err := s.ReadAllSized(ctx, 0, 10, 0, cairn.Forward); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Errorf("ReadAllSized with 0 bytes: %v, want an invalid-argument error", err)
	}
	// The iterators read pages of 3 events (250 bytes) and see every event.
	var got []int64
	for e, err := range s.Stream(ctx, "s", 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Version)
	}
	if !slices.Equal(got, seq[int64](0, 6)) {
		t.Fatalf("Stream forward in pages of 250 bytes = %v", got)
	}
	var pos []uint64
	for e, err := range s.All(ctx, cairn.LogEnd, cairn.Backward) {
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, e.Position)
	}
	if !slices.Equal(pos, seq[uint64](6, 0)) {
		t.Fatalf("All backward in pages of 250 bytes = %v", pos)
	}
}

func testConcurrentFollower(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writers, appends = 6, 40
	total := uint64(0)
	for w := range writers {
		total += uint64(appends * (1 + w%3))
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range appends {
				if _, err := s.Append(ctx, fmt.Sprintf("f-%d", w), cairn.Any, evs(1+w%3, "E")...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// The follower reads from the next position it expects; every read
	// must continue exactly there, whatever commits concurrently.
	next := uint64(0)
	seen := map[uuid.UUID]bool{}
	for next < total {
		changed := s.Changes()
		page, err := s.ReadAll(ctx, next, 16, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Position != next {
				t.Fatalf("follower expected position %d, read %d", next, e.Position)
			}
			if seen[e.ID] {
				t.Fatalf("event %v seen twice", e.ID)
			}
			seen[e.ID] = true
			next++
		}
		if len(page) == 0 {
			select {
			case <-changed:
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("follower stuck at position %d of %d", next, total)
			}
		}
	}
	wg.Wait()
	if page, err := s.ReadAll(ctx, next, 16, cairn.Forward); err != nil || len(page) != 0 {
		t.Fatalf("after the follower saw all %d events, ReadAll returned %d more (%v)", total, len(page), err)
	}
}

// A stream that a reader finds is never empty in its reader's eyes: a read
// racing the append that creates the stream returns not-found or the
// append's events, all of them.
func testReadWhileCreating(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	const streams = 100
	var wg sync.WaitGroup
	defer wg.Wait() // also when the reader fails: the store stays open for the writer
	wg.Go(func() {
		for i := range streams {
			if _, err := s.Append(ctx, fmt.Sprintf("c-%d", i), cairn.NoStream, evs(2, "E")...); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for i := range streams {
		stream := fmt.Sprintf("c-%d", i)
		for {
			got, err := s.ReadStream(ctx, stream, 0, 10, cairn.Forward)
			if errors.Is(err, cairn.ErrStreamNotFound) {
				if t.Failed() {
					return
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("read of %q while it was created returned %d events, want 2", stream, len(got))
			}
			break
		}
	}
	// A stream deleted and recreated over and over: every read finds it
	// missing or with its events, never existing and empty.
	wg.Go(func() {
		for range 100 {
			if err := s.DeleteStream(ctx, "c-0", cairn.Any); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Append(ctx, "c-0", cairn.NoStream, evs(2, "E")...); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 300 {
		got, err := s.ReadStream(ctx, "c-0", 0, 10, cairn.Forward)
		if errors.Is(err, cairn.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("read of a stream being deleted and recreated returned %d events and no error, want 2 or not-found", len(got))
		}
	}
}

func testListStreams(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb, cairn.Options{ReadBatch: 100})
	ctx := context.Background()
	if got := listStreams(t, s); len(got) != 0 {
		t.Fatalf("streams of an empty store = %v", got)
	}
	const n = 1234
	var reqs []cairn.AppendRequest
	var want []string
	for i := range n {
		id := fmt.Sprintf("stream-%05d", (i*7919)%n) // not in order
		want = append(want, id)
		reqs = append(reqs, cairn.AppendRequest{Stream: id, Expected: cairn.NoStream, Events: evs(1, "E")})
		if len(reqs) == 100 || i == n-1 {
			if _, err := s.AppendBatch(ctx, reqs...); err != nil {
				t.Fatal(err)
			}
			reqs = nil
		}
	}
	slices.Sort(want)
	if got := listStreams(t, s); !slices.Equal(got, want) {
		t.Fatalf("Streams listed %d ids (first %v), want %d sorted ids", len(got), got[:min(3, len(got))], n)
	}
	count := 0
	for _, err := range s.Streams(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if count++; count == 150 {
			break
		}
	}
}

func testMetadata(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	if has, err := s.HasEvents(ctx); has || err != nil {
		t.Fatalf("HasEvents of an empty store = %v, %v", has, err)
	}
	if ok, err := s.StreamExists(ctx, "s"); ok || err != nil {
		t.Fatalf("StreamExists before any append = %v, %v", ok, err)
	}
	mustAppend(t, s, "s", cairn.NoStream, evs(2, "E")...)
	if has, err := s.HasEvents(ctx); !has || err != nil {
		t.Fatalf("HasEvents after an append = %v, %v", has, err)
	}
	if ok, err := s.StreamExists(ctx, "s"); !ok || err != nil {
		t.Fatalf("StreamExists after an append = %v, %v", ok, err)
	}
	wantVersion(t, s, "s", 1)
	wantVersion(t, s, "t", -1)
}

func testMaestroSequences(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	mustAppend(t, s, "agg", cairn.NoStream, evs(5, "E")...) // versions 0..4, sequences 1..5
	get := func(min, max int64) []int64 {
		t.Helper()
		var out []int64
		for e, err := range s.GetEvents(ctx, "agg", min, max) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e.Sequence())
		}
		return out
	}
	cases := []struct {
		min, max int64
		want     []int64
	}{
		{0, cairn.NoMaxSequence, seq[int64](1, 5)},
		{2, cairn.NoMaxSequence, seq[int64](3, 5)},
		{2, 4, []int64{3, 4}},
		{0, 1, []int64{1}},
		{5, cairn.NoMaxSequence, nil},
		{3, 3, nil},
	}
	for _, c := range cases {
		if got := get(c.min, c.max); !slices.Equal(got, c.want) {
			t.Fatalf("GetEvents(min %d, max %d) = sequences %v, want %v", c.min, c.max, got, c.want)
		}
	}
	for e, err := range s.GetEvents(ctx, "unknown", 0, cairn.NoMaxSequence) {
		t.Fatalf("GetEvents of an unknown aggregate yielded %v, %v", e, err)
	}
}
