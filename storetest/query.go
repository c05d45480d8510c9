package storetest

// Rules of reads by query (cairn.Querier, and the Store's scan without it):
// what a query matches, and how it is read.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

// readQuery returns every event that matches q, forward, in one read.
func readQuery(t *testing.T, s *cairn.Store, q cairn.Query) []cairn.Event {
	t.Helper()
	got, err := s.ReadQuery(context.Background(), q, 0, 1<<20, cairn.Forward)
	if err != nil {
		t.Fatalf("ReadQuery(%+v): %v", q, err)
	}
	return got
}

// filterLog returns the events of the log that match q: what a query read
// must return.
func filterLog(t *testing.T, s *cairn.Store, q cairn.Query) []uint64 {
	t.Helper()
	var out []uint64
	for _, e := range readAll(t, s) {
		if q.Matches(&e) {
			out = append(out, e.Position)
		}
	}
	return out
}

// courses appends the events the query rules read:
//
//	0 course-1   CourseDefined          course:1
//	1 course-2   CourseDefined          course:2
//	2 student-1  StudentRegistered      student:1
//	3 sub-1      StudentSubscribed      student:1 course:1
//	4 sub-2      StudentSubscribed      student:1 course:2
//	5 sub-3      StudentSubscribed      student:2 course:1
//	6 course-1   CourseCapacityChanged  course:1
//	7 $courses   StudentSubscribed      course:1 (a system stream)
//	8 x-1        Untagged
func courses(t *testing.T, s *cairn.Store) {
	t.Helper()
	mustAppend(t, s, "course-1", cairn.NoStream, tagged("CourseDefined", "course:1"))
	mustAppend(t, s, "course-2", cairn.NoStream, tagged("CourseDefined", "course:2"))
	mustAppend(t, s, "student-1", cairn.NoStream, tagged("StudentRegistered", "student:1"))
	mustAppend(t, s, "sub-1", cairn.NoStream, tagged("StudentSubscribed", "student:1", "course:1"))
	mustAppend(t, s, "sub-2", cairn.NoStream, tagged("StudentSubscribed", "course:2", "student:1"))
	mustAppend(t, s, "sub-3", cairn.NoStream, tagged("StudentSubscribed", "student:2", "course:1"))
	mustAppend(t, s, "course-1", cairn.Exact(0), tagged("CourseCapacityChanged", "course:1"))
	if !appendSystem(t, s, "$courses", tagged("StudentSubscribed", "course:1")) {
		// The same matches, for an engine that writes no system stream.
		mustAppend(t, s, "courses", cairn.NoStream, tagged("Other", "course:1"))
	}
	mustAppend(t, s, "x-1", cairn.NoStream, tagged("Untagged"))
}

// appendSystem appends events to a system stream, and returns false when
// the engine refuses it as an invalid argument (a remote server keeps
// system streams to itself).
func appendSystem(t *testing.T, s *cairn.Store, stream string, events ...cairn.EventData) bool {
	t.Helper()
	_, err := s.System().Append(context.Background(), stream, cairn.Any, events...)
	if errors.Is(err, cairn.ErrInvalidArgument) {
		t.Logf("the engine refuses to write the system stream %s: %v", stream, err)
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// matchCases are queries over courses and the positions they match.
var matchCases = []struct {
	name string
	q    cairn.Query
	want []uint64
}{
	{"the empty query matches every event", query(), seq[uint64](0, 8)},
	{"an item with neither types nor tags matches every event", query(cairn.QueryItem{}), seq[uint64](0, 8)},
	{"one type", query(byTypes("CourseDefined")), []uint64{0, 1}},
	{"types are ORed", query(byTypes("CourseDefined", "CourseCapacityChanged")), []uint64{0, 1, 6}},
	{"one tag, system stream included", query(byTags("course:1")), []uint64{0, 3, 5, 6, 7}},
	{"tags are ANDed", query(byTags("student:1", "course:1")), []uint64{3}},
	{"tags are ANDed in any order", query(byTags("student:1", "course:2")), []uint64{4}},
	{"types and tags in one item, never a system stream", query(cairn.QueryItem{Types: []string{"StudentSubscribed"}, Tags: []string{"course:1"}}), []uint64{3, 5}},
	{"items are ORed", query(
		cairn.QueryItem{Types: []string{"CourseDefined", "CourseCapacityChanged"}, Tags: []string{"course:1"}},
		cairn.QueryItem{Types: []string{"StudentSubscribed"}, Tags: []string{"course:1"}},
	), []uint64{0, 3, 5, 6}},
	{"overlapping items match an event once", query(byTags("course:1"), byTags("student:1"), byTypes("StudentSubscribed")), []uint64{0, 2, 3, 4, 5, 6, 7}},
	{"an item that matches all makes the query match all", query(byTags("nothing"), cairn.QueryItem{}), seq[uint64](0, 8)},
	{"a tag no event carries", query(byTags("course:3")), nil},
	{"a type no event has", query(byTypes("Nope")), nil},
	{"a type and a tag that never meet", query(cairn.QueryItem{Types: []string{"CourseDefined"}, Tags: []string{"student:1"}}), nil},
	{"an item of tags and an item of types", query(byTags("student:2"), byTypes("Untagged")), []uint64{5, 8}},
}

// testQueryMatching: a query's items are ORed, an item's types ORed and its
// tags ANDed, the empty query matches every event, and an item with types
// never matches an event of a system stream. Every read agrees with
// cairn.Query.Matches over the log.
func testQueryMatching(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	courses(t, s)
	for _, c := range matchCases {
		if got := positions(readQuery(t, s, c.q)); !slices.Equal(got, c.want) {
			t.Errorf("%s: ReadQuery = %v, want %v", c.name, got, c.want)
		}
		if got := filterLog(t, s, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: Query.Matches over the log = %v, want %v", c.name, got, c.want)
		}
	}
	// The events read are the events as recorded.
	log := readAll(t, s)
	for _, e := range readQuery(t, s, query(byTags("course:1"))) {
		w := log[e.Position]
		if e.ID != w.ID || e.StreamID != w.StreamID || e.Version != w.Version || e.Type != w.Type || !slices.Equal(e.Tags, w.Tags) || string(e.Data) != string(w.Data) {
			t.Fatalf("ReadQuery returned %s@%d at position %d, the log has %s@%d, or their contents differ", e.StreamID, e.Version, e.Position, w.StreamID, w.Version)
		}
	}
}

// testQueryReads: a query read goes forward or backward from a position
// (inclusive), at most count events; the iterator pages through the
// matches and returns the head before the read.
func testQueryReads(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb, cairn.Options{ReadBatch: 3})
	ctx := context.Background()
	seqQ, after, err := s.Query(ctx, query(byTags("a")), 0, cairn.Forward)
	if err != nil || after != nil {
		t.Fatalf("Query on an empty store: head %v, %v; want nil", after, err)
	}
	for _, err := range seqQ {
		t.Fatalf("Query on an empty store yielded %v", err)
	}
	for i := range 20 {
		tag := "a"
		if i%2 == 1 {
			tag = "b"
		}
		mustAppend(t, s, fmt.Sprint("s-", i%4), cairn.Any, tagged("E", tag))
	}
	qa := query(byTags("a"))
	cases := []struct {
		from  uint64
		count int
		dir   cairn.Direction
		want  []uint64
	}{
		{0, 3, cairn.Forward, []uint64{0, 2, 4}},
		{5, 3, cairn.Forward, []uint64{6, 8, 10}},
		{6, 2, cairn.Forward, []uint64{6, 8}},
		{18, 10, cairn.Forward, []uint64{18}},
		{19, 10, cairn.Forward, nil},
		{1000, 10, cairn.Forward, nil},
		{cairn.LogEnd, 4, cairn.Backward, []uint64{18, 16, 14, 12}},
		{7, 2, cairn.Backward, []uint64{6, 4}},
		{6, 10, cairn.Backward, []uint64{6, 4, 2, 0}},
		{0, 10, cairn.Backward, []uint64{0}},
		{1000, 1, cairn.Backward, []uint64{18}},
	}
	for _, c := range cases {
		got, err := s.ReadQuery(ctx, qa, c.from, c.count, c.dir)
		if err != nil {
			t.Fatalf("ReadQuery(from %d, count %d, %v): %v", c.from, c.count, c.dir, err)
		}
		if !slices.Equal(positions(got), c.want) {
			t.Fatalf("ReadQuery(from %d, count %d, %v) = %v, want %v", c.from, c.count, c.dir, positions(got), c.want)
		}
	}
	// The empty query reads the log.
	got, err := s.ReadQuery(ctx, query(), 3, 4, cairn.Forward)
	if err != nil || !slices.Equal(positions(got), []uint64{3, 4, 5, 6}) {
		t.Fatalf("ReadQuery(empty query, from 3, count 4) = %v, %v", positions(got), err)
	}
	for _, dir := range []cairn.Direction{cairn.Forward, cairn.Backward} {
		from := uint64(0)
		want := seq[uint64](0, 18)
		want = slices.DeleteFunc(want, func(p uint64) bool { return p%2 == 1 })
		if dir == cairn.Backward {
			from = cairn.LogEnd
			slices.Reverse(want)
		}
		events, after, err := s.Query(ctx, qa, from, dir)
		if err != nil {
			t.Fatal(err)
		}
		if after == nil || *after != 19 {
			t.Fatalf("Query %v: head %v, want 19, the last position before the read", dir, after)
		}
		var got []uint64
		for e, err := range events {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.Position)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Query %v = %v, want %v", dir, got, want)
		}
	}
}

// testQueryFollowsLog: a query reads the events the log holds: those of
// deleted, truncated and tombstoned streams until compaction removes them,
// exactly as ReadAll does.
func testQueryFollowsLog(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	ctx := context.Background()
	courses(t, s)
	mustAppend(t, s, "sub-4", cairn.NoStream, tagged("StudentSubscribed", "student:3", "course:1"), tagged("StudentUnsubscribed", "student:3", "course:1"))
	check := func(when string) {
		t.Helper()
		for _, c := range matchCases {
			want := filterLog(t, s, c.q)
			if got := positions(readQuery(t, s, c.q)); !slices.Equal(got, want) {
				t.Fatalf("%s: %s: ReadQuery = %v, the matching events of ReadAll are %v", when, c.name, got, want)
			}
			back, err := s.ReadQuery(ctx, c.q, cairn.LogEnd, 1<<20, cairn.Backward)
			if err != nil {
				t.Fatal(err)
			}
			got := positions(back)
			slices.Reverse(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: %s: ReadQuery backward = %v reversed, the matching events of ReadAll are %v", when, c.name, got, want)
			}
		}
	}
	check("before removals")
	if err := s.DeleteStream(ctx, "sub-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(cairn.Truncater); ok {
		if err := s.TruncateStream(ctx, "sub-4", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := b.(cairn.Tombstoner); ok {
		if err := s.TombstoneStream(ctx, "course-2", cairn.Any); err != nil {
			t.Fatal(err)
		}
	}
	check("after a delete, a truncation and a tombstone")
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	check("after compaction")
	mustAppend(t, s, "sub-1", cairn.NoStream, tagged("StudentSubscribed", "student:1", "course:1"))
	check("after the deleted stream is recreated")
}

// testQueryBadInput: a query or a condition the Store cannot accept is
// refused with an error that names the field, and nothing is written.
func testQueryBadInput(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	mustAppend(t, s, "s-1", cairn.NoStream, tagged("E", "t"))
	many := make([]cairn.QueryItem, cairn.MaxQueryItems+1)
	for i := range many {
		many[i] = byTags("t")
	}
	manyTags := make([]string, cairn.MaxQueryItemTags+1)
	for i := range manyTags {
		manyTags[i] = fmt.Sprint("t", i)
	}
	manyTypes := make([]string, cairn.MaxQueryItemTypes+1)
	for i := range manyTypes {
		manyTypes[i] = fmt.Sprint("T", i)
	}
	bad := []struct {
		q     cairn.Query
		field string
	}{
		{query(byTags("")), "items[0].tags[0]"},
		{query(byTags("t"), byTypes("ok", "")), "items[1].types[1]"},
		{query(byTags("bad\x00tag")), "items[0].tags[0]"},
		{query(byTypes(string(make([]byte, cairn.MaxTypeBytes+1)))), "items[0].types[0]"},
		{cairn.Query{Items: many}, "items"},
		{query(byTags(manyTags...)), "items[0].tags"},
		{query(byTypes(manyTypes...)), "items[0].types"},
	}
	for _, c := range bad {
		_, err := s.ReadQuery(ctx, c.q, 0, 10, cairn.Forward)
		wantInvalid(t, err, "query."+c.field)
		_, _, err = s.Query(ctx, c.q, 0, cairn.Forward)
		wantInvalid(t, err, "query."+c.field)
		_, err = s.AppendIf(ctx, "s-2", cairn.Any, cairn.AppendCondition{FailIfEventsMatch: c.q}, tagged("E"))
		wantInvalid(t, err, "condition.fail_if_events_match."+c.field)
	}
	_, err := s.ReadQuery(ctx, query(), 0, 0, cairn.Forward)
	wantInvalid(t, err, "count")
	_, err = s.ReadQuery(ctx, query(), 0, 1, cairn.Direction(5))
	wantInvalid(t, err, "direction")
	_, err = s.AppendIf(ctx, "$s", cairn.Any, cairn.AppendCondition{}, tagged("E"))
	wantInvalid(t, err, "stream")
	_, err = s.AppendIf(ctx, "s-2", cairn.Any, cairn.AppendCondition{})
	wantInvalid(t, err, "events")
	wantLogLen(t, s, 1)
}
