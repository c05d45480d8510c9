package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
)

// TestEventsKeepTheirTypes appends events of many types and content types,
// with and without metadata and tags, alone, in concurrent groups and in a
// batch, and reads them back by stream and from the log.
func TestEventsKeepTheirTypes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	events := func(stream string, n, kinds int) []cairn.EventData {
		out := make([]cairn.EventData, n)
		for i := range out {
			out[i] = cairn.EventData{
				Type:        fmt.Sprintf("T%d", (i*7)%kinds),
				ContentType: cairn.ContentType(i % 2),
				Data:        []byte(fmt.Sprintf("%s-%d", stream, i)),
			}
			if i%3 == 0 {
				out[i].Metadata = []byte{byte(i)}
			}
			if i%4 == 1 {
				out[i].Tags = []string{"a", fmt.Sprint(i)}
			}
		}
		return out
	}
	st := cairn.NewStore(s, cairn.Options{})
	defer st.Close()
	want := map[string][]cairn.EventData{}
	// one append of 30 types; concurrent appends of one type, two types and
	// twelve; a batch of three streams.
	want["one"] = events("one", 100, 30)
	if _, err := st.Append(ctx, "one", cairn.NoStream, want["one"]...); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		stream := fmt.Sprintf("g%d", w)
		want[stream] = events(stream, 3*(w+1), []int{1, 2, 12}[w%3])
		ev := want[stream]
		wg.Go(func() {
			for i := 0; i < len(ev); i += w + 1 {
				if _, err := st.Append(ctx, stream, cairn.Any, ev[i:i+w+1]...); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var reqs []cairn.AppendRequest
	for i, n := range []int{5, 1, 40} {
		stream := fmt.Sprintf("b%d", i)
		want[stream] = events(stream, n, 3*i+1)
		reqs = append(reqs, cairn.AppendRequest{Stream: stream, Expected: cairn.NoStream, Events: want[stream]})
	}
	if _, err := st.AppendBatch(ctx, reqs...); err != nil {
		t.Fatal(err)
	}

	same := func(got []cairn.Event, want []cairn.EventData) error {
		if len(got) != len(want) {
			return fmt.Errorf("%d events, want %d", len(got), len(want))
		}
		for i, e := range got {
			w := want[i]
			if e.Version != int64(i) || e.Type != w.Type || e.ContentType != w.ContentType || string(e.Data) != string(w.Data) ||
				string(e.Metadata) != string(w.Metadata) || !slices.Equal(e.Tags, w.Tags) {
				return fmt.Errorf("event %d = %+v, want %+v", i, e, w)
			}
		}
		return nil
	}
	total := 0
	for stream, w := range want {
		total += len(w)
		got, err := st.ReadStream(ctx, stream, 0, 1000, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		if err := same(got, w); err != nil {
			t.Errorf("%s: %v", stream, err)
		}
		got, err = st.ReadStream(ctx, stream, cairn.StreamEnd, 1000, cairn.Backward)
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(got)
		if err := same(got, w); err != nil {
			t.Errorf("%s backward: %v", stream, err)
		}
	}
	all, err := st.ReadAll(ctx, 0, 10000, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	byStream := map[string][]cairn.Event{}
	for i, e := range all {
		if e.Position != uint64(i) {
			t.Fatalf("event %d of the log at position %d", i, e.Position)
		}
		byStream[e.StreamID] = append(byStream[e.StreamID], e)
	}
	if len(all) != total {
		t.Fatalf("log has %d events, want %d", len(all), total)
	}
	for stream, w := range want {
		if err := same(byStream[stream], w); err != nil {
			t.Errorf("%s in the log: %v", stream, err)
		}
	}
}

// TestReadAcrossChunks reads a stream of many appends of different sizes,
// of small events (a chunk per append) and of large ones (several chunks
// per append), truncated, then compacted, in pages of several sizes from
// every version and position, both ways.
func TestReadAcrossChunks(t *testing.T) {
	for _, size := range []int{8, 700} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testReadAcrossChunks(t, size) })
	}
}

func testReadAcrossChunks(t *testing.T, size int) {
	ctx := context.Background()
	s := cairn.NewStore(newStore(t), cairn.Options{})
	defer s.Close()
	data := func(v int) []byte {
		b := make([]byte, size)
		copy(b, fmt.Sprint(v))
		return b
	}
	n := 0
	expected := cairn.NoStream
	for _, k := range []int{1, 5, 2, 17, 1, 1, 30, 3} {
		ev := make([]cairn.EventData, k)
		for i := range ev {
			ev[i] = cairn.EventData{Type: "E", Data: data(n)}
			n++
		}
		// another stream in between, so that positions and versions differ
		if _, err := s.Append(ctx, "other", cairn.Any, cairn.EventData{Type: "E", Data: data(-1)}); err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(ctx, "s", expected, ev...)
		if err != nil {
			t.Fatal(err)
		}
		expected = cairn.Exact(res.Version)
	}
	all, err := s.ReadAll(ctx, 0, 1000, cairn.Forward)
	if err != nil || len(all) != n+8 {
		t.Fatalf("ReadAll: %d events, %v; want %d", len(all), err, n+8)
	}
	readAll := func(before int64, compacted bool) {
		t.Helper()
		var want []cairn.Event
		for _, e := range all {
			if !compacted || e.StreamID != "s" || e.Version >= before {
				want = append(want, e)
			}
		}
		last := all[len(all)-1].Position
		for _, count := range []int{1, 3, 7, 100} {
			for from := uint64(0); from <= last+1; from++ {
				got, err := s.ReadAll(ctx, from, count, cairn.Forward)
				if err != nil {
					t.Fatal(err)
				}
				var w []uint64
				for _, e := range want {
					if e.Position >= from && len(w) < count {
						w = append(w, e.Position)
					}
				}
				checkPositions(t, "forward", from, got, w)
				got, err = s.ReadAll(ctx, from, count, cairn.Backward)
				if err != nil {
					t.Fatal(err)
				}
				w = nil
				for i := len(want) - 1; i >= 0; i-- {
					if want[i].Position <= from && len(w) < count {
						w = append(w, want[i].Position)
					}
				}
				checkPositions(t, "backward", from, got, w)
			}
		}
	}
	readStream := func(before int64) {
		t.Helper()
		for _, count := range []int{1, 2, 3, 7, 100} {
			for from := int64(0); from <= int64(n); from++ {
				got, err := s.ReadStream(ctx, "s", from, count, cairn.Forward)
				if err != nil {
					t.Fatal(err)
				}
				var want []int64
				for x := max(from, before); x < int64(n) && len(want) < count; x++ {
					want = append(want, x)
				}
				check(t, "forward", from, count, got, want)
				got, err = s.ReadStream(ctx, "s", from, count, cairn.Backward)
				if err != nil {
					t.Fatal(err)
				}
				want = nil
				for x := min(from, int64(n)-1); x >= before && len(want) < count; x-- {
					want = append(want, x)
				}
				check(t, "backward", from, count, got, want)
			}
		}
	}
	readStream(0)
	readAll(0, false)
	// Truncate inside an append of 17 (versions 8–24), then compact.
	const before = 13
	if err := s.TruncateStream(ctx, "s", before); err != nil {
		t.Fatal(err)
	}
	readStream(before)
	readAll(before, false)
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	readStream(before)
	readAll(before, true)
}

func checkPositions(t *testing.T, dir string, from uint64, got []cairn.Event, want []uint64) {
	t.Helper()
	ps := make([]uint64, len(got))
	for i, e := range got {
		ps[i] = e.Position
	}
	if !slices.Equal(ps, want) {
		t.Fatalf("ReadAll %s from %d: positions %v, want %v", dir, from, ps, want)
	}
}

func check(t *testing.T, dir string, from int64, count int, got []cairn.Event, want []int64) {
	t.Helper()
	vs := make([]int64, len(got))
	for i, e := range got {
		vs[i] = e.Version
		if !strings.HasPrefix(string(e.Data), fmt.Sprint(e.Version)) {
			t.Fatalf("%s from %d: version %d holds %q", dir, from, e.Version, e.Data)
		}
	}
	if !slices.Equal(vs, want) {
		t.Fatalf("%s from %d, %d: versions %v, want %v", dir, from, count, vs, want)
	}
}
