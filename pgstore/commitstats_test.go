package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
)

// TestCommitStats: a lone writer's appends are a group and a sync each;
// concurrent writers' appends share group calls, every one counted once.
func TestCommitStats(t *testing.T) {
	ctx := context.Background()
	db := openSchema(t, pgtest.Schema(t, "cairn_test"), pgstore.Options{})
	s := cairn.NewStore(db, cairn.Options{})
	stats := func() cairn.CommitStats {
		t.Helper()
		st, err := s.CommitStats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	before := stats()
	for range 10 {
		if _, err := s.Append(ctx, "one", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	after := stats()
	if w, g, n := after.Writes-before.Writes, after.Groups-before.Groups, after.Syncs-before.Syncs; w != 10 || g != 10 || n != 10 || after.SyncTime <= before.SyncTime {
		t.Fatalf("10 appends of one writer: %+v, then %+v", before, after)
	}

	const writers, appends = 16, 10
	before = stats()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range appends {
				if _, err := s.Append(ctx, fmt.Sprint("w", w), cairn.Any, cairn.EventData{Type: "E"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	after = stats()
	w, g, n := after.Writes-before.Writes, after.Groups-before.Groups, after.Syncs-before.Syncs
	t.Logf("%d writes in %d groups", w, g)
	if w != writers*appends || g >= w || n != g {
		t.Fatalf("%d appends of %d writers: %d writes, %d groups, %d syncs: want every append once, in shared groups", writers*appends, writers, w, g, n)
	}
}
