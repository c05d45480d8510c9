package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
)

func tagged(typ string, tags ...string) cairn.EventData {
	return cairn.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`), Tags: tags}
}

// appendPaths are the ways a conditional append reaches the engine: a
// batch of one (which joins the group commit), a batch of two (a
// transaction of its own), and a commit with a projection. Each returns
// the result of the conditional request, and its error unwrapped from the
// batch error.
var appendPaths = map[string]func(ctx context.Context, s *pgstore.Store, req cairn.AppendRequest) (cairn.AppendResult, error){
	"single": func(ctx context.Context, s *pgstore.Store, req cairn.AppendRequest) (cairn.AppendResult, error) {
		res, err := s.AppendBatch(ctx, []cairn.AppendRequest{req})
		if err != nil {
			return cairn.AppendResult{}, unbatch(err, 0)
		}
		return res[0], nil
	},
	"batch": func(ctx context.Context, s *pgstore.Store, req cairn.AppendRequest) (cairn.AppendResult, error) {
		other := cairn.AppendRequest{Stream: "other-" + uuid.NewString(), Expected: cairn.NoStream, Events: []cairn.EventData{tagged("Other")}}
		res, err := s.AppendBatch(ctx, []cairn.AppendRequest{other, req})
		if err != nil {
			return cairn.AppendResult{}, unbatch(err, 1)
		}
		return res[1], nil
	},
	"commit": func(ctx context.Context, s *pgstore.Store, req cairn.AppendRequest) (cairn.AppendResult, error) {
		return s.CommitAll(ctx, req, []cairn.Projection{func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
			return tx.Put(ctx, "seen", events[0].ID.String(), nil)
		}})
	},
}

// unbatch returns the error of request i of a *BatchError, checking that
// the others have none; other errors are returned as they are.
func unbatch(err error, i int) error {
	var be *cairn.BatchError
	if !errors.As(err, &be) {
		return err
	}
	for j, e := range be.Errs {
		if j != i && e != nil {
			return fmt.Errorf("request %d of the batch failed too: %w", j, e)
		}
	}
	return be.Errs[i]
}

// TestConditionRace races 32 writers, each on a connection of its own,
// appending an event tagged "seat-1" on the condition that no event tagged
// "seat-1" exists: exactly one wins, every other gets a *ConditionError
// naming the winner's event. The writers go through 32 engines (as 32
// processes would) as batches of one, which take the group commit path,
// through one engine as batches of two, and as commits with a projection.
func TestConditionRace(t *testing.T) {
	const writers = 32
	for _, path := range []string{"single", "batch", "commit"} {
		t.Run(path, func(t *testing.T) {
			ctx := context.Background()
			schema := pgtest.Schema(t, "cairn_test")
			engines := make([]*pgstore.Store, writers)
			if path == "single" {
				for w := range engines {
					engines[w] = openSchema(t, schema, pgstore.Options{MaxConns: 1})
				}
			} else {
				shared := openSchema(t, schema, pgstore.Options{MaxConns: writers})
				for w := range engines {
					engines[w] = shared
				}
			}
			q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"seat-1"}}}}
			var (
				start   = make(chan struct{})
				wg      sync.WaitGroup
				mu      sync.Mutex
				won     []cairn.AppendResult
				refused []*cairn.ConditionError
			)
			for w := range writers {
				wg.Go(func() {
					<-start
					res, err := appendPaths[path](ctx, engines[w], cairn.AppendRequest{
						Stream: fmt.Sprintf("booking-%d", w), Expected: cairn.NoStream,
						Events:    []cairn.EventData{tagged("SeatBooked", "seat-1", fmt.Sprint("writer-", w))},
						Condition: &cairn.AppendCondition{FailIfEventsMatch: q},
					})
					mu.Lock()
					defer mu.Unlock()
					var ce *cairn.ConditionError
					switch {
					case err == nil:
						won = append(won, res)
					case errors.As(err, &ce) && errors.Is(err, cairn.ErrConditionFailed):
						refused = append(refused, ce)
					default:
						t.Errorf("writer %d: %v", w, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(won) != 1 || len(refused) != writers-1 {
				t.Fatalf("%d appends won, %d refused; want 1 and %d", len(won), len(refused), writers-1)
			}
			for _, ce := range refused {
				if ce.Position != won[0].Position {
					t.Fatalf("refused with a conflict at %d, the winner's event is at %d", ce.Position, won[0].Position)
				}
			}
			got, err := engines[0].ReadQuery(ctx, q, 0, 100, cairn.Forward)
			if err != nil || len(got) != 1 {
				t.Fatalf("events tagged seat-1: %d, %v; want 1", len(got), err)
			}
		})
	}
}

// TestConditionDisjointTags: writers whose conditions are on tags of their
// own never fail, however their appends are grouped.
func TestConditionDisjointTags(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const writers, appends = 16, 10
	var wg sync.WaitGroup
	var failed atomic.Int32
	for w := range writers {
		wg.Go(func() {
			tag := fmt.Sprint("owner-", w)
			q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{tag}}}}
			var after *uint64
			for i := range appends {
				res, err := appendPaths[[]string{"single", "single", "batch", "commit"}[(w+i)%4]](ctx, s, cairn.AppendRequest{
					Stream: fmt.Sprint("owner-", w), Expected: cairn.Any,
					Events:    []cairn.EventData{tagged("Did", tag, "shared")},
					Condition: &cairn.AppendCondition{FailIfEventsMatch: q, After: after},
				})
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					failed.Add(1)
					return
				}
				after = &res.Position
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d writers failed", failed.Load())
	}
}

// TestConditionAfterEveryPosition checks a condition with After at every
// position of a small log, on every path, for queries of tags, of types,
// of both, and the empty query: it fails exactly when an event matching the
// query is after After, naming the first one, and then writes nothing.
func TestConditionAfterEveryPosition(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	log := []struct {
		stream string
		e      cairn.EventData
	}{
		{"course-1", tagged("CourseDefined", "course:1")},
		{"student-1", tagged("StudentRegistered", "student:1")},
		{"course-1", tagged("StudentSubscribed", "course:1", "student:1")},
		{"$system", tagged("StudentSubscribed", "course:1", "student:1")},
		{"course-2", tagged("CourseDefined", "course:2")},
		{"student-1", tagged("StudentSubscribed", "course:2", "student:1")},
	}
	for _, l := range log {
		if _, err := s.Append(ctx, l.stream, cairn.Any, []cairn.EventData{l.e}); err != nil {
			t.Fatal(err)
		}
	}
	queries := []cairn.Query{
		{Items: []cairn.QueryItem{{Tags: []string{"course:1"}}}},
		{Items: []cairn.QueryItem{{Tags: []string{"student:1", "course:2"}}}},
		{Items: []cairn.QueryItem{{Types: []string{"StudentSubscribed"}}}},
		{Items: []cairn.QueryItem{{Types: []string{"CourseDefined", "StudentRegistered"}, Tags: []string{"course:2"}}}},
		{Items: []cairn.QueryItem{{Types: []string{"CourseDefined"}}, {Tags: []string{"student:1"}}}},
		{Items: []cairn.QueryItem{{Tags: []string{"nobody"}}}},
		{},
	}
	for name, do := range appendPaths {
		for qi, q := range queries {
			for a := -1; a <= len(log); a++ {
				var after *uint64
				if a >= 0 {
					p := uint64(a)
					after = &p
				}
				all := allEvents(t, s) // every event, those the successful appends wrote too
				var want *uint64
				for _, e := range all {
					if (after == nil || e.Position > *after) && queryMatches(q, e) {
						want = &e.Position
						break
					}
				}
				before := all
				stream := "w-" + uuid.NewString()
				_, err := do(ctx, s, cairn.AppendRequest{
					Stream: stream, Expected: cairn.NoStream, Events: []cairn.EventData{tagged("Unrelated")},
					Condition: &cairn.AppendCondition{FailIfEventsMatch: q, After: after},
				})
				var ce *cairn.ConditionError
				switch {
				case want == nil && err != nil:
					t.Fatalf("%s, query %d, after %d: %v, want success", name, qi, a, err)
				case want != nil && !errors.As(err, &ce):
					t.Fatalf("%s, query %d, after %d: %v, want a conflict at %d", name, qi, a, err, *want)
				case want != nil && ce.Position != *want:
					t.Fatalf("%s, query %d, after %d: conflict at %d, want %d", name, qi, a, ce.Position, *want)
				case want != nil:
					if now := allEvents(t, s); len(now) != len(before) {
						t.Fatalf("%s, query %d, after %d: a refused append wrote %d events", name, qi, a, len(now)-len(before))
					}
					if ok, err := s.StreamExists(ctx, stream); ok || err != nil {
						t.Fatalf("%s: a refused append created its stream: %v, %v", name, ok, err)
					}
				}
			}
		}
	}
}

// TestConditionOwnEvents: a batch's own events never fail its conditions,
// and an append's own events never fail its own.
func TestConditionOwnEvents(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"x"}}}}
	cond := &cairn.AppendCondition{FailIfEventsMatch: q}
	if _, err := s.AppendBatch(ctx, []cairn.AppendRequest{
		{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E", "x")}},
		{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E", "x")}, Condition: cond},
	}); err != nil {
		t.Fatalf("a batch whose condition only its own events fail: %v", err)
	}
	for name, do := range appendPaths {
		after := allEvents(t, s)
		last := after[len(after)-1].Position
		if _, err := do(ctx, s, cairn.AppendRequest{Stream: "own-" + name, Expected: cairn.NoStream,
			Events: []cairn.EventData{tagged("E", "x"), tagged("E", "x")}, Condition: &cairn.AppendCondition{FailIfEventsMatch: q, After: &last}}); err != nil {
			t.Fatalf("%s: an append whose condition only its own events fail: %v", name, err)
		}
	}
}

// TestConditionRetry: an append recognised as a retry by its first event
// id returns the earlier result, although its own events now fail its
// condition; a different append with the same condition fails.
func TestConditionRetry(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for name, do := range appendPaths {
		tag := "unique-" + name
		q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{tag}}}}
		req := cairn.AppendRequest{Stream: "r-" + name, Expected: cairn.NoStream,
			Events: []cairn.EventData{tagged("E", tag), tagged("E", tag)}, Condition: &cairn.AppendCondition{FailIfEventsMatch: q}}
		first, err := do(ctx, s, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := do(ctx, s, req)
		if err != nil || again != first {
			t.Fatalf("%s: retry = %+v, %v; want %+v", name, again, err, first)
		}
		req.Events = []cairn.EventData{tagged("E", tag)}
		req.Stream += "-other"
		var ce *cairn.ConditionError
		if _, err := do(ctx, s, req); !errors.As(err, &ce) || ce.Position != first.Position-1 {
			t.Fatalf("%s: another append with the condition: %v, want a conflict at %d", name, err, first.Position-1)
		}
	}
}

// TestConditionAndExpected: the expected version is checked with the
// condition; when it fails, that is the error.
func TestConditionAndExpected(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Append(ctx, "s", cairn.NoStream, []cairn.EventData{tagged("E", "x")}); err != nil {
		t.Fatal(err)
	}
	for name, do := range appendPaths {
		_, err := do(ctx, s, cairn.AppendRequest{Stream: "s", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")},
			Condition: &cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"x"}}}}}})
		if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
			t.Fatalf("%s: %v, want a wrong expected version", name, err)
		}
	}
	// A batch refused for one request's expected version reports the
	// other's failing condition too, and writes nothing.
	_, err := s.AppendBatch(ctx, []cairn.AppendRequest{
		{Stream: "s", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")}},
		{Stream: "t", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")},
			Condition: &cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"x"}}}}}},
	})
	var be *cairn.BatchError
	var ce *cairn.ConditionError
	if !errors.As(err, &be) || !errors.Is(be.Errs[0], cairn.ErrWrongExpectedVersion) || !errors.As(be.Errs[1], &ce) || ce.Position != 0 {
		t.Fatalf("a batch failing an expectation and a condition: %v", err)
	}
	if n := len(allEvents(t, s)); n != 1 {
		t.Fatalf("%d events after the refused batch, want 1", n)
	}
}
