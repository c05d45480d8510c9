package pgstore_test

import (
	"context"
	"fmt"
	"slices"
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

// TestReadStreamAcrossRuns reads a stream of many appends of different
// sizes, truncated, in pages of every size from every version, both ways.
func TestReadStreamAcrossRuns(t *testing.T) {
	ctx := context.Background()
	s := cairn.NewStore(newStore(t), cairn.Options{})
	defer s.Close()
	var ids []string
	expected := cairn.NoStream
	for _, n := range []int{1, 5, 2, 17, 1, 1, 30, 3} {
		ev := make([]cairn.EventData, n)
		for k := range ev {
			ev[k] = cairn.EventData{Type: "E", Data: []byte(fmt.Sprint(len(ids)))}
			ids = append(ids, fmt.Sprint(len(ids)))
		}
		// another stream in between, so that positions and versions differ
		if _, err := s.Append(ctx, "other", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(ctx, "s", expected, ev...)
		if err != nil {
			t.Fatal(err)
		}
		expected = cairn.Exact(res.Version)
	}
	const before = 4
	if err := s.TruncateStream(ctx, "s", before); err != nil {
		t.Fatal(err)
	}
	n := int64(len(ids))
	for _, count := range []int{1, 2, 3, 7, 100} {
		for from := int64(0); from <= n; from++ {
			got, err := s.ReadStream(ctx, "s", from, count, cairn.Forward)
			if err != nil {
				t.Fatal(err)
			}
			lo := max(from, before)
			var want []int64
			for x := lo; x < n && len(want) < count; x++ {
				want = append(want, x)
			}
			check(t, "forward", from, count, got, want)
			got, err = s.ReadStream(ctx, "s", from, count, cairn.Backward)
			if err != nil {
				t.Fatal(err)
			}
			want = nil
			for x := min(from, n-1); x >= before && len(want) < count; x-- {
				want = append(want, x)
			}
			check(t, "backward", from, count, got, want)
		}
	}
}

func check(t *testing.T, dir string, from int64, count int, got []cairn.Event, want []int64) {
	t.Helper()
	vs := make([]int64, len(got))
	for i, e := range got {
		vs[i] = e.Version
		if string(e.Data) != fmt.Sprint(e.Version) {
			t.Fatalf("%s from %d: version %d holds %q", dir, from, e.Version, e.Data)
		}
	}
	if !slices.Equal(vs, want) {
		t.Fatalf("%s from %d, %d: versions %v, want %v", dir, from, count, vs, want)
	}
}
