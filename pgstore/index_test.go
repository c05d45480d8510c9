package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// wantIndex returns the lists cairn.IndexKeys gives for events, which must
// be every event ever written, in position order: key → positions.
func wantIndex(events []cairn.Event) map[cairn.IndexKey][]uint64 {
	want := map[cairn.IndexKey][]uint64{}
	for _, e := range events {
		for _, k := range cairn.IndexKeys(nil, e.StreamID, e.Version, &e.EventData) {
			want[k] = append(want[k], e.Position)
		}
	}
	return want
}

// checkIndex reads every list of want with ReadIndex, whole and in pages,
// forward and backward, and compares it with want: numbers from 0, the
// positions of want, and the event itself where it is still stored (in
// stored, by position) or Found false where it is not.
func checkIndex(t *testing.T, s *pgstore.Store, want map[cairn.IndexKey][]uint64, stored map[uint64]cairn.Event) {
	t.Helper()
	ctx := context.Background()
	for key, positions := range want {
		wantEntry := func(n int64) cairn.IndexedEvent {
			p := positions[n]
			e, ok := stored[p]
			return cairn.IndexedEvent{Number: n, Position: p, Event: e, Found: ok}
		}
		same := func(got cairn.IndexedEvent, w cairn.IndexedEvent) bool {
			return got.Number == w.Number && got.Position == w.Position && got.Found == w.Found &&
				(!w.Found || (got.Event.ID == w.Event.ID && got.Event.Position == w.Event.Position &&
					got.Event.StreamID == w.Event.StreamID && got.Event.Version == w.Event.Version &&
					got.Event.Type == w.Event.Type && slices.Equal(got.Event.Tags, w.Event.Tags) &&
					string(got.Event.Data) == string(w.Event.Data)))
		}
		n := int64(len(positions))
		pages := []int{len(positions) + 5, 7}
		if len(positions) <= 40 {
			pages = append(pages, 1)
		}
		for _, page := range pages {
			// Forward from 0, page by page.
			var got []cairn.IndexedEvent
			for from := int64(0); ; {
				p, err := s.ReadIndex(ctx, key, from, page, cairn.Forward)
				if err != nil {
					t.Fatalf("ReadIndex %v from %d: %v", key, from, err)
				}
				if len(p) > page {
					t.Fatalf("ReadIndex %v from %d count %d: %d entries", key, from, page, len(p))
				}
				got = append(got, p...)
				if len(p) < page {
					break
				}
				from = p[len(p)-1].Number + 1
			}
			if int64(len(got)) != n {
				t.Fatalf("ReadIndex %v forward in pages of %d: %d entries, want %d", key, page, len(got), n)
			}
			for i, g := range got {
				if w := wantEntry(int64(i)); !same(g, w) {
					t.Fatalf("ReadIndex %v forward in pages of %d: entry %d = %+v, want %+v", key, page, i, g, w)
				}
			}
			// Backward from StreamEnd, page by page.
			got = got[:0]
			for from := cairn.StreamEnd; ; {
				p, err := s.ReadIndex(ctx, key, from, page, cairn.Backward)
				if err != nil {
					t.Fatalf("ReadIndex %v backward from %d: %v", key, from, err)
				}
				got = append(got, p...)
				if len(p) < page || p[len(p)-1].Number == 0 {
					break
				}
				from = p[len(p)-1].Number - 1
			}
			if int64(len(got)) != n {
				t.Fatalf("ReadIndex %v backward in pages of %d: %d entries, want %d", key, page, len(got), n)
			}
			for i, g := range got {
				if w := wantEntry(n - 1 - int64(i)); !same(g, w) {
					t.Fatalf("ReadIndex %v backward in pages of %d: entry %d = %+v, want %+v", key, page, i, g, w)
				}
			}
		}
		// Past the end: nothing, no error.
		if got, err := s.ReadIndex(ctx, key, n, 10, cairn.Forward); err != nil || len(got) != 0 {
			t.Fatalf("ReadIndex %v from its length: %v, %v", key, got, err)
		}
	}
}

// allEvents reads the whole log.
func allEvents(t *testing.T, s cairn.Backend) []cairn.Event {
	t.Helper()
	events, err := s.ReadAll(context.Background(), 0, 1<<30, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func byPosition(events []cairn.Event) map[uint64]cairn.Event {
	m := make(map[uint64]cairn.Event, len(events))
	for _, e := range events {
		m[e.Position] = e
	}
	return m
}

// TestIndexFilesEveryEvent writes through every path that writes events
// (single appends, alone and grouped; batches; commits with projections),
// to streams of categories and system streams, events with and without
// tags and correlation ids (long ones and ones with control characters
// too), then deletes, truncates, tombstones and compacts: every list must
// hold what cairn.IndexKeys says, numbered from 0 in position order, and
// keep its entries for events that are gone.
func TestIndexFilesEveryEvent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ev := func(typ string, tags []string, meta string) cairn.EventData {
		e := cairn.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{"x":1}`), Tags: tags}
		if meta != "" {
			e.Metadata = []byte(meta)
		}
		return e
	}
	long := strings.Repeat("c", 3000)
	appends := []cairn.AppendRequest{
		{Stream: "order-1", Events: []cairn.EventData{ev("Placed", []string{"customer:7"}, `{"$correlationId":"k1"}`), ev("Paid", nil, `{"$correlationId":"k1"}`)}},
		{Stream: "order-2", Events: []cairn.EventData{ev("Placed", []string{"customer:8", "region:eu", "customer:8"}, ""), ev("Placed", []string{"customer:8"}, "")}},
		{Stream: "nocategory", Events: []cairn.EventData{ev("Placed", nil, `{"$correlationId":"`+long+`"}`)}},
		{Stream: "$system-1", Events: []cairn.EventData{ev("$Sys", []string{"customer:7"}, `{"$correlationId":"k1"}`)}},
		{Stream: "user-1", Events: []cairn.EventData{ev("Registered", nil, `{"$correlationId":"a\u0000b\u001fc"}`), ev("Registered", nil, `{"$correlationId":""}`), ev("Renamed", nil, `{"$correlationId":7}`)}},
	}
	for _, r := range appends {
		if _, err := s.Append(ctx, r.Stream, cairn.Any, r.Events); err != nil {
			t.Fatal(err)
		}
	}
	// A large append of one type: long runs, split over many chunks.
	big := make([]cairn.EventData, 1500)
	for i := range big {
		big[i] = ev("Bulk", nil, "")
		if i%500 == 499 {
			big[i].Tags = []string{"mark"}
		}
	}
	if _, err := s.Append(ctx, "bulk-1", cairn.NoStream, big); err != nil {
		t.Fatal(err)
	}
	// Grouped appends: many writers at once, several to a category.
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 5 {
				if _, err := s.Append(ctx, fmt.Sprintf("order-g%d", w%4), cairn.Any, []cairn.EventData{ev("Placed", []string{fmt.Sprint("w:", w)}, "")}); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	// A batch, a batch of one, a commit with a projection.
	if _, err := s.AppendBatch(ctx, []cairn.AppendRequest{
		{Stream: "order-1", Expected: cairn.Exact(1), Events: []cairn.EventData{ev("Shipped", []string{"customer:7"}, "")}},
		{Stream: "order-3", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", nil, ""), ev("Paid", nil, "")}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []cairn.AppendRequest{{Stream: "order-4", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", nil, "")}}}); err != nil {
		t.Fatal(err)
	}
	proj := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		return tx.Put(ctx, "counts", "n", fmt.Append(nil, len(events)))
	}
	if _, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "order-5", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", []string{"customer:7"}, "")}}, []cairn.Projection{proj}); err != nil {
		t.Fatal(err)
	}
	// Failed appends file nothing.
	if _, err := s.Append(ctx, "order-1", cairn.NoStream, []cairn.EventData{ev("Placed", nil, "")}); err == nil {
		t.Fatal("append expecting no stream to an existing one succeeded")
	}
	if _, err := s.AppendBatch(ctx, []cairn.AppendRequest{
		{Stream: "order-6", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", nil, "")}},
		{Stream: "order-1", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", nil, "")}},
	}); err == nil {
		t.Fatal("batch with a failing request succeeded")
	}
	if _, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "order-7", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", nil, "")}},
		[]cairn.Projection{func(context.Context, cairn.Tx, []cairn.Event) error { return fmt.Errorf("no") }}); err == nil {
		t.Fatal("commit with a failing projection succeeded")
	}

	// A soft-deleted stream recreated continues its versions: its new
	// first event is not version 0, and is not filed as a new stream.
	if err := s.DeleteStream(ctx, "order-3", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "order-3", cairn.NoStream, []cairn.EventData{ev("Placed", nil, "")}); err != nil {
		t.Fatal(err)
	}
	written := allEvents(t, s)
	want := wantIndex(written)
	if len(want[cairn.IndexKey{Kind: cairn.IndexStreams}]) != 12 {
		t.Fatalf("test setup: %d streams filed", len(want[cairn.IndexKey{Kind: cairn.IndexStreams}]))
	}
	checkIndex(t, s, want, byPosition(written))

	// Deletes, truncations and tombstones change no list; compaction
	// keeps every entry, and the events it removed read as not found.
	if err := s.TruncateStream(ctx, "bulk-1", 700); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "order-2", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, "user-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	checkIndex(t, s, want, byPosition(written))
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	stored := byPosition(allEvents(t, s))
	if len(stored) >= len(written) {
		t.Fatalf("test setup: compaction removed nothing")
	}
	checkIndex(t, s, want, stored)

	// Appends after compaction go on numbering.
	if _, err := s.Append(ctx, "bulk-2", cairn.NoStream, []cairn.EventData{ev("Bulk", []string{"mark"}, "")}); err != nil {
		t.Fatal(err)
	}
	written = append(written, allEvents(t, s)[len(stored):]...)
	checkIndex(t, s, wantIndex(written), byPosition(allEvents(t, s)))

	// A list nobody wrote is empty.
	got, err := s.ReadIndex(ctx, cairn.IndexKey{Kind: cairn.IndexTag, Value: "none"}, 0, 10, cairn.Forward)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadIndex of an empty list: %v, %v", got, err)
	}
}

// TestIndexRunsStayFew checks that the index is written in runs: an append
// of 1000 events of one type to one stream adds a row per key (its type,
// its category and, as the stream's first append, the two stream lists),
// an append whose events continue the last run of a key lengthens it
// rather than add a row, and appends grouped together share their rows.
func TestIndexRunsStayFew(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	rowsNow := func() int {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema(), "index_runs"}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	events := func(n int) []cairn.EventData {
		out := make([]cairn.EventData, n)
		for i := range out {
			out[i] = cairn.EventData{ID: uuid.New(), Type: "Bulk", ContentType: cairn.ContentBinary, Data: make([]byte, 256)}
		}
		return out
	}
	if _, err := s.Append(ctx, "bulk-1", cairn.NoStream, events(1000)); err != nil {
		t.Fatal(err)
	}
	if n := rowsNow(); n != 4 {
		t.Fatalf("the first append of 1000 events wrote %d index rows, want 4", n)
	}
	if _, err := s.Append(ctx, "bulk-1", cairn.Exact(999), events(1000)); err != nil {
		t.Fatal(err)
	}
	if n := rowsNow(); n != 4 {
		t.Fatalf("a second append of 1000 events, continuing the runs of its type and category, made %d index rows, want 4", n)
	}
	checkIndex(t, s, wantIndex(allEvents(t, s)), byPosition(allEvents(t, s)))
	// A batch of appends to two streams of one category: one run per key.
	if _, err := s.AppendBatch(ctx, []cairn.AppendRequest{
		{Stream: "bulk-1", Expected: cairn.Exact(1999), Events: events(10)},
		{Stream: "bulk-2", Expected: cairn.NoStream, Events: events(10)},
	}); err != nil {
		t.Fatal(err)
	}
	// Type and category (one run each for the 20 events); bulk-2's first
	// event in the two stream lists.
	if n := rowsNow(); n != 8 {
		t.Fatalf("a batch of two appends of one category and type made %d index rows, want 8", n)
	}
}

// TestIndexGaplessUnderConcurrency races writers through three engines (as
// three processes would), single appends and batches, on streams of one
// category and a shared tag, against a follower reading the category's
// list by number through a fourth: the numbers of a list are dense, given
// in position order, and a reader never sees a number before a smaller
// one.
func TestIndexGaplessUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.Schema(t, "cairn_test")
	engines := []*pgstore.Store{
		openSchema(t, schema, pgstore.Options{MaxConns: 6}),
		openSchema(t, schema, pgstore.Options{MaxConns: 6}),
		openSchema(t, schema, pgstore.Options{MaxConns: 6}),
	}
	follower := openSchema(t, schema, pgstore.Options{})
	key := cairn.IndexKey{Kind: cairn.IndexCategory, Value: "acct"}
	const writers, appends = 12, 20
	var wg sync.WaitGroup
	total := 0
	for w := range writers {
		s := engines[w%len(engines)]
		n := 1 + w%3
		total += appends * n
		wg.Go(func() {
			for i := range appends {
				events := make([]cairn.EventData, n)
				for k := range events {
					events[k] = cairn.EventData{ID: uuid.New(), Type: "Moved", Tags: []string{"shared"}}
				}
				var err error
				if w%2 == 0 {
					_, err = s.Append(ctx, fmt.Sprintf("acct-%d", w), cairn.Any, events)
				} else {
					reqs := []cairn.AppendRequest{{Stream: fmt.Sprintf("acct-%d", w), Expected: cairn.Any, Events: events[:1]}}
					if n > 1 {
						reqs = append(reqs, cairn.AppendRequest{Stream: fmt.Sprintf("acct-%d-%d", w, i), Expected: cairn.NoStream, Events: events[1:]})
					}
					_, err = s.AppendBatch(ctx, reqs)
				}
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
			}
		})
	}
	// The follower reads the list by number as it grows.
	done := make(chan struct{})
	var followErr error
	go func() {
		defer close(done)
		next, last := int64(0), int64(-1)
		for next < int64(total) {
			got, err := follower.ReadIndex(ctx, key, next, 7, cairn.Forward)
			if err != nil {
				followErr = err
				return
			}
			for _, e := range got {
				if e.Number != next || int64(e.Position) <= last || !e.Found {
					followErr = fmt.Errorf("follower read entry %+v after number %d at position %d", e, next-1, last)
					return
				}
				next, last = next+1, int64(e.Position)
			}
		}
	}()
	wg.Wait()
	<-done
	if followErr != nil {
		t.Fatal(followErr)
	}
	written := allEvents(t, follower)
	if len(written) != total {
		t.Fatalf("%d events written, want %d", len(written), total)
	}
	checkIndex(t, follower, wantIndex(written), byPosition(written))
}

// queryMatches is the rule of ReadQuery and append conditions.
func queryMatches(q cairn.Query, e cairn.Event) bool { return q.Matches(&e) }

// TestReadQuery compares ReadQuery with a filter of the whole log, over
// random queries mixing types and tags, forward and backward from every
// kind of start, with counts small and large, before and after compaction.
func TestReadQuery(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{"A", "B", "C"}
	tags := []string{"t1", "t2", "t3", "t4"}
	for i := range 120 {
		n := 1 + rng.IntN(4)
		if i%40 == 0 {
			n = 60 // some long runs
		}
		events := make([]cairn.EventData, n)
		typ := types[rng.IntN(len(types))]
		for k := range events {
			e := cairn.EventData{ID: uuid.New(), Type: typ, Data: fmt.Appendf(nil, `{"i":%d}`, i)}
			if rng.IntN(3) == 0 {
				e.Type = types[rng.IntN(len(types))]
			}
			for _, tg := range tags {
				if rng.IntN(3) == 0 {
					e.Tags = append(e.Tags, tg)
				}
			}
			events[k] = e
		}
		stream := fmt.Sprintf("s-%d", rng.IntN(10))
		if i%17 == 0 {
			stream = "$sys"
		}
		if _, err := s.Append(ctx, stream, cairn.Any, events); err != nil {
			t.Fatal(err)
		}
	}
	randomQuery := func() cairn.Query {
		var q cairn.Query
		for range 1 + rng.IntN(3) {
			var it cairn.QueryItem
			for _, ty := range types {
				if rng.IntN(3) == 0 {
					it.Types = append(it.Types, ty)
				}
			}
			for _, tg := range tags {
				if rng.IntN(3) == 0 {
					it.Tags = append(it.Tags, tg)
				}
			}
			if len(it.Types)+len(it.Tags) == 0 {
				it.Tags = []string{tags[rng.IntN(len(tags))]}
			}
			q.Items = append(q.Items, it)
		}
		return q
	}
	check := func(stage string) {
		all := allEvents(t, s)
		head := all[len(all)-1].Position
		for range 150 {
			q := randomQuery()
			if rng.IntN(30) == 0 {
				q = cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"nobody"}}, {}}} // matches every event
			}
			var match []cairn.Event
			for _, e := range all {
				if queryMatches(q, e) {
					match = append(match, e)
				}
			}
			count := []int{1, 5, 1000}[rng.IntN(3)]
			dir := cairn.Direction(rng.IntN(2))
			from := uint64(rng.IntN(int(head) + 3))
			if dir == cairn.Backward && rng.IntN(3) == 0 {
				from = cairn.LogEnd
			}
			var want []cairn.Event
			if dir == cairn.Forward {
				for _, e := range match {
					if e.Position >= from && len(want) < count {
						want = append(want, e)
					}
				}
			} else {
				for i := len(match) - 1; i >= 0; i-- {
					if e := match[i]; e.Position <= from && len(want) < count {
						want = append(want, e)
					}
				}
			}
			got, err := s.ReadQuery(ctx, q, from, count, dir)
			if err != nil {
				t.Fatalf("%s: ReadQuery(%+v, %d, %d, %v): %v", stage, q, from, count, dir, err)
			}
			if !slices.EqualFunc(got, want, func(a, b cairn.Event) bool {
				return a.Position == b.Position && a.ID == b.ID && a.Type == b.Type && slices.Equal(a.Tags, b.Tags) && string(a.Data) == string(b.Data)
			}) {
				t.Fatalf("%s: ReadQuery(%+v, %d, %d, %v) = %v, want %v", stage, q, from, count, dir, positions(got), positions(want))
			}
		}
	}
	check("before compaction")
	for i := range 10 {
		if err := s.TruncateStream(ctx, fmt.Sprintf("s-%d", i), int64(rng.IntN(20))); err != nil && i < 5 {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	check("after compaction")
}

func positions(events []cairn.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}
