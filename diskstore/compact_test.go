package diskstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
)

// TestCompactGivesSpaceBack deletes, tombstones and truncates most of a
// store: after Compact the store takes much less space on disk, what was
// kept reads back, and positions are not reused, even after a reopen.
// With small segments, compaction removes the segments that hold no live
// event rather than punching holes in them.
func TestCompactGivesSpaceBack(t *testing.T) {
	for _, segment := range []int64{0, 64 << 10} {
		t.Run(fmt.Sprintf("segment=%d", segment), func(t *testing.T) { testCompact(t, segment) })
	}
}

func testCompact(t *testing.T, segment int64) {
	ctx := context.Background()
	dir := t.TempDir()
	// Small memtables, so that the write-ahead logs pebble keeps for reuse
	// are small beside the data.
	opts := diskstore.Options{NoSync: true, MemTableBytes: 256 << 10, SegmentBytes: segment}
	db, err := diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	const streams, perStream = 40, 500
	for i := range streams {
		for range perStream / 50 {
			batch := make([]cairn.EventData, 50)
			for j := range batch {
				data := make([]byte, 256)
				for k := range data {
					data[k] = byte(rng.Uint32())
				}
				batch[j] = cairn.EventData{Type: "E", ContentType: cairn.ContentBinary, Data: data}
			}
			if _, err := s.Append(ctx, fmt.Sprintf("s%02d", i), cairn.Any, batch...); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, err := s.DiskBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range streams {
		id := fmt.Sprintf("s%02d", i)
		switch i % 4 {
		case 0, 1:
			err = s.DeleteStream(ctx, id, cairn.Any)
		case 2:
			err = s.TombstoneStream(ctx, id, cairn.Any)
		case 3:
			err = s.TruncateStream(ctx, id, perStream-10)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := s.DiskBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk bytes: %d before, %d after compaction", before, after)
	if after > before/4 {
		t.Fatalf("compaction kept %d of %d bytes; the live events are 2%% of them", after, before)
	}
	if segment > 0 {
		// 10 live events in each of 10 streams, spread over the log:
		// at most 10 segments hold a live event, plus the last.
		segs, err := filepath.Glob(filepath.Join(dir, "log", "*.log"))
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) > 11 {
			t.Fatalf("%d segments after compaction, want at most 11", len(segs))
		}
	}
	n := 0
	for e, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		if i, _ := strconv.Atoi(e.StreamID[1:]); i%4 != 3 || e.Version < perStream-10 {
			t.Fatalf("event %s@%d survived compaction", e.StreamID, e.Version)
		}
		n++
	}
	if n != streams/4*10 {
		t.Fatalf("%d events after compaction, want %d", n, streams/4*10)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The last stream of the log was truncated; delete it too, compact,
	// reopen: the next append still gets a fresh position, and a deleted
	// stream continues its versions.
	db, err = diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s = cairn.NewStore(db, cairn.Options{})
	last := fmt.Sprintf("s%02d", streams-1)
	if err := s.DeleteStream(ctx, last, cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if has, err := s.HasEvents(ctx); err != nil || !has {
		t.Fatalf("HasEvents = %v, %v", has, err)
	}
	_ = s.Close()
	db, err = diskstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s = cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	res, err := s.Append(ctx, last, cairn.NoStream, cairn.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position != streams*perStream || res.Version != perStream {
		t.Fatalf("append after compaction and reopen = %+v, want position %d version %d", res, streams*perStream, perStream)
	}
	if _, err := s.Append(ctx, "s02", cairn.Any, cairn.EventData{Type: "E"}); !errors.Is(err, cairn.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream after compaction: %v", err)
	}
}
