package storetest

// Rules of removal: soft deletes, tombstones, their expected versions,
// truncation and compaction.

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

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
	// The 3 events stay in the log, after them the records of the 3
	// tombstones and of the soft delete.
	wantLogLen(t, s, 7)
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
	// Position 45 holds the record of the delete.
	if res := mustAppend(t, s, "gone", cairn.NoStream, ev("E")); res.Position != 46 || res.Version != 20 {
		t.Fatalf("append after compaction = %+v, want position 46 version 20", res)
	}
}
