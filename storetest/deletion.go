package storetest

// Rules of deletion records: every delete and tombstone is recorded in the
// global log in its own commit (see cairn.Deletion).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
)

// lastEvent returns the last event of the global log.
func lastEvent(t *testing.T, s *cairn.Store) cairn.Event {
	t.Helper()
	evs, err := s.ReadAll(context.Background(), cairn.LogEnd, 1, cairn.Backward)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadAll(LogEnd, 1, Backward) = %d events, %v", len(evs), err)
	}
	return evs[0]
}

// wantRecord checks that e is the deletion record of want, at position
// pos.
func wantRecord(t *testing.T, e cairn.Event, want cairn.Deletion, pos uint64) {
	t.Helper()
	got, ok := cairn.ParseDeletion(&e)
	if !ok {
		t.Fatalf("event at %d is %q %q %s, want the deletion record of %+v", e.Position, e.StreamID, e.Type, e.Data, want)
	}
	if got != want {
		t.Fatalf("deletion record = %+v, want %+v", got, want)
	}
	if e.Position != pos {
		t.Fatalf("deletion record at position %d, want %d (right after the head)", e.Position, pos)
	}
	if e.ContentType != cairn.ContentJSON {
		t.Fatalf("deletion record content type %v, want JSON", e.ContentType)
	}
}

func testDeletionRecords(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...)
	head := mustAppend(t, s, "keep", cairn.NoStream, ev("E")).Position

	// A delete appends its record right after the head.
	if err := s.DeleteStream(ctx, "s", cairn.Exact(2)); err != nil {
		t.Fatal(err)
	}
	rec := lastEvent(t, s)
	wantRecord(t, rec, cairn.Deletion{Stream: "s", Version: 2}, head+1)
	if rec.Version != 0 {
		t.Fatalf("first deletion record has version %d, want 0", rec.Version)
	}
	head = rec.Position

	// Refused deletes record nothing.
	if err := s.DeleteStream(ctx, "keep", cairn.Exact(5)); !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("delete with a wrong version: %v", err)
	}
	if err := s.DeleteStream(ctx, "s", cairn.Any); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("delete of a deleted stream: %v", err)
	}
	if err := s.DeleteStream(ctx, "never", cairn.Any); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("delete of a missing stream: %v", err)
	}
	if got := lastEvent(t, s).Position; got != head {
		t.Fatalf("refused deletes moved the head from %d to %d", head, got)
	}

	// Recreated and deleted again: a second record, with the new version.
	mustAppend(t, s, "s", cairn.NoStream, ev("E"))
	if err := s.DeleteStream(ctx, "s", cairn.Any); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, lastEvent(t, s), cairn.Deletion{Stream: "s", Version: 3}, head+2)
	head += 2

	if _, ok := b.(cairn.Tombstoner); ok {
		if err := s.TombstoneStream(ctx, "keep", cairn.Any); err != nil {
			t.Fatal(err)
		}
		wantRecord(t, lastEvent(t, s), cairn.Deletion{Stream: "keep", Hard: true, Version: 0}, head+1)
		// A stream never written, and a soft-deleted one.
		if err := s.TombstoneStream(ctx, "never", cairn.NoStream); err != nil {
			t.Fatal(err)
		}
		wantRecord(t, lastEvent(t, s), cairn.Deletion{Stream: "never", Hard: true, Version: -1}, head+2)
		if err := s.TombstoneStream(ctx, "s", cairn.Any); err != nil {
			t.Fatal(err)
		}
		wantRecord(t, lastEvent(t, s), cairn.Deletion{Stream: "s", Hard: true, Version: -1}, head+3)
		head += 3
		for _, id := range []string{"keep", "never", "s"} {
			if err := s.TombstoneStream(ctx, id, cairn.Any); !errors.Is(err, cairn.ErrStreamDeleted) {
				t.Fatalf("tombstone of tombstoned %q: %v", id, err)
			}
			if err := s.DeleteStream(ctx, id, cairn.Any); !errors.Is(err, cairn.ErrStreamDeleted) {
				t.Fatalf("delete of tombstoned %q: %v", id, err)
			}
		}
		if got := lastEvent(t, s).Position; got != head {
			t.Fatalf("refused tombstones moved the head from %d to %d", head, got)
		}
	}

	// The records form a stream of their own, numbered from 0.
	recs, err := readStream(s, cairn.DeletionsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range recs {
		if e.Version != int64(i) || e.Type != cairn.DeletionType {
			t.Fatalf("record %d: version %d type %q", i, e.Version, e.Type)
		}
	}

	// Only engines write the records' stream.
	sys := s.System()
	if _, err := sys.Append(ctx, cairn.DeletionsStream, cairn.Any, ev("E")); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("system append to %s: %v, want ErrInvalidArgument", cairn.DeletionsStream, err)
	}
	if err := sys.DeleteStream(ctx, cairn.DeletionsStream, cairn.Any); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("system delete of %s: %v, want ErrInvalidArgument", cairn.DeletionsStream, err)
	}
}

// testDeletionRecordsConcurrent deletes streams while others are appended
// to: every delete that succeeds has exactly one record, none has two, and
// the log stays gapless.
func testDeletionRecordsConcurrent(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	const n = 16
	for i := range n {
		mustAppend(t, s, fmt.Sprintf("d-%d", i), cairn.NoStream, ev("E"))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[i] = s.DeleteStream(ctx, fmt.Sprintf("d-%d", i), cairn.Exact(0))
		}()
		go func() {
			defer wg.Done()
			_, errs[n+i] = s.Append(ctx, fmt.Sprintf("w-%d", i), cairn.NoStream, ev("E"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	all := readAll(t, s)
	for i, e := range all {
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("log out of order at %d", i)
		}
		if d, ok := cairn.ParseDeletion(&e); ok {
			seen[d.Stream]++
		}
	}
	for i := range n {
		if c := seen[fmt.Sprintf("d-%d", i)]; c != 1 {
			t.Fatalf("d-%d has %d deletion records, want 1", i, c)
		}
	}
}
