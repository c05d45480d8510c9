package storetest

// Rules of the Store's fallbacks, for an engine that lacks an optional
// capability: a serial AppendBatch, sized reads cut from whole ones, a
// Compact and a Health that do nothing, and ErrNotSupported for the rest.
// Each subtest runs when the engine lacks its capability, and is skipped
// otherwise.

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

func testFallbacks(t *testing.T, nb NewBackend) {
	for _, f := range []struct {
		name string
		fn   func(*testing.T, NewBackend)
	}{
		{"AppendBatch", testSerialBatch},
		{"SizedReads", testCutSizedReads},
		{"Compact", testNoCompact},
		{"Health", testNoHealth},
		{"DiskBytes", testNoDiskBytes},
		{"Truncate", testNoTruncate},
		{"Tombstone", testNoTombstone},
		{"Snapshots", testNoSnapshots},
		{"CommitAll", testNoCommitAll},
		{"ReadModel", testNoReadModel},
		{"Query", testNoQuerier},
		{"Index", testNoIndexReader},
	} {
		t.Run(f.name, func(t *testing.T) { f.fn(t, nb) })
	}
}

// without skips the test when the engine implements the capability T.
func without[T any](t *testing.T, b cairn.Backend, what string) {
	t.Helper()
	if _, ok := b.(T); ok {
		t.Skipf("the engine implements %s: the Store does not fall back", what)
	}
}

func wantNotSupported(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, cairn.ErrNotSupported) {
		t.Fatalf("%s without the capability: %v, want ErrNotSupported", what, err)
	}
}

// Without BatchAppender the requests are appended one after the other: on
// failure the results of those written come with a BatchError for the one
// that failed, and the later ones are not attempted.
func testSerialBatch(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.BatchAppender](t, b, "BatchAppender")
	results := batchOfThree(t, s)
	if !(results[0].Position < results[1].Position && results[1].Position < results[2].Position) {
		t.Fatalf("positions %d %d %d: the requests are appended in order", results[0].Position, results[1].Position, results[2].Position)
	}
	results, err := s.AppendBatch(context.Background(),
		cairn.AppendRequest{Stream: "d", Expected: cairn.NoStream, Events: evs(1, "E")},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: evs(1, "E")},
		cairn.AppendRequest{Stream: "e", Expected: cairn.NoStream, Events: evs(1, "E")},
	)
	wantBatchError(t, err, "only request 1 failed, and request 2 was not attempted")
	if len(results) != 1 || results[0].Version != 0 {
		t.Fatalf("results %+v, want the result of request 0, which was written", results)
	}
	wantVersion(t, s, "d", 0)
	wantVersion(t, s, "b", 3)
	wantVersion(t, s, "e", -1)

	// A check-only request is checked in its turn, not atomically.
	results, err = s.AppendBatch(context.Background(),
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(3)},
		cairn.AppendRequest{Stream: "f", Expected: cairn.NoStream, Events: evs(1, "E")},
	)
	if err != nil || len(results) != 2 || results[0].Version != 3 || results[1].Version != 0 {
		t.Fatalf("serial batch with a check that holds: %+v, %v", results, err)
	}
	_, err = s.AppendBatch(context.Background(),
		cairn.AppendRequest{Stream: "never", Expected: cairn.StreamExists},
		cairn.AppendRequest{Stream: "g", Expected: cairn.NoStream, Events: evs(1, "E")},
	)
	var be *cairn.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 2 {
		t.Fatalf("serial batch with a check that fails: %v, want a *BatchError", err)
	}
	wantWrongVersion(t, be.Errs[0], "never", cairn.StreamExists, -1)
	wantVersion(t, s, "g", -1)
}

// Without SizedReader the Store reads count events and cuts the result at
// the byte limit: sized reads give what a SizedReader gives.
func testCutSizedReads(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{ReadBatchBytes: 250})
	without[cairn.SizedReader](t, b, "SizedReader")
	sizedReads(t, s)
}

// Without Compacter, Compact succeeds and changes nothing.
func testNoCompact(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.Compacter](t, b, "Compacter")
	mustAppend(t, s, "gone", cairn.NoStream, evs(3, "E")...)
	mustAppend(t, s, "kept", cairn.NoStream, evs(2, "E")...)
	if err := s.DeleteStream(context.Background(), "gone", cairn.Any); err != nil {
		t.Fatal(err)
	}
	before := positions(readAll(t, s))
	if err := s.Compact(context.Background()); err != nil {
		t.Fatalf("Compact without the capability: %v, want nil", err)
	}
	if after := positions(readAll(t, s)); !slices.Equal(after, before) {
		t.Fatalf("the log changed in a Compact that does nothing: %v, then %v", before, after)
	}
	wantVersion(t, s, "kept", 1)
}

// Without HealthChecker the engine is taken to be healthy.
func testNoHealth(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.HealthChecker](t, b, "HealthChecker")
	if err := s.Health(context.Background()); err != nil {
		t.Fatalf("Health without the capability: %v, want nil", err)
	}
}

func testNoDiskBytes(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.DiskSizer](t, b, "DiskSizer")
	_, err := s.DiskBytes(context.Background())
	wantNotSupported(t, "DiskBytes", err)
}

func testNoTruncate(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.Truncater](t, b, "Truncater")
	mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...)
	wantNotSupported(t, "TruncateStream", s.TruncateStream(context.Background(), "s", 2))
	if got, err := readStream(s, "s"); err != nil || len(got) != 3 {
		t.Fatalf("after a refused truncation the stream reads %d events, %v; want 3", len(got), err)
	}
}

func testNoTombstone(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.Tombstoner](t, b, "Tombstoner")
	mustAppend(t, s, "s", cairn.NoStream, ev("E"))
	wantNotSupported(t, "TombstoneStream", s.TombstoneStream(context.Background(), "s", cairn.Any))
	mustAppend(t, s, "s", cairn.Exact(0), ev("E"))
}

func testNoSnapshots(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.Snapshotter](t, b, "Snapshotter")
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, ev("E"))
	wantNotSupported(t, "CommitSnapshot", s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s", Version: 0}))
	_, found, err := s.GetSnapshot(ctx, "s", -1, 10)
	wantNotSupported(t, "GetSnapshot", err)
	if found {
		t.Fatal("GetSnapshot without the capability found a snapshot")
	}
}

// Without TxCommitter a commit with projections is refused before anything
// is written; without projections it is an append.
func testNoCommitAll(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.TxCommitter](t, b, "TxCommitter")
	ctx := context.Background()
	called := false
	_, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Expected: cairn.NoStream, Events: evs(1, "E")},
		func(context.Context, cairn.Tx, []cairn.Event) error { called = true; return nil })
	wantNotSupported(t, "CommitAll with a projection", err)
	if called {
		t.Fatal("the projection ran, though the commit was refused")
	}
	wantVersion(t, s, "s", -1)
	res, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Expected: cairn.NoStream, Events: evs(2, "E")})
	if err != nil || res.Version != 1 {
		t.Fatalf("CommitAll without projections = %+v, %v; want an append at version 1", res, err)
	}
}

func testNoReadModel(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	without[cairn.ReadModelReader](t, b, "ReadModelReader")
	ctx := context.Background()
	_, found, err := s.ReadModelGet(ctx, "t", "k")
	wantNotSupported(t, "ReadModelGet", err)
	if found {
		t.Fatal("ReadModelGet without the capability found a value")
	}
	var errs []error
	for _, err := range s.ReadModel(ctx, "t", "") {
		errs = append(errs, err)
	}
	if len(errs) != 1 {
		t.Fatalf("ReadModel without the capability yielded %d items, want one error", len(errs))
	}
	wantNotSupported(t, "ReadModel", errs[0])
}
