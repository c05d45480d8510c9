package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5"
)

// commitUnmarked commits req as a group of one does, without the durable
// mark that follows: what a process that ended between the two leaves
// behind. The commit is asynchronous, so its events are visible to SQL but
// may not be durable yet.
func commitUnmarked(t *testing.T, s *Store, req cairn.AppendRequest) {
	t.Helper()
	ctx := context.Background()
	sql, args := s.oneCall(newPending(req), nil)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var status int32
		if err := tx.QueryRow(ctx, sql, args...).Scan(&status, nil, nil, nil, nil); err != nil {
			return err
		}
		if status != 0 {
			t.Fatalf("append_one: status %d", status)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnmarkedCommitIsNotRead: events committed without their durable mark
// are read by no reader (the log, a stream, the index, a query), and the
// stream's row, which their append updated, is answered for only once they
// are durable: StreamVersion writes the mark first, after which every
// reader sees them.
func TestUnmarkedCommitIsNotRead(t *testing.T) {
	ctx := context.Background()
	s, _ := migratedTo(t, len(migrations))
	if _, err := s.Append(ctx, "order-1", cairn.NoStream, []cairn.EventData{taggedEvent("x")}); err != nil {
		t.Fatal(err)
	}
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "order-2", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent("x")}})

	all, err := s.ReadAll(ctx, 0, 10, cairn.Forward)
	if err != nil || len(all) != 1 {
		t.Fatalf("log before the mark: %d events, %v; want the marked one", len(all), err)
	}
	if back, err := s.ReadAll(ctx, cairn.LogEnd, 10, cairn.Backward); err != nil || len(back) != 1 {
		t.Fatalf("log backward before the mark: %d events, %v", len(back), err)
	}
	ix, err := s.ReadIndex(ctx, cairn.IndexKey{Kind: cairn.IndexTag, Value: "x"}, 0, 10, cairn.Forward)
	if err != nil || len(ix) != 1 {
		t.Fatalf("tag list before the mark: %+v, %v", ix, err)
	}
	ix, err = s.ReadIndex(ctx, cairn.IndexKey{Kind: cairn.IndexTag, Value: "x"}, cairn.StreamEnd, 10, cairn.Backward)
	if err != nil || len(ix) != 1 {
		t.Fatalf("tag list backward before the mark: %+v, %v", ix, err)
	}
	q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"x"}}}}
	if got, err := s.ReadQuery(ctx, q, 0, 10, cairn.Forward); err != nil || len(got) != 1 {
		t.Fatalf("query before the mark: %d events, %v", len(got), err)
	}

	// The stream's version is the unmarked append's, made durable first.
	v, err := s.StreamVersion(ctx, "order-2")
	if err != nil || v != 0 {
		t.Fatalf("version of the stream of the unmarked append: %d, %v", v, err)
	}
	all, err = s.ReadAll(ctx, 0, 10, cairn.Forward)
	if err != nil || len(all) != 2 || all[1].StreamID != "order-2" {
		t.Fatalf("log once StreamVersion answered: %+v, %v; want both events", all, err)
	}

	// A read of a stream whose only append lacks its mark makes it
	// durable rather than call the stream empty.
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "order-3", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}})
	events, err := s.ReadStream(ctx, "order-3", 0, 10, cairn.Forward)
	if err != nil || len(events) != 1 {
		t.Fatalf("stream of an unmarked append: %d events, %v; want its event", len(events), err)
	}
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "order-4", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}})
	if ok, err := s.StreamExists(ctx, "order-4"); err != nil || !ok {
		t.Fatalf("existence of the stream of an unmarked append: %v, %v", ok, err)
	}
	if all, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(all) != 4 {
		t.Fatalf("log once StreamExists answered: %d events, %v; want 4", len(all), err)
	}
}

// TestUnmarkedCommitIsMarkedByOthers: the events of a process that ended
// before it wrote their durable mark become visible with the next mark any
// process writes: the next append's, or a listener's poll, which also
// reports them.
func TestUnmarkedCommitIsMarkedByOthers(t *testing.T) {
	ctx := context.Background()
	s, _ := migratedTo(t, len(migrations))
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}})
	if _, err := s.Append(ctx, "b", cairn.NoStream, []cairn.EventData{taggedEvent()}); err != nil {
		t.Fatal(err)
	}
	if all, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(all) != 2 || all[0].StreamID != "a" {
		t.Fatalf("log after the next append: %+v, %v; want a's event, then b's", all, err)
	}

	s.opts.PollInterval = 20 * time.Millisecond
	heads := make(chan uint64, 100)
	stop := s.Notify(func(head uint64) {
		select {
		case heads <- head:
		default:
		}
	})
	defer stop()
	if h := <-heads; h != 1 {
		t.Fatalf("the listener reports head %d first, want 1", h)
	}
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}})
	deadline := time.After(time.Minute)
	for h := uint64(1); h < 2; {
		select {
		case h = <-heads:
		case <-deadline:
			t.Fatal("the listener's poll never reported the unmarked append")
		}
	}
	if all, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(all) != 3 {
		t.Fatalf("log after the poll: %d events, %v; want 3", len(all), err)
	}
}

// TestRefusalWaitsForDurable: an append refused because of an append that
// is not durable yet (its mark is missing) is answered once that append is
// durable, so that its refusal never rests on events a crash could lose.
func TestRefusalWaitsForDurable(t *testing.T) {
	ctx := context.Background()
	s, _ := migratedTo(t, len(migrations))
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}})
	_, err := s.Append(ctx, "a", cairn.NoStream, []cairn.EventData{taggedEvent()})
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("append to a stream that an unmarked append created: %v, want a wrong expected version", err)
	}
	if all, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(all) != 1 {
		t.Fatalf("log after the refusal: %d events, %v; want the unmarked append's, durable", len(all), err)
	}
	// The same through a batch of two, a transaction of its own.
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}})
	_, err = s.AppendBatch(ctx, []cairn.AppendRequest{
		{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}},
		{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}},
	})
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("batch refused by an unmarked append: %v", err)
	}
	if all, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(all) != 2 {
		t.Fatalf("log after the batch's refusal: %d events, %v; want 2", len(all), err)
	}
	// The same by a Store that writes alone, whose groups commit in one
	// synchronous transaction each.
	for range aloneGroups + 1 {
		if _, err := s.Append(ctx, "alone", cairn.Any, []cairn.EventData{taggedEvent()}); err != nil {
			t.Fatal(err)
		}
	}
	if !s.commit.groupMode() {
		t.Fatal("a Store writing alone still commits asynchronously")
	}
	commitUnmarked(t, s, cairn.AppendRequest{Stream: "d", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}})
	_, err = s.Append(ctx, "d", cairn.NoStream, []cairn.EventData{taggedEvent()})
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("append refused by an unmarked append, committing alone: %v", err)
	}
	if all, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(all) != 6 {
		t.Fatalf("log after the refusal of a Store writing alone: %d events, %v; want 6", len(all), err)
	}
}

// TestCheckOnlyBatchOfOne: a batch whose only request is check-only writes
// nothing, whatever its outcome, and leaves its stream as it was.
func TestCheckOnlyBatchOfOne(t *testing.T) {
	ctx := context.Background()
	s, _ := migratedTo(t, len(migrations))
	st := cairn.NewStore(s, cairn.Options{})
	if _, err := st.Append(ctx, "a", cairn.NoStream, taggedEvent(), taggedEvent()); err != nil {
		t.Fatal(err)
	}
	res, err := st.AppendBatch(ctx, cairn.AppendRequest{Stream: "a", Expected: cairn.Exact(1)})
	if err != nil || len(res) != 1 || res[0].Version != 1 {
		t.Fatalf("check-only batch of one that holds: %+v, %v; want version 1", res, err)
	}
	if _, err := st.AppendBatch(ctx, cairn.AppendRequest{Stream: "a", Expected: cairn.Exact(5)}); !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("check-only batch of one that fails: %v, want a wrong expected version", err)
	}
	if _, err := st.AppendBatch(ctx, cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream}); err != nil {
		t.Fatalf("check-only batch of one on a missing stream: %v", err)
	}
	if v, err := st.StreamVersion(ctx, "a"); err != nil || v != 1 {
		t.Fatalf("stream a after check-only batches: version %d, %v; want 1", v, err)
	}
	if ok, err := st.StreamExists(ctx, "b"); err != nil || ok {
		t.Fatalf("stream b after a check-only batch: exists %v, %v", ok, err)
	}
	if all, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil || len(all) != 2 {
		t.Fatalf("log after check-only batches: %d events, %v; want 2", len(all), err)
	}
}
