package storetest

// Rules of multi-stream appends.

import (
	"context"
	"errors"
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
