package storetest

// Rules of snapshots.

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
)

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
