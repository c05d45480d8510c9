package diskstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/internal/cputime"
	"github.com/google/uuid"
)

func openBench(b *testing.B, opts diskstore.Options) *cairn.Store {
	b.Helper()
	db, err := diskstore.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	b.Cleanup(func() { s.Close() })
	return s
}

func payload() []byte {
	p := make([]byte, 256)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

// BenchmarkAppend: one writer, one durable event per append.
func BenchmarkAppend(b *testing.B) {
	s := openBench(b, diskstore.Options{})
	ctx := context.Background()
	ev := cairn.EventData{Type: "E", Data: payload()}
	b.SetBytes(256)
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, fmt.Sprint("s", i%10_000), cairn.Any, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel: 64 writers per core, one durable event per
// append, each writer on its own stream with an exact expected version.
func BenchmarkAppendParallel(b *testing.B) {
	b.Run("sync", func(b *testing.B) { appendParallel(b, diskstore.Options{}) })
	b.Run("nosync", func(b *testing.B) { appendParallel(b, diskstore.Options{NoSync: true}) })
}

func appendParallel(b *testing.B, opts diskstore.Options) {
	s := openBench(b, opts)
	ctx := context.Background()
	ev := cairn.EventData{Type: "E", Data: payload()}
	var n atomic.Int64
	b.SetBytes(256)
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprint("w", n.Add(1))
		exp := cairn.NoStream
		for pb.Next() {
			res, err := s.Append(ctx, stream, exp, ev)
			if err != nil {
				b.Error(err)
				return
			}
			exp = cairn.Exact(res.Version)
		}
	})
}

// BenchmarkAppendBatch1000: one writer, appends of 1000 events (W3's
// shape); b.N counts events. Its bytes allocated per event include the
// Store's copy of the events unless the Store reuses it.
func BenchmarkAppendBatch1000(b *testing.B) {
	s := openBench(b, diskstore.Options{})
	ctx := context.Background()
	evs := make([]cairn.EventData, 1000)
	for i := range evs {
		evs[i] = cairn.EventData{Type: "E", Data: payload()}
	}
	b.SetBytes(256)
	b.ReportAllocs()
	for n := 0; n < b.N; n += 1000 {
		k := min(1000, b.N-n)
		if _, err := s.Append(ctx, "s", cairn.Any, evs[:k]...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAll reads the global log; b.N counts events.
func BenchmarkReadAll(b *testing.B) {
	s := openBench(b, diskstore.Options{NoSync: true})
	ctx := context.Background()
	evs := make([]cairn.EventData, 1000)
	for i := range evs {
		evs[i] = cairn.EventData{Type: "E", Data: payload()}
	}
	const total = 200_000
	for i := range total / 1000 {
		if _, err := s.Append(ctx, fmt.Sprint("s", i%100), cairn.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256)
	b.ResetTimer()
	n := 0
	for n < b.N {
		for _, err := range s.All(ctx, 0, cairn.Forward) {
			if err != nil {
				b.Fatal(err)
			}
			if n++; n == b.N {
				break
			}
		}
	}
}

// BenchmarkRehydrate reads a 1000-event stream from the start.
func BenchmarkRehydrate(b *testing.B) {
	s := openBench(b, diskstore.Options{NoSync: true})
	ctx := context.Background()
	ev := cairn.EventData{Type: "E", Data: payload()}
	for i := range 1000 {
		for _, st := range []string{"agg", "other"} {
			if _, err := s.Append(ctx, st, cairn.Any, ev); err != nil {
				b.Fatal(i, err)
			}
		}
	}
	for b.Loop() {
		n := 0
		for _, err := range s.Stream(ctx, "agg", 0, cairn.Forward) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("read %d events", n)
		}
	}
}

// BenchmarkRehydrateInterleaved reads a 1000-event stream from the start
// whose single-event appends interleave with those of 63 other streams
// (W2's shape): its events lie about 64 records apart in the log.
func BenchmarkRehydrateInterleaved(b *testing.B) {
	s := fillInterleaved(b, 64, 1000)
	ctx := context.Background()
	for b.Loop() {
		n := 0
		for _, err := range s.Stream(ctx, "w7", 0, cairn.Forward) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("read %d events", n)
		}
	}
}

// BenchmarkReadFirstEvent reads the first event of each of 64 streams in
// turn, whose single-event appends interleave: the read a $ce- subscriber
// makes of each stream of a page, to see what of the stream is visible.
func BenchmarkReadFirstEvent(b *testing.B) {
	s := fillInterleaved(b, 64, 1000)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		evs, err := s.ReadStream(ctx, fmt.Sprint("w", i%64), 0, 1, cairn.Forward)
		if err != nil || len(evs) != 1 || evs[0].Version != 0 {
			b.Fatal(evs, err)
		}
		i++
	}
}

// fillInterleaved opens a store and appends events single events to each
// of streams streams (w0, w1, …) in turn.
func fillInterleaved(b *testing.B, streams, events int) *cairn.Store {
	s := openBench(b, diskstore.Options{NoSync: true})
	ctx := context.Background()
	ev := cairn.EventData{Type: "E", Data: payload()}
	for range events {
		for w := range streams {
			if _, err := s.Append(ctx, fmt.Sprint("w", w), cairn.Any, ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

// BenchmarkReadQueryTag reads the 1000 events of one tag, spread evenly
// over a log of 1M events (D3 of cairn bench, smaller): the read follows
// the tag's list, so it costs the 1000 events, not the log.
func BenchmarkReadQueryTag(b *testing.B) {
	s := openBench(b, diskstore.Options{NoSync: true})
	ctx := context.Background()
	evs := make([]cairn.EventData, 1000)
	for i := range evs {
		evs[i] = cairn.EventData{Type: "E", Data: payload()}
	}
	const total, matches = 1_000_000, 1000
	for i := range matches {
		batch := evs[:total/matches]
		batch[len(batch)-1].Tags = []string{"d3"}
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%100), cairn.Any, batch...); err != nil {
			b.Fatal(err)
		}
	}
	q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"d3"}}}}
	for b.Loop() {
		got, err := s.ReadQuery(ctx, q, 0, matches, cairn.Forward)
		if err != nil || len(got) != matches {
			b.Fatalf("read %d events, %v", len(got), err)
		}
	}
}

// BenchmarkAppendIf: one writer appending on a condition on its own tag,
// after its last append (D1 of cairn bench, one writer), beside the same
// appends without the condition.
func BenchmarkAppendIf(b *testing.B) {
	for _, conditional := range []bool{false, true} {
		b.Run(fmt.Sprint("conditional=", conditional), func(b *testing.B) {
			s := openBench(b, diskstore.Options{NoSync: true})
			ctx := context.Background()
			ev := cairn.EventData{Type: "E", Data: payload(), Tags: []string{"mine"}}
			cond := cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"mine"}}}}}
			for b.Loop() {
				var res cairn.AppendResult
				var err error
				if conditional {
					res, err = s.AppendIf(ctx, "s", cairn.Any, cond, ev)
				} else {
					res, err = s.Append(ctx, "s", cairn.Any, ev)
				}
				if err != nil {
					b.Fatal(err)
				}
				cond.After = &res.Position
			}
		})
	}
}

// BenchmarkAppendWriters: W2 of cairn bench (one durable event per append,
// each writer on its own stream with an exact expected version) at 1 to
// 256 writers. Besides the time per append it reports the CPU the whole
// process spent per append (cpu-µs/op: the writers, the committer, the
// syncer and pebble's flushes and compactions), which a loaded machine
// moves much less than the wall time: the committer's work is serial, so
// what it costs bounds the throughput on any machine.
func BenchmarkAppendWriters(b *testing.B) {
	for _, writers := range []int{1, 4, 16, 64, 256} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			appendWriters(b, openBench(b, diskstore.Options{}), writers)
		})
	}
}

// BenchmarkAppendWritersClientIDs: the same with IDs the writers bring,
// as clients over the wire do: time-ordered, made before the appends
// reach the store, so that they reach the committer a little out of
// order (writer w's k-th append has the k·writers+w-th ID of one
// sequence, and the writers run unevenly). An ID below the greatest one
// recorded used to cost an index lookup.
func BenchmarkAppendWritersClientIDs(b *testing.B) {
	for _, writers := range []int{64, 256} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			ids := make([]uuid.UUID, b.N)
			for i := range ids {
				ids[i] = uuid.Must(uuid.NewV7())
			}
			appendWriters(b, openBench(b, diskstore.Options{}), writers, ids...)
		})
	}
}

// BenchmarkAppendWritersRandomIDs: W2 at 64 writers with IDs the clients
// made at random (UUIDv4, as the KurrentDB clients make them), on a store
// that holds 200,000 such appends and was reopened, as a server's store
// is: every new ID is below the greatest one recorded, and its duplicate
// check cost an index lookup until the committer kept a filter of the
// recorded IDs (idfilter.go).
func BenchmarkAppendWritersRandomIDs(b *testing.B) {
	const writers, recorded = 64, 200_000
	dir := b.TempDir()
	db, err := diskstore.Open(dir, diskstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	newID := randomIDs(uint64(b.N))
	ctx := context.Background()
	for n := 0; n < recorded; n += 1000 {
		reqs := make([]cairn.AppendRequest, 1000)
		for i := range reqs {
			reqs[i] = cairn.AppendRequest{Stream: fmt.Sprint("old", n+i), Expected: cairn.NoStream,
				Events: []cairn.EventData{{ID: newID(), Type: "E", Data: payload()}}}
		}
		if _, err := db.AppendBatch(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if db, err = diskstore.Open(dir, diskstore.Options{}); err != nil {
		b.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	b.Cleanup(func() { s.Close() })
	ids := make([]uuid.UUID, b.N)
	for i := range ids {
		ids[i] = newID()
	}
	appendWriters(b, s, writers, ids...)
}

// appendWriters runs W2 on s with writers; ids, if given, are the events'
// IDs.
func appendWriters(b *testing.B, s *cairn.Store, writers int, ids ...uuid.UUID) {
	ctx := context.Background()
	b.SetBytes(256)
	b.ResetTimer()
	cpu := cputime.Process()
	var wg sync.WaitGroup
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Go(func() {
			stream := fmt.Sprint("w", w)
			exp := cairn.NoStream
			ev := cairn.EventData{Type: "E", Data: payload()}
			for k := range n {
				if ids != nil {
					ev.ID = ids[k*writers+w]
				}
				res, err := s.Append(ctx, stream, exp, ev)
				if err != nil {
					b.Error(err)
					return
				}
				exp = cairn.Exact(res.Version)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if cpu >= 0 {
		b.ReportMetric(float64(cputime.Process()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	}
}
