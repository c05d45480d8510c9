package diskstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
)

// TestCompactKeepsFramesAfterMarker: appends acknowledged while a
// compaction runs, after it had the index flushed and before it frees the
// log's bytes, are in no index on disk yet: after a crash only a replay of
// their frames, from the flushed marker on, finds them again. Compaction
// must leave those frames whole. The crash is a copy of the store's files
// taken while it is open (what a kill -9 leaves: the index as last
// flushed, the log as written); the store reopened on the copy must hold
// every acknowledged append, and pass Check.
//
// With small segments, those frames are also in segments after the
// marker's.
func TestCompactKeepsFramesAfterMarker(t *testing.T) {
	for _, c := range []struct{ segment, width int64 }{{0, 150}, {64 << 10, 30}} {
		t.Run(fmt.Sprintf("segment=%d", c.segment), func(t *testing.T) { compactKeepsFramesAfterMarker(t, c.segment, int(c.width)) })
	}
}

// compactKeepsFramesAfterMarker appends groups over width streams.
func compactKeepsFramesAfterMarker(t *testing.T, segment int64, width int) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentBytes: segment}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	want := map[string][]string{} // acknowledged events' data, by stream
	data := func(stream string, n int) string {
		return fmt.Sprintf("%s-%d-%s", stream, n, strings.Repeat("x", 200))
	}
	// Groups over many streams with long names: frames whose index writes
	// take many blocks of the log, between the events of one frame and
	// those of the next.
	wide := func(prefix string, round int) {
		t.Helper()
		var reqs []cairn.AppendRequest
		for i := range width {
			stream := fmt.Sprintf("%s-%03d-%s", prefix, i, strings.Repeat("n", 100))
			var evs []cairn.EventData
			for range 2 {
				d := data(stream, len(want[stream])+len(evs))
				evs = append(evs, cairn.EventData{Type: "E", Data: []byte(d)})
			}
			reqs = append(reqs, cairn.AppendRequest{Stream: stream, Expected: cairn.Any, Events: evs})
		}
		if _, err := s.AppendBatch(ctx, reqs...); err != nil {
			t.Fatalf("%s round %d: %v", prefix, round, err)
		}
		for _, r := range reqs {
			for _, e := range r.Events {
				want[r.Stream] = append(want[r.Stream], string(e.Data))
			}
		}
	}
	// Enough index writes that the memtable is grown (and flushed) before
	// compaction, rather than after it, past the frames freed.
	for round := range 10 {
		for i := range 3 {
			evs := make([]cairn.EventData, 50)
			for j := range evs {
				evs[j] = cairn.EventData{Type: "E", Data: []byte(data("dead", (round*3+i)*50+j))}
			}
			if _, err := s.Append(ctx, "dead", cairn.Any, evs...); err != nil {
				t.Fatal(err)
			}
		}
		wide(fmt.Sprintf("before%d", round), round)
	}
	if err := s.DeleteStream(ctx, "dead", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := db.purgeDead(ctx); err != nil {
		t.Fatal(err)
	}
	flush := &flushOp{}
	if err := db.submit(ctx, flush); err != nil {
		t.Fatal(err)
	}
	defer flush.snap.Close()
	m := flush.flushed
	// Appends after the flush, before the bytes are freed: in the log
	// that compaction frees, past the marker.
	sealed := db.sealed.Load()
	for round := range 8 {
		wide("after", round)
	}
	if db.sealed.Load() != sealed {
		t.Fatal("the index was flushed past the marker: no replay would read the frames after it")
	}
	t.Logf("marker: segment %d, end %d; log segments %v", m.seg, m.end, db.log.Segments())
	before := db.log.DiskBytes()
	if err := db.freeDead(ctx, m, flush.snap); err != nil {
		t.Fatal(err)
	}
	// The dead stream's 1,500 events took some 320 KB, before the marker:
	// they are still freed.
	freed := before - db.log.DiskBytes()
	t.Logf("log: %d bytes freed", freed)
	if freed < 256<<10 {
		t.Fatalf("compaction freed %d bytes of the log, want the dead stream's", freed)
	}
	crashed := t.TempDir()
	copyTree(t, dir, crashed)

	db, err = Open(crashed, opts)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	s2 := cairn.NewStore(db, cairn.Options{})
	for stream, datas := range want {
		evs, err := s2.ReadStream(ctx, stream, 0, len(datas)+1, cairn.Forward)
		if err != nil {
			t.Fatalf("stream %.20s: %v", stream, err)
		}
		if len(evs) != len(datas) {
			t.Fatalf("stream %.20s: %d events after the crash, %d acknowledged", stream, len(evs), len(datas))
		}
		for i, e := range evs {
			if string(e.Data) != datas[i] {
				t.Fatalf("stream %.20s event %d: %.30q, want %.30q", stream, i, e.Data, datas[i])
			}
		}
	}
	if evs, err := s2.ReadStream(ctx, "dead", 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("deleted stream after the crash: %d events, %v; want ErrStreamNotFound", len(evs), err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, crashed, CheckOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Problems {
		t.Errorf("check: %s", p)
	}
}
