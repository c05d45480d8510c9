package storetest

// Rules of the index (cairn.IndexReader): its numbering, which events it
// files under which keys, and its reads.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

// Helpers for the index and query rules.

func tagged(typ string, tags ...string) cairn.EventData {
	return cairn.EventData{Type: typ, Data: []byte(`{}`), Tags: tags}
}

func query(items ...cairn.QueryItem) cairn.Query { return cairn.Query{Items: items} }

func byTags(tags ...string) cairn.QueryItem { return cairn.QueryItem{Tags: tags} }

func byTypes(types ...string) cairn.QueryItem { return cairn.QueryItem{Types: types} }

func tagKey(tag string) cairn.IndexKey { return cairn.IndexKey{Kind: cairn.IndexTag, Value: tag} }

// readIndex returns the whole list of key, forward, through the iterator.
func readIndex(t *testing.T, s *cairn.Store, key cairn.IndexKey) []cairn.IndexedEvent {
	t.Helper()
	var out []cairn.IndexedEvent
	for e, err := range s.Index(context.Background(), key, 0, cairn.Forward) {
		if err != nil {
			t.Fatalf("Index(%v): %v", key, err)
		}
		out = append(out, e)
	}
	return out
}

func entryPositions(entries []cairn.IndexedEvent) []uint64 {
	out := make([]uint64, len(entries))
	for i, e := range entries {
		out[i] = e.Position
	}
	return out
}

func entryNumbers(entries []cairn.IndexedEvent) []int64 {
	out := make([]int64, len(entries))
	for i, e := range entries {
		out[i] = e.Number
	}
	return out
}

// wantList checks that the list of key holds the positions want, numbered
// from 0, and that each entry is Found exactly when ReadAll still returns
// its event, with that event.
func wantList(t *testing.T, s *cairn.Store, key cairn.IndexKey, want []uint64) {
	t.Helper()
	log := map[uint64]cairn.Event{}
	for _, e := range readAll(t, s) {
		log[e.Position] = e
	}
	got := readIndex(t, s, key)
	if !slices.Equal(entryPositions(got), want) {
		t.Fatalf("list %s %q holds positions %v, want %v", key.Kind, key.Value, entryPositions(got), want)
	}
	for i, e := range got {
		if e.Number != int64(i) {
			t.Fatalf("list %s %q: entry %d has number %d: numbers start at 0 with no gaps", key.Kind, key.Value, i, e.Number)
		}
		stored, ok := log[e.Position]
		if e.Found != ok {
			t.Fatalf("list %s %q: entry %d (position %d) Found = %v, but ReadAll has the event: %v", key.Kind, key.Value, i, e.Position, e.Found, ok)
		}
		if ok && (e.Event.ID != stored.ID || e.Event.Position != stored.Position || e.Event.StreamID != stored.StreamID || e.Event.Version != stored.Version) {
			t.Fatalf("list %s %q: entry %d is %s@%d (position %d), the log has %s@%d there",
				key.Kind, key.Value, i, e.Event.StreamID, e.Event.Version, e.Event.Position, stored.StreamID, stored.Version)
		}
	}
}

// testIndexNumbering: each list is numbered from 0 in commit order with no
// gaps, and deletes, truncations, tombstones and compaction change neither
// its entries nor their numbers; an entry's Found says whether its event is
// still stored.
func testIndexNumbering(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.IndexReader](t, b, "IndexReader")
	ctx := context.Background()
	mustAppend(t, s, "order-1", cairn.NoStream, tagged("Placed", "t"), tagged("Paid", "t"))   // 0 1
	mustAppend(t, s, "invoice-1", cairn.NoStream, tagged("Sent"))                             // 2
	mustAppend(t, s, "order-2", cairn.NoStream, tagged("Placed", "t"), tagged("Placed", "t")) // 3 4
	if _, ok := b.(cairn.BatchAppender); ok {
		if _, err := s.AppendBatch(ctx,
			cairn.AppendRequest{Stream: "order-3", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("Placed")}},       // 5
			cairn.AppendRequest{Stream: "order-1", Expected: cairn.Exact(1), Events: []cairn.EventData{tagged("Shipped", "t")}}, // 6
		); err != nil {
			t.Fatal(err)
		}
	} else {
		mustAppend(t, s, "order-3", cairn.NoStream, tagged("Placed"))
		mustAppend(t, s, "order-1", cairn.Exact(1), tagged("Shipped", "t"))
	}
	category := cairn.IndexKey{Kind: cairn.IndexCategory, Value: "order"}
	placed := cairn.IndexKey{Kind: cairn.IndexType, Value: "Placed"}
	streams := cairn.IndexKey{Kind: cairn.IndexStreams}
	orderStreams := cairn.IndexKey{Kind: cairn.IndexCategoryStreams, Value: "order"}
	lists := []struct {
		key  cairn.IndexKey
		want []uint64
	}{
		{category, []uint64{0, 1, 3, 4, 5, 6}},
		{placed, []uint64{0, 3, 4, 5}},
		{tagKey("t"), []uint64{0, 1, 3, 4, 6}},
		{streams, []uint64{0, 2, 3, 5}},
		{orderStreams, []uint64{0, 3, 5}},
	}
	check := func(when string) {
		t.Helper()
		for _, l := range lists {
			t.Run(fmt.Sprintf("%s/%s %s", when, l.key.Kind, l.key.Value), func(t *testing.T) { wantList(t, s, l.key, l.want) })
		}
	}
	check("after appends")

	// A failed append files nothing.
	if _, err := s.Append(ctx, "order-1", cairn.Exact(0), tagged("Placed", "t")); !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("append with a stale version: %v", err)
	}
	check("after a failed append")

	if err := s.DeleteStream(ctx, "order-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(cairn.Truncater); ok {
		if err := s.TruncateStream(ctx, "order-2", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := b.(cairn.Tombstoner); ok {
		if err := s.TombstoneStream(ctx, "invoice-1", cairn.Any); err != nil {
			t.Fatal(err)
		}
	}
	check("after a delete, a truncation and a tombstone")
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	check("after compaction")

	// New entries continue the numbering; a recreated stream's first event
	// is not version 0, so the streams lists do not file it again.
	res := mustAppend(t, s, "order-1", cairn.NoStream, tagged("Placed", "t"))
	if res.Version == 0 {
		t.Fatalf("the recreated stream's first event has version 0")
	}
	mustAppend(t, s, "order-4", cairn.NoStream, tagged("Placed"))
	lists[0].want = append(lists[0].want, res.Position, res.Position+1)
	lists[1].want = append(lists[1].want, res.Position, res.Position+1)
	lists[2].want = append(lists[2].want, res.Position)
	lists[3].want = append(lists[3].want, res.Position+1)
	lists[4].want = append(lists[4].want, res.Position+1)
	check("after appends that follow compaction")
}

// testIndexParity: every event is in exactly the lists cairn.IndexKeys
// names for it: its tags (once each, also for system streams), its type,
// its category, the streams lists for a stream's first event, and its
// correlation id.
func testIndexParity(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.IndexReader](t, b, "IndexReader")
	corr := func(typ, meta string, tags ...string) cairn.EventData {
		e := tagged(typ, tags...)
		e.Metadata = []byte(meta)
		return e
	}
	mustAppend(t, s, "order-1", cairn.NoStream, tagged("Placed", "a", "b", "a"), corr("Paid", `{"$correlationId":"c-1"}`, "b"))
	mustAppend(t, s, "order-1-x", cairn.NoStream, corr("Placed", `{"$correlationId":"c-1","x":[1,2]}`))
	mustAppend(t, s, "nocategory", cairn.NoStream, corr("Placed", `{"$correlationId":7}`, "a"), corr("Odd", `not json "$correlationId"`))
	mustAppend(t, s, "-leading", cairn.NoStream, corr("Placed", `{"$correlationId":""}`))
	system := appendSystem(t, s, "$users", tagged("UserCreated", "a", "u"), tagged("Placed"))
	mustAppend(t, s, "user-1", cairn.NoStream, corr("UserCreated", `{"$correlationId":"c-2"}`, "u"))
	mustAppend(t, s, "order-2", cairn.Any, tagged("Placed", "b"))
	mustAppend(t, s, "order-2", cairn.Any, tagged("Paid"))

	want := map[cairn.IndexKey][]uint64{}
	for _, e := range readAll(t, s) {
		for _, k := range cairn.IndexKeys(nil, e.StreamID, e.Version, &e.EventData) {
			want[k] = append(want[k], e.Position)
		}
	}
	keys := []cairn.IndexKey{
		// Lists that hold nothing: a tag no event carries, a category of a
		// stream with none, a correlation id that is not a string.
		tagKey("absent"),
		{Kind: cairn.IndexCategory, Value: "nocategory"},
		{Kind: cairn.IndexCorrelation, Value: "7"},
		{Kind: cairn.IndexCategory, Value: "leading"},
	}
	for k := range want {
		keys = append(keys, k)
	}
	for _, k := range keys {
		wantList(t, s, k, want[k])
	}
	if !system {
		return
	}
	// The system stream's events are filed under their tags alone.
	if got := entryPositions(readIndex(t, s, cairn.IndexKey{Kind: cairn.IndexType, Value: "UserCreated"})); len(got) != 1 {
		t.Fatalf("the UserCreated type list holds %v: the system stream's event must not be in it", got)
	}
	if got := entryPositions(readIndex(t, s, tagKey("u"))); len(got) != 2 {
		t.Fatalf("the tag list u holds %v, want the system stream's event and user-1's", got)
	}
}

// testIndexReads: ReadIndex reads a list forward and backward, from a
// number, at most count entries; the iterator pages through it; bad keys
// and numbers are refused.
func testIndexReads(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{ReadBatch: 3})
	need[cairn.IndexReader](t, b, "IndexReader")
	ctx := context.Background()
	var want []uint64
	for i := range 10 {
		mustAppend(t, s, fmt.Sprint("other-", i), cairn.Any, tagged("Other"))
		res := mustAppend(t, s, fmt.Sprint("s-", i), cairn.Any, tagged("E", "t"))
		want = append(want, res.Position)
	}
	key := tagKey("t")
	cases := []struct {
		from  int64
		count int
		dir   cairn.Direction
		want  []int64
	}{
		{0, 3, cairn.Forward, []int64{0, 1, 2}},
		{7, 10, cairn.Forward, []int64{7, 8, 9}},
		{10, 5, cairn.Forward, nil},
		{cairn.StreamEnd, 4, cairn.Backward, []int64{9, 8, 7, 6}},
		{2, 10, cairn.Backward, []int64{2, 1, 0}},
		{100, 2, cairn.Backward, []int64{9, 8}},
		{0, 1, cairn.Backward, []int64{0}},
	}
	for _, c := range cases {
		got, err := s.ReadIndex(ctx, key, c.from, c.count, c.dir)
		if err != nil {
			t.Fatalf("ReadIndex(from %d, count %d, %v): %v", c.from, c.count, c.dir, err)
		}
		if !slices.Equal(entryNumbers(got), c.want) {
			t.Fatalf("ReadIndex(from %d, count %d, %v) = numbers %v, want %v", c.from, c.count, c.dir, entryNumbers(got), c.want)
		}
		for _, e := range got {
			if e.Position != want[e.Number] || !e.Found || e.Event.Position != e.Position || e.Event.Type != "E" {
				t.Fatalf("entry %d = position %d (event at %d, %q, found %v), want position %d", e.Number, e.Position, e.Event.Position, e.Event.Type, e.Found, want[e.Number])
			}
		}
	}
	if got := entryPositions(readIndex(t, s, key)); !slices.Equal(got, want) {
		t.Fatalf("Index forward = %v, want %v", got, want)
	}
	var back []uint64
	for e, err := range s.Index(ctx, key, cairn.StreamEnd, cairn.Backward) {
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, e.Position)
	}
	if slices.Reverse(back); !slices.Equal(back, want) {
		t.Fatalf("Index backward = %v reversed, want %v", back, want)
	}
	if got, err := s.ReadIndex(ctx, tagKey("none"), 0, 10, cairn.Forward); err != nil || len(got) != 0 {
		t.Fatalf("a list with no entry: %v, %v; want none and no error", got, err)
	}
	if got, err := s.ReadIndex(ctx, tagKey("none"), cairn.StreamEnd, 10, cairn.Backward); err != nil || len(got) != 0 {
		t.Fatalf("a list with no entry, backward: %v, %v; want none and no error", got, err)
	}
	for _, bad := range []struct {
		key   cairn.IndexKey
		from  int64
		count int
		dir   cairn.Direction
		field string
	}{
		{cairn.IndexKey{Kind: 0, Value: "t"}, 0, 1, cairn.Forward, "key.kind"},
		{cairn.IndexKey{Kind: cairn.IndexTag}, 0, 1, cairn.Forward, "key.value"},
		{cairn.IndexKey{Kind: cairn.IndexStreams, Value: "x"}, 0, 1, cairn.Forward, "key.value"},
		{cairn.IndexKey{Kind: cairn.IndexCategory, Value: "a-b"}, 0, 1, cairn.Forward, "key.value"},
		{key, -1, 1, cairn.Forward, "from"},
		{key, -2, 1, cairn.Backward, "from"},
		{key, 0, 0, cairn.Forward, "count"},
		{key, 0, 1, cairn.Direction(9), "direction"},
	} {
		_, err := s.ReadIndex(ctx, bad.key, bad.from, bad.count, bad.dir)
		wantInvalid(t, err, bad.field)
	}
}

// wantInvalid checks that err is an *InvalidArgumentError for field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var iae *cairn.InvalidArgumentError
	if !errors.As(err, &iae) || iae.Field != field {
		t.Fatalf("error %v, want an invalid argument for %q", err, field)
	}
}
