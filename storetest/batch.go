package storetest

// Rules of multi-stream appends.

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

func testAppendBatch(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.BatchAppender](t, b, "BatchAppender")
	ctx := context.Background()
	results := batchOfThree(t, s)
	if results[2].Position != 6 {
		t.Fatalf("last position %d, want 6: a batch is contiguous in the global log", results[2].Position)
	}
	logLen := len(readAll(t, s))

	// One failed expectation: nothing is written, and the outcomes say
	// which expectation failed.
	_, err := s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "a", Expected: cairn.Exact(1), Events: evs(1, "E")},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: evs(1, "E")},
		cairn.AppendRequest{Stream: "d", Expected: cairn.NoStream, Events: evs(1, "E")},
	)
	wantBatchError(t, err, "requests 0 and 2 would have succeeded")
	wantVersion(t, s, "a", 1)
	wantVersion(t, s, "d", -1)
	wantLogLen(t, s, logLen)
}

// batchOfThree appends one event to "b", then a batch of three requests:
// "a" (new, 2 events), "b" (expecting 0, 3 events) and "c" (any, 1 event).
// It checks the versions the batch returns, and returns its results.
func batchOfThree(t *testing.T, s *cairn.Store) []cairn.AppendResult {
	t.Helper()
	mustAppend(t, s, "b", cairn.NoStream, ev("E"))
	results, err := s.AppendBatch(context.Background(),
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
	return results
}

// wantBatchError checks the error of a batch of three requests after
// batchOfThree, whose second request expected "b" at version 0 (it is at
// 3): a *BatchError whose only failed outcome is that one. why says why the
// others have none.
func wantBatchError(t *testing.T, err error, why string) {
	t.Helper()
	var be *cairn.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 3 {
		t.Fatalf("failed batch: %v, want a *BatchError with 3 outcomes", err)
	}
	if be.Errs[0] != nil || be.Errs[2] != nil {
		t.Fatalf("outcomes %v: %s", be.Errs, why)
	}
	wantWrongVersion(t, be.Errs[1], "b", cairn.Exact(0), 3)
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatal("errors.Is(batch error, ErrWrongExpectedVersion) = false")
	}
}

// A request without events is check-only: it writes nothing, and the batch
// fails unless its stream satisfies its expectation, checked with the rest
// (a stream that does not exist, a soft-deleted one, a tombstoned one);
// every failed check is reported, and a check-only stream that never
// existed is still absent afterwards.
func testAppendBatchCheckOnly(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.BatchAppender](t, b, "BatchAppender")
	ctx := context.Background()
	mustAppend(t, s, "read", cairn.NoStream, evs(3, "E")...)
	mustAppend(t, s, "gone", cairn.NoStream, ev("E"))
	if err := s.DeleteStream(ctx, "gone", cairn.Any); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "dead", cairn.NoStream, ev("E"))
	need[cairn.Tombstoner](t, b, "Tombstoner")
	if err := s.TombstoneStream(ctx, "dead", cairn.Any); err != nil {
		t.Fatal(err)
	}
	logLen := len(readAll(t, s))

	results, err := s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "read", Expected: cairn.Exact(2)},
		cairn.AppendRequest{Stream: "never", Expected: cairn.NoStream},
		cairn.AppendRequest{Stream: "gone", Expected: cairn.NoStream},
		cairn.AppendRequest{Stream: "written", Expected: cairn.NoStream, Events: evs(2, "E")},
	)
	if err != nil {
		t.Fatalf("batch whose checks hold: %v", err)
	}
	for i, want := range []int64{2, -1, -1, 1} {
		if results[i].Version != want {
			t.Fatalf("results[%d].Version = %d, want %d", i, results[i].Version, want)
		}
	}
	wantLogLen(t, s, logLen+2)
	wantVersion(t, s, "read", 2)
	wantVersion(t, s, "never", -1)
	if ok, err := s.StreamExists(ctx, "never"); err != nil || ok {
		t.Fatalf("a stream only checked exists afterwards: %v, %v", ok, err)
	}
	if got := listStreams(t, s); slices.Contains(got, "never") {
		t.Fatalf("streams %v list a stream only checked", got)
	}

	_, err = s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "read", Expected: cairn.Exact(1)},
		cairn.AppendRequest{Stream: "never", Expected: cairn.StreamExists},
		cairn.AppendRequest{Stream: "dead", Expected: cairn.Any},
		cairn.AppendRequest{Stream: "other", Expected: cairn.Any, Events: evs(1, "E")},
		cairn.AppendRequest{Stream: "gone", Expected: cairn.NoStream},
	)
	var be *cairn.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 5 {
		t.Fatalf("batch whose checks fail: %v, want a *BatchError with 5 outcomes", err)
	}
	wantWrongVersion(t, be.Errs[0], "read", cairn.Exact(1), 2)
	wantWrongVersion(t, be.Errs[1], "never", cairn.StreamExists, -1)
	if !errors.Is(be.Errs[2], cairn.ErrStreamDeleted) {
		t.Fatalf("check of a tombstoned stream: %v, want ErrStreamDeleted", be.Errs[2])
	}
	if be.Errs[3] != nil || be.Errs[4] != nil {
		t.Fatalf("outcomes %v: requests 3 and 4 would have succeeded", be.Errs)
	}
	wantLogLen(t, s, logLen+2)
	wantVersion(t, s, "other", -1)
}
