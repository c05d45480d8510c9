package storetest

// Rules of appends: expected versions, results, what is recorded,
// contiguity, concurrent writers and idempotent retries.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

func testExpectedVersion(t *testing.T, nb NewBackend) {
	// Each state is prepared on a fresh store: the stream "s" is missing,
	// exists at version 2, or was soft-deleted at version 2.
	type state struct {
		name    string
		prepare func(t *testing.T, s *cairn.Store)
		current int64 // -1: does not exist
		next    int64 // version the next event gets
	}
	ctx := context.Background()
	states := []state{
		{"missing", func(t *testing.T, s *cairn.Store) {}, -1, 0},
		{"existing", func(t *testing.T, s *cairn.Store) { mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...) }, 2, 3},
		{"deleted", func(t *testing.T, s *cairn.Store) {
			mustAppend(t, s, "s", cairn.NoStream, evs(3, "E")...)
			if err := s.DeleteStream(ctx, "s", cairn.Any); err != nil {
				t.Fatal(err)
			}
		}, -1, 3},
	}
	expectations := []cairn.ExpectedVersion{cairn.NoStream, cairn.Any, cairn.StreamExists, cairn.Exact(0), cairn.Exact(2), cairn.Exact(3)}
	for _, st := range states {
		for _, exp := range expectations {
			t.Run(st.name+"/"+exp.String(), func(t *testing.T) {
				s, _ := open(t, nb)
				st.prepare(t, s)
				before := len(readAll(t, s))
				ok := exp.Check("s", st.current) == nil
				res, err := s.Append(ctx, "s", exp, ev("Next"))
				if !ok {
					wantWrongVersion(t, err, "s", exp, st.current)
					wantVersion(t, s, "s", st.current)
					wantLogLen(t, s, before)
					return
				}
				if err != nil {
					t.Fatalf("Append with %v on a %s stream: %v", exp, st.name, err)
				}
				if res.Version != st.next {
					t.Fatalf("Append returned version %d, want %d", res.Version, st.next)
				}
				wantVersion(t, s, "s", st.next)
				wantLogLen(t, s, before+1)
			})
		}
	}
}

func testAppendResult(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	res := mustAppend(t, s, "a", cairn.NoStream, evs(3, "E")...)
	if res.Version != 2 || res.Position != 2 {
		t.Fatalf("first append of 3 events = %+v, want version 2 position 2", res)
	}
	res = mustAppend(t, s, "b", cairn.Any, evs(1, "E")...)
	if res.Version != 0 || res.Position != 3 {
		t.Fatalf("append to b = %+v, want version 0 position 3", res)
	}
	res = mustAppend(t, s, "a", cairn.Exact(2), evs(2, "E")...)
	if res.Version != 4 || res.Position != 5 {
		t.Fatalf("second append to a = %+v, want version 4 position 5", res)
	}
	wantVersion(t, s, "a", 4)
	got, err := s.ReadStream(context.Background(), "a", 0, 10, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(positions(got), []uint64{0, 1, 2, 4, 5}) || !slices.Equal(versions(got), seq[int64](0, 4)) {
		t.Fatalf("stream a: positions %v versions %v", positions(got), versions(got))
	}
}

func testRecordedEvent(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	id := uuid.New()
	in := cairn.EventData{
		ID:          id,
		Type:        "OrderPlaced",
		ContentType: cairn.ContentBinary,
		Data:        []byte{0, 1, 2, 255},
		Metadata:    []byte(`{"user":"ada"}`),
		Tags:        []string{"tenant:7", "vip"},
	}
	before := time.Now().Add(-time.Second)
	mustAppend(t, s, "order-1", cairn.NoStream, in, cairn.EventData{Type: "Generated"}, cairn.EventData{Type: "Generated"})
	after := time.Now().Add(time.Second)
	got, err := s.ReadStream(context.Background(), "order-1", 0, 10, cairn.Forward)
	if err != nil || len(got) != 3 {
		t.Fatalf("ReadStream = %d events, %v", len(got), err)
	}
	e := got[0]
	if e.ID != id || e.Type != in.Type || e.ContentType != in.ContentType || string(e.Data) != string(in.Data) ||
		string(e.Metadata) != string(in.Metadata) || !slices.Equal(e.Tags, in.Tags) {
		t.Fatalf("recorded event %+v does not match %+v", e.EventData, in)
	}
	if e.StreamID != "order-1" || e.Version != 0 || e.Position != 0 {
		t.Fatalf("recorded at stream %q version %d position %d", e.StreamID, e.Version, e.Position)
	}
	if e.Created.Before(before) || e.Created.After(after) || e.Created.Location() != time.UTC {
		t.Fatalf("created %v, want a UTC time between %v and %v", e.Created, before, after)
	}
	// Generated IDs are set, distinct and time-ordered (UUIDv7).
	g1, g2 := got[1].ID, got[2].ID
	if g1 == uuid.Nil || g1 == g2 || g1.Version() != 7 || g2.Version() != 7 {
		t.Fatalf("generated ids %v %v, want distinct version 7 UUIDs", g1, g2)
	}
	if strings.Compare(g1.String(), g2.String()) > 0 {
		t.Fatalf("generated ids %v, %v are not time-ordered", g1, g2)
	}
	// The caller's events are not modified.
	if in.ID != id {
		t.Fatal("Append changed the caller's event")
	}
	// The store keeps its own copy: neither the writer reusing its buffers
	// nor a reader changing what it read alters the recorded event.
	in.Data[0], in.Metadata[0], in.Tags[0] = 'X', 'X', "changed"
	e.Data[1], e.Metadata[1], e.Tags[1] = 'Y', 'Y', "changed"
	again, err := s.ReadStream(context.Background(), "order-1", 0, 1, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if a := again[0]; string(a.Data) != "\x00\x01\x02\xff" || string(a.Metadata) != `{"user":"ada"}` || !slices.Equal(a.Tags, []string{"tenant:7", "vip"}) {
		t.Fatalf("the recorded event changed with the caller's buffers: %q %q %q", a.Data, a.Metadata, a.Tags)
	}
}

func testContiguousAppends(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	const writers, appends, size = 4, 10, 5
	var mu sync.Mutex
	var results []cairn.AppendResult
	var streams []string
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("w-%d", w)
			for range appends {
				res, err := s.Append(context.Background(), stream, cairn.Any, evs(size, "E")...)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				results = append(results, res)
				streams = append(streams, stream)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	log := readAll(t, s)
	if len(log) != writers*appends*size {
		t.Fatalf("log has %d events, want %d", len(log), writers*appends*size)
	}
	for i, e := range log {
		if e.Position != uint64(i) {
			t.Fatalf("log[%d] has position %d", i, e.Position)
		}
	}
	for i, res := range results {
		for k := range size {
			e := log[res.Position-uint64(k)]
			if e.StreamID != streams[i] || e.Version != res.Version-int64(k) {
				t.Fatalf("append %+v to %q: position %d holds %q version %d", res, streams[i], res.Position-uint64(k), e.StreamID, e.Version)
			}
		}
	}
}

func testConcurrentExactAppends(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	const writers, total = 8, 120
	var mu sync.Mutex
	won := map[uuid.UUID]int64{} // event id → version it was acknowledged at
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				v, err := s.StreamVersion(ctx, "race")
				if errors.Is(err, cairn.ErrStreamNotFound) {
					v = -1
				} else if err != nil {
					t.Error(err)
					return
				}
				if v+1 >= total {
					return
				}
				exp := cairn.Exact(v)
				if v < 0 {
					exp = cairn.NoStream
				}
				e := ev("Step")
				e.ID = uuid.New()
				res, err := s.Append(ctx, "race", exp, e)
				if errors.Is(err, cairn.ErrWrongExpectedVersion) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if res.Version != v+1 {
					t.Errorf("append expecting %d returned version %d", v, res.Version)
				}
				mu.Lock()
				won[e.ID] = res.Version
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got, err := readStream(s, "race")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions(got), seq[int64](0, total-1)) {
		t.Fatalf("versions %v, want 0..%d with no gap or duplicate", versions(got), total-1)
	}
	if len(won) != total {
		t.Fatalf("%d appends acknowledged, want exactly one winner for each of %d versions", len(won), total)
	}
	for _, e := range got {
		if v, ok := won[e.ID]; !ok || v != e.Version {
			t.Fatalf("event %v at version %d was acknowledged at %d (found %v)", e.ID, e.Version, v, ok)
		}
	}
}

func testIdempotentRetry(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	for _, exp := range []cairn.ExpectedVersion{cairn.NoStream, cairn.Any, cairn.StreamExists, cairn.Exact(0)} {
		t.Run(exp.String(), func(t *testing.T) {
			s, _ := open(t, nb)
			if exp != cairn.NoStream && exp != cairn.Any {
				mustAppend(t, s, "s", cairn.NoStream, ev("Init"))
			}
			mustAppend(t, s, "noise", cairn.Any, ev("Noise"))
			batch := withIDs(evs(3, "E"))
			first := mustAppend(t, s, "s", exp, batch...)
			mustAppend(t, s, "noise", cairn.Any, ev("Noise"))
			logLen := len(readAll(t, s))
			again, err := s.Append(ctx, "s", exp, batch...)
			if err != nil {
				t.Fatalf("retrying the same append: %v", err)
			}
			if again != first {
				t.Fatalf("retry returned %+v, want the first result %+v", again, first)
			}
			wantVersion(t, s, "s", first.Version)
			wantLogLen(t, s, logLen)

			// The same first ID in an append that is not a repeat is refused.
			other := withIDs(evs(2, "E"))
			other[0].ID = batch[0].ID
			if _, err := s.Append(ctx, "s", cairn.Any, other...); !errors.Is(err, cairn.ErrDuplicateEvent) {
				t.Fatalf("reusing an event id in a different append: %v, want ErrDuplicateEvent", err)
			}
			if _, err := s.Append(ctx, "elsewhere", cairn.Any, batch...); !errors.Is(err, cairn.ErrDuplicateEvent) {
				t.Fatalf("repeating an append on another stream: %v, want ErrDuplicateEvent", err)
			}
			wantVersion(t, s, "s", first.Version)
			wantVersion(t, s, "elsewhere", -1)
			wantLogLen(t, s, logLen)
		})
	}
}

// testAppendLeavesEvents: once Append has returned successfully the engine
// no longer uses the slice of events it was given (the Store reuses its
// copy of a large append's events for the next): changing every element
// afterwards changes nothing recorded.
func testAppendLeavesEvents(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	ctx := context.Background()
	const n = 300
	events := make([]cairn.EventData, n)
	want := make([]cairn.EventData, n)
	for i := range events {
		events[i] = cairn.EventData{ID: uuid.New(), Type: "Placed", ContentType: cairn.ContentBinary, Data: []byte{byte(i), byte(i >> 8)}}
		want[i] = events[i]
	}
	if _, err := b.Append(ctx, "leave-1", cairn.NoStream, events); err != nil {
		t.Fatal(err)
	}
	for i := range events {
		events[i] = cairn.EventData{ID: uuid.New(), Type: "Scribbled", Data: []byte("x")}
	}
	got, err := s.ReadStream(ctx, "leave-1", 0, 2*n, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d events recorded, want %d", len(got), n)
	}
	for i, e := range got {
		if e.ID != want[i].ID || e.Type != want[i].Type || string(e.Data) != string(want[i].Data) {
			t.Fatalf("event %d recorded as %+v, want %+v: the engine used the slice after Append returned", i, e.EventData, want[i])
		}
	}
}
