package storetest

// The Store's fallbacks for reads by query and index, and its refusal of
// conditions, on an engine without Querier or IndexReader.

import (
	"context"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

// Without Querier a query read is a scan of the log that gives what the
// index would, and every conditional append is refused with
// ErrNotSupported before anything is written: the Store never checks a
// condition outside the engine's critical section.
func testNoQuerier(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{ReadBatch: 2})
	without[cairn.Querier](t, b, "Querier")
	ctx := context.Background()
	courses(t, s)
	for _, c := range matchCases {
		if got := positions(readQuery(t, s, c.q)); !slices.Equal(got, c.want) {
			t.Errorf("%s: ReadQuery = %v, want %v", c.name, got, c.want)
		}
	}
	got, err := s.ReadQuery(ctx, query(byTags("course:1")), 4, 2, cairn.Forward)
	if err != nil || !slices.Equal(positions(got), []uint64{5, 6}) {
		t.Fatalf("ReadQuery(from 4, count 2) = %v, %v; want [5 6]", positions(got), err)
	}
	got, err = s.ReadQuery(ctx, query(byTags("course:1")), cairn.LogEnd, 3, cairn.Backward)
	if err != nil || !slices.Equal(positions(got), []uint64{7, 6, 5}) {
		t.Fatalf("ReadQuery(backward, count 3) = %v, %v; want [7 6 5]", positions(got), err)
	}
	events, head, err := s.Query(ctx, query(byTags("course:1")), 0, cairn.Forward)
	if err != nil || head == nil || *head != 8 {
		t.Fatalf("Query: head %v, %v; want 8", head, err)
	}
	var all []uint64
	for e, err := range events {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, e.Position)
	}
	if !slices.Equal(all, []uint64{0, 3, 5, 6, 7}) {
		t.Fatalf("Query = %v", all)
	}
	cond := onTags("nothing")
	_, err = s.AppendIf(ctx, "s", cairn.Any, cond, tagged("E"))
	wantNotSupported(t, "AppendIf", err)
	_, err = s.AppendBatch(ctx, cairn.AppendRequest{Stream: "s", Expected: cairn.Any, Events: []cairn.EventData{tagged("E")}, Condition: &cond})
	wantNotSupported(t, "AppendBatch with a condition", err)
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Expected: cairn.Any, Events: []cairn.EventData{tagged("E")}, Condition: &cond})
	wantNotSupported(t, "CommitAll with a condition", err)
	wantLogLen(t, s, 9)
}

// Without IndexReader index reads are refused with ErrNotSupported.
func testNoIndexReader(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.IndexReader](t, b, "IndexReader")
	ctx := context.Background()
	mustAppend(t, s, "s-1", cairn.NoStream, tagged("E", "t"))
	_, err := s.ReadIndex(ctx, tagKey("t"), 0, 10, cairn.Forward)
	wantNotSupported(t, "ReadIndex", err)
	var errs []error
	for _, err := range s.Index(ctx, tagKey("t"), 0, cairn.Forward) {
		errs = append(errs, err)
	}
	if len(errs) != 1 {
		t.Fatalf("Index without the capability yielded %d items, want one error", len(errs))
	}
	wantNotSupported(t, "Index", errs[0])
}
