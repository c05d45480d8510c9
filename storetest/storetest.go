// Package storetest is the conformance suite of cairn's storage engines.
//
// An engine's test calls [TestBackend] with a constructor; the suite runs
// every rule of the backend contract as a subtest, each against a fresh
// backend, through a [cairn.Store] as users reach it. Tests of optional
// capabilities (batch append, truncation, tombstones, snapshots,
// transactional projections, compaction…) run when the backend implements
// the interface, and are skipped with a message otherwise.
//
//	func TestConformance(t *testing.T) {
//		storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
//			b := myengine.Open(t.TempDir())
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// The last rule, Model, is a differential test: random appends, batches,
// truncations, deletes, tombstones and compactions against the engine and
// against the memory engine, compared event for event after every step.
// [RunModel] exposes it, with restarts (or crashes) between steps, for an
// engine's own tests.
//
// The constructor's cleanup should close the backend and ignore
// [cairn.ErrClosed], since some subtests close it themselves. Run the suite
// under -race: several subtests race appends and reads against each other.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// NewBackend returns a fresh, empty backend for one subtest.
type NewBackend func(t *testing.T) cairn.Backend

// TestBackend runs the conformance suite against the engine that newBackend
// makes.
func TestBackend(t *testing.T, newBackend NewBackend) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewBackend)
	}{
		{"ExpectedVersion", testExpectedVersion},
		{"AppendResult", testAppendResult},
		{"RecordedEvent", testRecordedEvent},
		{"ContiguousAppends", testContiguousAppends},
		{"ReadStream", testReadStream},
		{"ReadAll", testReadAll},
		{"Iterators", testIterators},
		{"SizedReads", testSizedReads},
		{"ConcurrentExactAppends", testConcurrentExactAppends},
		{"ConcurrentFollower", testConcurrentFollower},
		{"ReadWhileCreating", testReadWhileCreating},
		{"IdempotentRetry", testIdempotentRetry},
		{"SoftDelete", testSoftDelete},
		{"Tombstone", testTombstone},
		{"DeleteExpectedVersion", testDeleteExpectedVersion},
		{"Truncate", testTruncate},
		{"AppendBatch", testAppendBatch},
		{"Snapshots", testSnapshots},
		{"MaestroSequences", testMaestroSequences},
		{"CommitAll", testCommitAll},
		{"BadInput", testBadInput},
		{"ListStreams", testListStreams},
		{"Metadata", testMetadata},
		{"Notification", testNotification},
		{"CancelledContext", testCancelledContext},
		{"Compact", testCompact},
		{"HealthAndSize", testHealthAndSize},
		{"Close", testClose},
		{"Model", testModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBackend) })
	}
}

// open returns a Store over a fresh backend, with opts.
func open(t *testing.T, nb NewBackend, opts ...cairn.Options) (*cairn.Store, cairn.Backend) {
	t.Helper()
	b := nb(t)
	var o cairn.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	return cairn.NewStore(b, o), b
}

func ev(typ string) cairn.EventData {
	return cairn.EventData{Type: typ, Data: []byte(`{"n":1}`)}
}

func evs(n int, typ string) []cairn.EventData {
	out := make([]cairn.EventData, n)
	for i := range out {
		out[i] = cairn.EventData{Type: typ, Data: fmt.Appendf(nil, `{"i":%d}`, i)}
	}
	return out
}

func withIDs(events []cairn.EventData) []cairn.EventData {
	for i := range events {
		events[i].ID = uuid.New()
	}
	return events
}

func mustAppend(t *testing.T, s *cairn.Store, stream string, expected cairn.ExpectedVersion, events ...cairn.EventData) cairn.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events): %v", stream, expected, len(events), err)
	}
	return res
}

// readAll returns the whole global log, forward.
func readAll(t *testing.T, s *cairn.Store) []cairn.Event {
	t.Helper()
	var out []cairn.Event
	for e, err := range s.All(context.Background(), 0, cairn.Forward) {
		if err != nil {
			t.Fatalf("All: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// readStream returns the visible events of stream, forward, or the error.
func readStream(s *cairn.Store, stream string) ([]cairn.Event, error) {
	var out []cairn.Event
	for e, err := range s.Stream(context.Background(), stream, 0, cairn.Forward) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func versions(events []cairn.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

func positions(events []cairn.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

func seq[T int64 | uint64](from, to T) []T {
	var out []T
	if from <= to {
		for v := from; v <= to; v++ {
			out = append(out, v)
		}
		return out
	}
	for v := from; ; v-- {
		out = append(out, v)
		if v == to {
			break
		}
	}
	return out
}

func wantVersion(t *testing.T, s *cairn.Store, stream string, want int64) {
	t.Helper()
	got, err := s.StreamVersion(context.Background(), stream)
	if want < 0 {
		if !errors.Is(err, cairn.ErrStreamNotFound) {
			t.Fatalf("StreamVersion(%q) = %d, %v; want ErrStreamNotFound", stream, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("StreamVersion(%q) = %d, %v; want %d", stream, got, err, want)
	}
}

func wantLogLen(t *testing.T, s *cairn.Store, want int) {
	t.Helper()
	if got := len(readAll(t, s)); got != want {
		t.Fatalf("global log has %d events, want %d", got, want)
	}
}

func wantWrongVersion(t *testing.T, err error, stream string, expected cairn.ExpectedVersion, actual int64) {
	t.Helper()
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("error = %v, want ErrWrongExpectedVersion", err)
	}
	var wev *cairn.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		t.Fatalf("error %v is not a *WrongExpectedVersionError", err)
	}
	if wev.Stream != stream || wev.Expected != expected || wev.Actual != actual {
		t.Fatalf("WrongExpectedVersionError{%q, %v, %d}, want {%q, %v, %d}", wev.Stream, wev.Expected, wev.Actual, stream, expected, actual)
	}
}

func need[T any](t *testing.T, b cairn.Backend, what string) T {
	t.Helper()
	v, ok := b.(T)
	if !ok {
		t.Skipf("the engine does not implement %s", what)
	}
	return v
}

func testExpectedVersion(t *testing.T, nb NewBackend) {
	// Each state is prepared on a fresh store: the stream "s" is missing,
	// exists at version 2, or was soft-deleted at version 2.
	type state struct {
		name    string
		prepare func(t *testing.T, s *cairn.Store)
		current int64 // -1: does not exist
		next    int64 // version the next event gets
	}
	ctx := context.Background()
	states := []state{
		{"missing", func(t *testing.T, s *cairn.Store) {}, -1, 0},
		{"existing", func(t *testing.T, s *cairn.Store) { mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...) }, 2, 3},
		{"deleted", func(t *testing.T, s *cairn.Store) {
			mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...)
			if err := s.DeleteStream(ctx, "s", cairn.Any); err != nil {
				t.Fatal(err)
			}
		}, -1, 3},
	}
	expectations := []cairn.ExpectedVersion{cairn.NoStream, cairn.Any, cairn.StreamExists, cairn.Exact(0), cairn.Exact(2), cairn.Exact(3)}
	for _, st := range states {
		for _, exp := range expectations {
			t.Run(st.name+"/"+exp.String(), func(t *testing.T) {
				s, _ := open(t, nb)
				st.prepare(t, s)
				before := len(readAll(t, s))
				ok := exp.Check("s", st.current) == nil
				res, err := s.Append(ctx, "s", exp, ev("Next"))
				if !ok {
					wantWrongVersion(t, err, "s", exp, st.current)
					wantVersion(t, s, "s", st.current)
					wantLogLen(t, s, before)
					return
				}
				if err != nil {
					t.Fatalf("Append with %v on a %s stream: %v", exp, st.name, err)
				}
				if res.Version != st.next {
					t.Fatalf("Append returned version %d, want %d", res.Version, st.next)
				}
				wantVersion(t, s, "s", st.next)
				wantLogLen(t, s, before+1)
			})
		}
	}
}

func testAppendResult(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	res := mustAppend(t, s, "a", cairn.NoStream, evs(3, "E")...)
	if res.Version != 2 || res.Position != 2 {
		t.Fatalf("first append of 3 events = %+v, want version 2 position 2", res)
	}
	res = mustAppend(t, s, "b", cairn.Any, evs(1, "E")...)
	if res.Version != 0 || res.Position != 3 {
		t.Fatalf("append to b = %+v, want version 0 position 3", res)
	}
	res = mustAppend(t, s, "a", cairn.Exact(2), evs(2, "E")...)
	if res.Version != 4 || res.Position != 5 {
		t.Fatalf("second append to a = %+v, want version 4 position 5", res)
	}
	wantVersion(t, s, "a", 4)
	got, err := s.ReadStream(context.Background(), "a", 0, 10, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(positions(got), []uint64{0, 1, 2, 4, 5}) || !slices.Equal(versions(got), seq[int64](0, 4)) {
		t.Fatalf("stream a: positions %v versions %v", positions(got), versions(got))
	}
}

func testRecordedEvent(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	id := uuid.New()
	in := cairn.EventData{
		ID:          id,
		Type:        "OrderPlaced",
		ContentType: cairn.ContentBinary,
		Data:        []byte{0, 1, 2, 255},
		Metadata:    []byte(`{"user":"ada"}`),
		Tags:        []string{"tenant:7", "vip"},
	}
	before := time.Now().Add(-time.Second)
	mustAppend(t, s, "order-1", cairn.NoStream, in, cairn.EventData{Type: "Generated"}, cairn.EventData{Type: "Generated"})
	after := time.Now().Add(time.Second)
	got, err := s.ReadStream(context.Background(), "order-1", 0, 10, cairn.Forward)
	if err != nil || len(got) != 3 {
		t.Fatalf("ReadStream = %d events, %v", len(got), err)
	}
	e := got[0]
	if e.ID != id || e.Type != in.Type || e.ContentType != in.ContentType || string(e.Data) != string(in.Data) ||
		string(e.Metadata) != string(in.Metadata) || !slices.Equal(e.Tags, in.Tags) {
		t.Fatalf("recorded event %+v does not match %+v", e.EventData, in)
	}
	if e.StreamID != "order-1" || e.Version != 0 || e.Position != 0 {
		t.Fatalf("recorded at stream %q version %d position %d", e.StreamID, e.Version, e.Position)
	}
	if e.Created.Before(before) || e.Created.After(after) || e.Created.Location() != time.UTC {
		t.Fatalf("created %v, want a UTC time between %v and %v", e.Created, before, after)
	}
	// Generated IDs are set, distinct and time-ordered (UUIDv7).
	g1, g2 := got[1].ID, got[2].ID
	if g1 == uuid.Nil || g1 == g2 || g1.Version() != 7 || g2.Version() != 7 {
		t.Fatalf("generated ids %v %v, want distinct version 7 UUIDs", g1, g2)
	}
	if strings.Compare(g1.String(), g2.String()) > 0 {
		t.Fatalf("generated ids %v, %v are not time-ordered", g1, g2)
	}
	// The caller's events are not modified.
	if in.ID != id {
		t.Fatal("Append changed the caller's event")
	}
	// The store keeps its own copy: neither the writer reusing its buffers
	// nor a reader changing what it read alters the recorded event.
	in.Data[0], in.Metadata[0], in.Tags[0] = 'X', 'X', "changed"
	e.Data[1], e.Metadata[1], e.Tags[1] = 'Y', 'Y', "changed"
	again, err := s.ReadStream(context.Background(), "order-1", 0, 1, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if a := again[0]; string(a.Data) != "\x00\x01\x02\xff" || string(a.Metadata) != `{"user":"ada"}` || !slices.Equal(a.Tags, []string{"tenant:7", "vip"}) {
		t.Fatalf("the recorded event changed with the caller's buffers: %q %q %q", a.Data, a.Metadata, a.Tags)
	}
}

func testContiguousAppends(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	const writers, appends, size = 4, 10, 5
	var mu sync.Mutex
	var results []cairn.AppendResult
	var streams []string
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("w-%d", w)
			for range appends {
				res, err := s.Append(context.Background(), stream, cairn.Any, evs(size, "E")...)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				results = append(results, res)
				streams = append(streams, stream)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	log := readAll(t, s)
	if len(log) != writers*appends*size {
		t.Fatalf("log has %d events, want %d", len(log), writers*appends*size)
	}
	for i, e := range log {
		if e.Position != uint64(i) {
			t.Fatalf("log[%d] has position %d", i, e.Position)
		}
	}
	for i, res := range results {
		for k := range size {
			e := log[res.Position-uint64(k)]
			if e.StreamID != streams[i] || e.Version != res.Version-int64(k) {
				t.Fatalf("append %+v to %q: position %d holds %q version %d", res, streams[i], res.Position-uint64(k), e.StreamID, e.Version)
			}
		}
	}
}

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

// testSizedReads checks that a sized read stops after the event that
// brings the bytes read to the limit, in every direction and across
// appends, and that the iterators page by size as well as by count.
func testSizedReads(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{ReadBatchBytes: 250})
	if _, ok := b.(cairn.SizedReader); !ok {
		t.Skip("the engine does not implement cairn.SizedReader")
	}
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

func testConcurrentExactAppends(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	const writers, total = 8, 120
	var mu sync.Mutex
	won := map[uuid.UUID]int64{} // event id → version it was acknowledged at
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				v, err := s.StreamVersion(ctx, "race")
				if errors.Is(err, cairn.ErrStreamNotFound) {
					v = -1
				} else if err != nil {
					t.Error(err)
					return
				}
				if v+1 >= total {
					return
				}
				exp := cairn.Exact(v)
				if v < 0 {
					exp = cairn.NoStream
				}
				e := ev("Step")
				e.ID = uuid.New()
				res, err := s.Append(ctx, "race", exp, e)
				if errors.Is(err, cairn.ErrWrongExpectedVersion) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if res.Version != v+1 {
					t.Errorf("append expecting %d returned version %d", v, res.Version)
				}
				mu.Lock()
				won[e.ID] = res.Version
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got, err := readStream(s, "race")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions(got), seq[int64](0, total-1)) {
		t.Fatalf("versions %v, want 0..%d with no gap or duplicate", versions(got), total-1)
	}
	if len(won) != total {
		t.Fatalf("%d appends acknowledged, want exactly one winner for each of %d versions", len(won), total)
	}
	for _, e := range got {
		if v, ok := won[e.ID]; !ok || v != e.Version {
			t.Fatalf("event %v at version %d was acknowledged at %d (found %v)", e.ID, e.Version, v, ok)
		}
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

func testIdempotentRetry(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	for _, exp := range []cairn.ExpectedVersion{cairn.NoStream, cairn.Any, cairn.StreamExists, cairn.Exact(0)} {
		t.Run(exp.String(), func(t *testing.T) {
			s, _ := open(t, nb)
			if exp != cairn.NoStream && exp != cairn.Any {
				mustAppend(t, s, "s", cairn.NoStream, ev("Init"))
			}
			mustAppend(t, s, "noise", cairn.Any, ev("Noise"))
			batch := withIDs(evs(3, "E"))
			first := mustAppend(t, s, "s", exp, batch...)
			mustAppend(t, s, "noise", cairn.Any, ev("Noise"))
			logLen := len(readAll(t, s))
			again, err := s.Append(ctx, "s", exp, batch...)
			if err != nil {
				t.Fatalf("retrying the same append: %v", err)
			}
			if again != first {
				t.Fatalf("retry returned %+v, want the first result %+v", again, first)
			}
			wantVersion(t, s, "s", first.Version)
			wantLogLen(t, s, logLen)

			// The same first ID in an append that is not a repeat is refused.
			other := withIDs(evs(2, "E"))
			other[0].ID = batch[0].ID
			if _, err := s.Append(ctx, "s", cairn.Any, other...); !errors.Is(err, cairn.ErrDuplicateEvent) {
				t.Fatalf("reusing an event id in a different append: %v, want ErrDuplicateEvent", err)
			}
			if _, err := s.Append(ctx, "elsewhere", cairn.Any, batch...); !errors.Is(err, cairn.ErrDuplicateEvent) {
				t.Fatalf("repeating an append on another stream: %v, want ErrDuplicateEvent", err)
			}
			wantVersion(t, s, "s", first.Version)
			wantVersion(t, s, "elsewhere", -1)
			wantLogLen(t, s, logLen)
		})
	}
}

func testSoftDelete(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...)
	mustAppend(t, s, "keep", cairn.NoStream, ev("E"))
	if err := s.DeleteStream(ctx, "s", cairn.Any); err != nil {
		t.Fatal(err)
	}
	wantVersion(t, s, "s", -1)
	if _, err := s.ReadStream(ctx, "s", 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("ReadStream after delete: %v, want ErrStreamNotFound", err)
	}
	if ok, err := s.StreamExists(ctx, "s"); ok || err != nil {
		t.Fatalf("StreamExists after delete = %v, %v", ok, err)
	}
	if got := listStreams(t, s); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("streams after delete = %v", got)
	}
	if err := s.DeleteStream(ctx, "s", cairn.Any); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("deleting a deleted stream: %v, want ErrStreamNotFound", err)
	}
	if err := s.DeleteStream(ctx, "never", cairn.Any); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("deleting a missing stream: %v, want ErrStreamNotFound", err)
	}
	// Recreated: versions continue after the last deleted one, and only
	// the new events are read.
	res := mustAppend(t, s, "s", cairn.NoStream, evs(2, "E")...)
	if res.Version != 4 {
		t.Fatalf("recreating append returned version %d, want 4", res.Version)
	}
	got, err := readStream(s, "s")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions(got), []int64{3, 4}) {
		t.Fatalf("recreated stream reads versions %v, want [3 4]", versions(got))
	}
	got, _ = s.ReadStream(ctx, "s", cairn.StreamEnd, 10, cairn.Backward)
	if !slices.Equal(versions(got), []int64{4, 3}) {
		t.Fatalf("recreated stream reads backward %v, want [4 3]", versions(got))
	}
	mustAppend(t, s, "s", cairn.Exact(4), ev("E"))
}

func testTombstone(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.Tombstoner](t, b, "Tombstoner")
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, evs(2, "E")...)
	if err := s.TombstoneStream(ctx, "s", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, "never-written", cairn.Any); err != nil {
		t.Fatalf("tombstoning a missing stream: %v", err)
	}
	mustAppend(t, s, "soft", cairn.NoStream, ev("E"))
	if err := s.DeleteStream(ctx, "soft", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, "soft", cairn.Any); err != nil {
		t.Fatalf("tombstoning a soft-deleted stream: %v", err)
	}
	if err := s.TombstoneStream(ctx, "s", cairn.Any); !errors.Is(err, cairn.ErrStreamDeleted) {
		t.Fatalf("tombstoning twice: %v, want ErrStreamDeleted", err)
	}
	for _, stream := range []string{"s", "never-written", "soft"} {
		for _, exp := range []cairn.ExpectedVersion{cairn.NoStream, cairn.Any, cairn.StreamExists, cairn.Exact(1)} {
			if _, err := s.Append(ctx, stream, exp, ev("E")); !errors.Is(err, cairn.ErrStreamDeleted) {
				t.Fatalf("append (%v) to tombstoned %q: %v, want ErrStreamDeleted", exp, stream, err)
			}
		}
		if _, err := s.ReadStream(ctx, stream, 0, 1, cairn.Forward); !errors.Is(err, cairn.ErrStreamDeleted) {
			t.Fatalf("read of tombstoned %q: %v, want ErrStreamDeleted", stream, err)
		}
		if err := s.DeleteStream(ctx, stream, cairn.Any); !errors.Is(err, cairn.ErrStreamDeleted) {
			t.Fatalf("delete of tombstoned %q: %v, want ErrStreamDeleted", stream, err)
		}
		if ok, err := s.StreamExists(ctx, stream); ok || err != nil {
			t.Fatalf("StreamExists(tombstoned %q) = %v, %v", stream, ok, err)
		}
	}
	if got := listStreams(t, s); len(got) != 0 {
		t.Fatalf("streams after tombstones = %v", got)
	}
	wantLogLen(t, s, 3)
}

func testDeleteExpectedVersion(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	ctx := context.Background()
	_, canTombstone := b.(cairn.Tombstoner)
	_, canSnapshot := b.(cairn.Snapshotter)
	mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...)
	if canSnapshot {
		if err := s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s", Version: 1, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, exp := range []cairn.ExpectedVersion{cairn.Exact(1), cairn.NoStream} {
		wantWrongVersion(t, s.DeleteStream(ctx, "s", exp), "s", exp, 2)
		if canTombstone {
			wantWrongVersion(t, s.TombstoneStream(ctx, "s", exp), "s", exp, 2)
		}
	}
	wantVersion(t, s, "s", 2)
	if err := s.DeleteStream(ctx, "missing", cairn.StreamExists); !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("delete of a missing stream expecting it to exist: %v", err)
	}
	if err := s.DeleteStream(ctx, "missing", cairn.NoStream); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("delete of a missing stream expecting none: %v, want ErrStreamNotFound", err)
	}
	if err := s.DeleteStream(ctx, "s", cairn.Exact(2)); err != nil {
		t.Fatalf("delete expecting the current version: %v", err)
	}
	wantVersion(t, s, "s", -1)
	if canSnapshot {
		if _, ok, err := s.GetSnapshot(ctx, "s", -1, 1<<62); ok || err != nil {
			t.Fatalf("the snapshot of a deleted stream is still there (%v, %v)", ok, err)
		}
	}
	// A deleted stream has no snapshot, also when one arrives late.
	if canSnapshot {
		if err := s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s", Version: 2, Data: []byte("late")}); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.GetSnapshot(ctx, "s", -1, 1<<62); ok || err != nil {
			t.Fatalf("a snapshot committed after the delete was kept (%v, %v)", ok, err)
		}
	}
	// The deleted stream expects "no stream" now.
	wantWrongVersion(t, s.DeleteStream(ctx, "s", cairn.Exact(2)), "s", cairn.Exact(2), -1)
	if !canTombstone {
		return
	}
	mustAppend(t, s, "h", cairn.NoStream, ev("E"))
	if canSnapshot {
		if err := s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "h", Version: 0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TombstoneStream(ctx, "h", cairn.Exact(0)); err != nil {
		t.Fatalf("tombstone expecting the current version: %v", err)
	}
	if canSnapshot {
		if _, ok, _ := s.GetSnapshot(ctx, "h", -1, 1<<62); ok {
			t.Fatal("the snapshot of a tombstoned stream is still there")
		}
	}
	if err := s.TombstoneStream(ctx, "never", cairn.NoStream); err != nil {
		t.Fatalf("tombstone of a missing stream expecting none: %v", err)
	}
	if err := s.TombstoneStream(ctx, "h", cairn.Any); !errors.Is(err, cairn.ErrStreamDeleted) {
		t.Fatalf("tombstone of a tombstoned stream: %v, want ErrStreamDeleted", err)
	}
}

func testTruncate(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.Truncater](t, b, "Truncater")
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, evs(10, "E")...)
	if err := s.TruncateStream(ctx, "s", 4); err != nil {
		t.Fatal(err)
	}
	got, _ := s.ReadStream(ctx, "s", 0, 100, cairn.Forward)
	if !slices.Equal(versions(got), seq[int64](4, 9)) {
		t.Fatalf("after truncate before 4, forward read = %v", versions(got))
	}
	got, _ = s.ReadStream(ctx, "s", cairn.StreamEnd, 100, cairn.Backward)
	if !slices.Equal(versions(got), seq[int64](9, 4)) {
		t.Fatalf("after truncate before 4, backward read = %v", versions(got))
	}
	wantVersion(t, s, "s", 9)
	if res := mustAppend(t, s, "s", cairn.Exact(9), ev("E")); res.Version != 10 {
		t.Fatalf("append after truncate got version %d, want 10", res.Version)
	}
	// Truncating everything keeps the stream and its version.
	if err := s.TruncateStream(ctx, "s", 100); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadStream(ctx, "s", 0, 100, cairn.Forward); err != nil || len(got) != 0 {
		t.Fatalf("fully truncated stream reads %d events, %v", len(got), err)
	}
	wantVersion(t, s, "s", 10)
	if err := s.TruncateStream(ctx, "missing", 1); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("truncating a missing stream: %v, want ErrStreamNotFound", err)
	}
}

func testAppendBatch(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.BatchAppender](t, b, "BatchAppender")
	ctx := context.Background()
	mustAppend(t, s, "b", cairn.NoStream, ev("E"))
	results, err := s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "a", Expected: cairn.NoStream, Events: evs(2, "E")},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: evs(3, "E")},
		cairn.AppendRequest{Stream: "c", Expected: cairn.Any, Events: evs(1, "E")},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{1, 3, 0}
	for i, r := range results {
		if r.Version != want[i] {
			t.Fatalf("results[%d].Version = %d, want %d", i, r.Version, want[i])
		}
	}
	if results[2].Position != 6 {
		t.Fatalf("last position %d, want 6: a batch is contiguous in the global log", results[2].Position)
	}
	logLen := len(readAll(t, s))

	// One failed expectation: nothing is written, and the outcomes say
	// which expectation failed.
	_, err = s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "a", Expected: cairn.Exact(1), Events: evs(1, "E")},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: evs(1, "E")},
		cairn.AppendRequest{Stream: "d", Expected: cairn.NoStream, Events: evs(1, "E")},
	)
	var be *cairn.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 3 {
		t.Fatalf("failed batch: %v, want a *BatchError with 3 outcomes", err)
	}
	if be.Errs[0] != nil || be.Errs[2] != nil {
		t.Fatalf("outcomes %v: requests 0 and 2 would have succeeded", be.Errs)
	}
	wantWrongVersion(t, be.Errs[1], "b", cairn.Exact(0), 3)
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatal("errors.Is(batch error, ErrWrongExpectedVersion) = false")
	}
	wantVersion(t, s, "a", 1)
	wantVersion(t, s, "d", -1)
	wantLogLen(t, s, logLen)
}

func testSnapshots(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.Snapshotter](t, b, "Snapshotter")
	ctx := context.Background()
	if _, ok, err := s.GetSnapshot(ctx, "acc", -1, 100); ok || err != nil {
		t.Fatalf("GetSnapshot with none stored = %v, %v", ok, err)
	}
	commit := func(v int64) {
		t.Helper()
		if err := s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "acc", Version: v, Data: fmt.Appendf(nil, "state@%d", v), Metadata: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(min, max int64) (int64, bool) {
		t.Helper()
		snap, ok, err := s.GetSnapshot(ctx, "acc", min, max)
		if err != nil {
			t.Fatal(err)
		}
		if ok && (string(snap.Data) != fmt.Sprintf("state@%d", snap.Version) || string(snap.Metadata) != "m" || snap.StreamID != "acc") {
			t.Fatalf("snapshot %+v does not hold what was committed", snap)
		}
		return snap.Version, ok
	}
	commit(5)
	commit(3) // older: ignored, and not an error
	if v, ok := get(-1, 100); !ok || v != 5 {
		t.Fatalf("after committing 5 then 3, snapshot version = %d (%v), want 5", v, ok)
	}
	commit(5) // same: ignored
	commit(7)
	bounds := []struct {
		min, max int64
		ok       bool
	}{
		{-1, 100, true}, {6, 7, true}, {6, 10, true}, {7, 10, false}, {0, 6, false}, {-1, 7, true},
	}
	for _, c := range bounds {
		if v, ok := get(c.min, c.max); ok != c.ok || (ok && v != 7) {
			t.Fatalf("GetSnapshot(min %d, max %d) = %d, %v; want found=%v (min < version ≤ max)", c.min, c.max, v, ok, c.ok)
		}
	}
	// Disconnected writers racing: the newest wins.
	var wg sync.WaitGroup
	for v := range 20 {
		wg.Go(func() { commit(int64(10 + v)) })
	}
	wg.Wait()
	if v, _ := get(-1, 1000); v != 29 {
		t.Fatalf("after racing commits of 10..29, version = %d, want 29", v)
	}
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

func testCommitAll(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	_, canRead := b.(cairn.ReadModelReader)
	ctx := context.Background()
	balance := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		for _, e := range events {
			old, _, err := tx.Get(ctx, "balances", e.StreamID)
			if err != nil {
				return err
			}
			n := len(old) + 1
			if err := tx.Put(ctx, "balances", e.StreamID, make([]byte, n)); err != nil {
				return err
			}
			// A transaction reads its own writes.
			if got, ok, err := tx.Get(ctx, "balances", e.StreamID); err != nil || !ok || len(got) != n {
				return fmt.Errorf("read own write: %d bytes, %v, %v", len(got), ok, err)
			}
			if e.StreamID == "" || e.Type == "" {
				return fmt.Errorf("projection got an incomplete event %+v", e)
			}
		}
		return tx.Put(ctx, "audit", fmt.Sprintf("%s@%d", events[0].StreamID, events[0].Version), []byte(events[0].Type))
	}
	res, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.NoStream, Events: evs(3, "Deposited")}, balance)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 {
		t.Fatalf("CommitAll returned version %d, want 2", res.Version)
	}
	if canRead {
		v, ok, err := s.ReadModelGet(ctx, "balances", "acc-1")
		if err != nil || !ok || len(v) != 3 {
			t.Fatalf("read model after commit = %d bytes, %v, %v; want 3", len(v), ok, err)
		}
	}
	logLen := len(readAll(t, s))

	boom := errors.New("projection failed")
	failing := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		if err := tx.Put(ctx, "balances", "acc-1", []byte("garbage")); err != nil {
			return err
		}
		return boom
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.Exact(2), Events: evs(1, "Deposited")}, balance, failing)
	if !errors.Is(err, boom) {
		t.Fatalf("CommitAll with a failing projection: %v, want the projection's error", err)
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.Exact(0), Events: evs(1, "Deposited")}, balance)
	wantWrongVersion(t, err, "acc-1", cairn.Exact(0), 2)
	wantVersion(t, s, "acc-1", 2)
	wantLogLen(t, s, logLen)
	if canRead {
		v, ok, err := s.ReadModelGet(ctx, "balances", "acc-1")
		if err != nil || !ok || len(v) != 3 {
			t.Fatalf("read model after failed commits = %q, %v, %v; want the 3-byte value", v, ok, err)
		}
		var keys []string
		for e, err := range s.ReadModel(ctx, "audit", "acc-") {
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, e.Key)
		}
		if !slices.Equal(keys, []string{"acc-1@0"}) {
			t.Fatalf("audit table = %v", keys)
		}
	}
}

func testBadInput(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{MaxEventBytes: 1024})
	ctx := context.Background()
	dupID := uuid.New()
	cases := []struct {
		name  string
		field string
		call  func() error
	}{
		{"empty stream", "stream", func() error { _, err := s.Append(ctx, "", cairn.Any, ev("E")); return err }},
		{"reserved stream", "stream", func() error { _, err := s.Append(ctx, "$all", cairn.Any, ev("E")); return err }},
		{"control character", "stream", func() error { _, err := s.Append(ctx, "a\x00b", cairn.Any, ev("E")); return err }},
		{"long stream", "stream", func() error {
			_, err := s.Append(ctx, strings.Repeat("x", cairn.MaxStreamIDBytes+1), cairn.Any, ev("E"))
			return err
		}},
		{"invalid UTF-8", "stream", func() error { _, err := s.Append(ctx, "a\xffb", cairn.Any, ev("E")); return err }},
		{"no events", "events", func() error { _, err := s.Append(ctx, "s", cairn.Any); return err }},
		{"empty type", "events[1].type", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, ev("E"), cairn.EventData{Data: []byte("{}")})
			return err
		}},
		{"long type", "events[0].type", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, ev(strings.Repeat("t", cairn.MaxTypeBytes+1)))
			return err
		}},
		{"oversized event", "events[0]", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "Big", Data: make([]byte, 1025)})
			return err
		}},
		{"empty tag", "events[0].tags[1]", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "T", Tags: []string{"ok", ""}})
			return err
		}},
		{"unknown content type", "events[0].content_type", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "T", ContentType: 9})
			return err
		}},
		{"duplicate ids", "events[1].id", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{ID: dupID, Type: "T"}, cairn.EventData{ID: dupID, Type: "T"})
			return err
		}},
		{"bad expected version", "expected", func() error { _, err := s.Append(ctx, "s", cairn.Exact(-3), ev("E")); return err }},
		{"empty batch", "requests", func() error { _, err := s.AppendBatch(ctx); return err }},
		{"batch repeats a stream", "requests[1].stream", func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "s", Events: evs(1, "E")},
				cairn.AppendRequest{Stream: "s", Events: evs(1, "E")})
			return err
		}},
		{"batch repeats an event id", "requests[1].events[0].id", func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "s", Events: []cairn.EventData{{ID: dupID, Type: "T"}}},
				cairn.AppendRequest{Stream: "t", Events: []cairn.EventData{{ID: dupID, Type: "T"}}})
			return err
		}},
		{"batch with a bad event", "events[0].type", func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "s", Events: evs(1, "E")},
				cairn.AppendRequest{Stream: "t", Events: []cairn.EventData{{}}})
			return err
		}},
		{"commit with a nil projection", "projections[0]", func() error {
			_, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Events: evs(1, "E")}, nil)
			return err
		}},
		{"zero count", "count", func() error { _, err := s.ReadStream(ctx, "s", 0, 0, cairn.Forward); return err }},
		{"negative count", "count", func() error { _, err := s.ReadAll(ctx, 0, -1, cairn.Forward); return err }},
		{"unknown direction", "direction", func() error { _, err := s.ReadAll(ctx, 0, 1, cairn.Direction(7)); return err }},
		{"negative from", "from", func() error { _, err := s.ReadStream(ctx, "s", -2, 1, cairn.Backward); return err }},
		{"forward from the end", "from", func() error { _, err := s.ReadStream(ctx, "s", cairn.StreamEnd, 1, cairn.Forward); return err }},
		{"negative truncate", "before", func() error { return s.TruncateStream(ctx, "s", -1) }},
		{"delete reserved", "stream", func() error { return s.DeleteStream(ctx, "$all", cairn.Any) }},
		{"delete expected version", "expected", func() error { return s.DeleteStream(ctx, "s", cairn.Exact(-7)) }},
		{"snapshot version", "snapshot version", func() error {
			return s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s", Version: -1})
		}},
		{"snapshot bounds", "max", func() error { _, _, err := s.GetSnapshot(ctx, "s", 5, 1); return err }},
		{"read model table", "table", func() error { _, _, err := s.ReadModelGet(ctx, "", "k"); return err }},
	}
	for _, c := range cases {
		err := c.call()
		var iae *cairn.InvalidArgumentError
		if !errors.Is(err, cairn.ErrInvalidArgument) || !errors.As(err, &iae) {
			t.Errorf("%s: error %v, want an InvalidArgumentError", c.name, err)
			continue
		}
		if iae.Field != c.field || iae.Reason == "" || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %q names field %q, want %q and a reason", c.name, err, iae.Field, c.field)
		}
	}
	var bad []error
	for _, err := range s.Stream(ctx, "s", -5, cairn.Forward) {
		bad = append(bad, err)
	}
	if len(bad) != 1 || !errors.Is(bad[0], cairn.ErrInvalidArgument) {
		t.Errorf("Stream with a bad start yielded %v", bad)
	}
	if has, err := b.HasEvents(ctx); has || err != nil {
		t.Fatalf("after only bad input, HasEvents = %v, %v; nothing may be written", has, err)
	}
	if sn, ok := b.(cairn.Snapshotter); ok {
		if _, found, _ := sn.GetSnapshot(ctx, "s", -1, 1<<62); found {
			t.Fatal("a rejected snapshot was stored")
		}
	}
}

func listStreams(t *testing.T, s *cairn.Store) []string {
	t.Helper()
	var out []string
	for id, err := range s.Streams(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
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

func testNotification(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	changed := s.Changes()
	select {
	case <-changed:
		t.Fatal("Changes fired before any append")
	default:
	}
	res := mustAppend(t, s, "s", cairn.NoStream, evs(2, "E")...)
	select {
	case <-changed:
	default:
		t.Fatal("Changes did not fire when Append returned")
	}
	if head, ok := s.Head(); !ok || head < res.Position {
		t.Fatalf("Head = %d, %v; want at least %d", head, ok, res.Position)
	}
}

func testCancelledContext(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, "s", cairn.Any, ev("E")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.ReadAll(ctx, 0, 10, cairn.Forward); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAll with a cancelled context: %v, want context.Canceled", err)
	}
	wantVersion(t, s, "s", -1)
}

func testCompact(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.Compacter](t, b, "Compacter")
	ctx := context.Background()
	mustAppend(t, s, "gone", cairn.NoStream, evs(20, "E")...)
	mustAppend(t, s, "cut", cairn.NoStream, evs(20, "E")...)
	mustAppend(t, s, "kept", cairn.NoStream, evs(5, "E")...)
	if err := s.DeleteStream(ctx, "gone", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(cairn.Truncater); ok {
		if err := s.TruncateStream(ctx, "cut", 15); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	wantVersion(t, s, "gone", -1)
	wantVersion(t, s, "cut", 19)
	got, err := readStream(s, "kept")
	if err != nil || !slices.Equal(versions(got), seq[int64](0, 4)) {
		t.Fatalf("kept stream after compaction = %v, %v", versions(got), err)
	}
	if _, ok := b.(cairn.Truncater); ok {
		got, _ = readStream(s, "cut")
		if !slices.Equal(versions(got), seq[int64](15, 19)) {
			t.Fatalf("truncated stream after compaction = %v", versions(got))
		}
	}
	// The log stays in order, and positions are never reused.
	log := readAll(t, s)
	for i := 1; i < len(log); i++ {
		if log[i].Position <= log[i-1].Position {
			t.Fatalf("log out of order after compaction at %d: %d then %d", i, log[i-1].Position, log[i].Position)
		}
	}
	if res := mustAppend(t, s, "gone", cairn.NoStream, ev("E")); res.Position != 45 || res.Version != 20 {
		t.Fatalf("append after compaction = %+v, want position 45 version 20", res)
	}
}

func testHealthAndSize(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	ctx := context.Background()
	if err := s.Health(ctx); err != nil {
		t.Fatalf("Health of a fresh store: %v", err)
	}
	if _, ok := b.(cairn.DiskSizer); !ok {
		return
	}
	if n, err := s.DiskBytes(ctx); err != nil || n < 0 {
		t.Fatalf("DiskBytes = %d, %v", n, err)
	}
}

func testClose(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, ev("E"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Append(ctx, "s", cairn.Any, ev("E")); !errors.Is(err, cairn.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, 0, 1, cairn.Forward); !errors.Is(err, cairn.ErrClosed) {
		t.Fatalf("ReadAll after Close: %v, want ErrClosed", err)
	}
}
