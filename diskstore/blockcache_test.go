package diskstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/google/uuid"
)

// TestBlockCacheHoldsBlocks: the index's reads are served from the block
// cache once its blocks have been read. Pebble takes the room of its
// memtables out of the block cache; a cache no larger than the memtables
// held nothing, and each append that brings event IDs of its own (as every
// KurrentDB client sends them, random) read, checked and decompressed the
// blocks of its retry check from the file. (New random IDs now mostly pass
// the committer's ID filter without a read: the reads measured here are
// the retry checks of appends retried, which read their records.)
func TestBlockCacheHoldsBlocks(t *testing.T) {
	dir := t.TempDir()
	opts := diskstore.Options{NoSync: true, CacheBytes: 4 << 20, MemTableBytes: 4 << 20}
	ctx := context.Background()
	var first []cairn.EventData // round 0's events
	appendSome := func(db *diskstore.DB, round, n int) {
		t.Helper()
		for i := range n {
			ev := cairn.EventData{ID: uuid.New(), Type: "E", Data: make([]byte, 256)}
			if round == 0 {
				first = append(first, ev)
			}
			if _, err := db.Append(ctx, fmt.Sprintf("s-%d-%d", round, i%64), cairn.Any, []cairn.EventData{ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	db, err := diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendSome(db, 0, 5000)
	if err := db.Close(); err != nil { // flushes: the IDs are in a table
		t.Fatal(err)
	}
	db, err = diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	appendSome(db, 1, 5000) // the memtable grows to its full size
	before := db.Metrics().BlockCache
	// Retries of round 0's appends: each one's check reads its record.
	for i, ev := range first[:2000] {
		if _, err := db.Append(ctx, fmt.Sprintf("s-0-%d", i%64), cairn.Any, []cairn.EventData{ev}); err != nil {
			t.Fatal(err)
		}
	}
	after := db.Metrics().BlockCache
	hits, misses := after.Hits-before.Hits, after.Misses-before.Misses
	t.Logf("2000 retries: block cache hits %d, misses %d; %d blocks cached", hits, misses, after.Count)
	if after.Count == 0 || hits < 10*misses {
		t.Fatalf("the block cache holds %d blocks: %d hits, %d misses in 2000 retries", after.Count, hits, misses)
	}
}
