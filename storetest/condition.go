package storetest

// Rules of conditional appends (dynamic consistency boundaries): the
// condition is checked atomically with the write, with the expected
// version, in single appends, batches and commits, and a retry is
// recognised before it.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
)

// wantCondition checks that err is a *cairn.ConditionError naming pos.
func wantCondition(t *testing.T, err error, pos uint64) {
	t.Helper()
	if !errors.Is(err, cairn.ErrConditionFailed) {
		t.Fatalf("error %v, want ErrConditionFailed", err)
	}
	var ce *cairn.ConditionError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConditionError", err)
	}
	if ce.Position != pos {
		t.Fatalf("ConditionError names position %d, want %d, the first conflicting event", ce.Position, pos)
	}
}

func after(p uint64) *uint64 { return &p }

// needConditions skips the test unless the engine checks append
// conditions: the Store hands them only to an engine that implements both
// Querier and BatchAppender.
func needConditions(t *testing.T, b cairn.Backend) {
	t.Helper()
	need[cairn.Querier](t, b, "Querier")
	need[cairn.BatchAppender](t, b, "BatchAppender (which conditional appends go through)")
}

func onTags(tags ...string) cairn.AppendCondition {
	return cairn.AppendCondition{FailIfEventsMatch: query(byTags(tags...))}
}

// testConditionRace: 32 writers race to append an event tagged "seat:1",
// each on the condition that no such event exists; exactly one wins, and
// every other gets a *ConditionError naming the winner's event.
func testConditionRace(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	needConditions(t, b)
	ctx := context.Background()
	for round, withAfter := range []bool{false, true} {
		tag := fmt.Sprint("seat:", round)
		var base *uint64
		if withAfter {
			res := mustAppend(t, s, "setup", cairn.Any, tagged("Opened"))
			base = &res.Position
		}
		const writers = 32
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			res   [writers]cairn.AppendResult
			errs  [writers]error
		)
		for i := range writers {
			wg.Go(func() {
				<-start
				cond := onTags(tag)
				cond.After = base
				res[i], errs[i] = s.AppendIf(ctx, fmt.Sprintf("booking-%d-%d", round, i), cairn.NoStream, cond, tagged("SeatBooked", tag))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both appended on the condition that no %s event exists", round, winner, i, tag)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won; first error %v", round, errs[0])
		}
		for i, err := range errs {
			if i != winner {
				wantCondition(t, err, res[winner].Position)
			}
		}
		if got := positions(readQuery(t, s, query(byTags(tag)))); len(got) != 1 || got[0] != res[winner].Position {
			t.Fatalf("round %d: events tagged %s at %v, want only the winner's at %d", round, tag, got, res[winner].Position)
		}
	}
}

// testConditionDisjointTags: writers whose conditions are on tags no other
// writer appends never fail, however they interleave.
func testConditionDisjointTags(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	needConditions(t, b)
	ctx := context.Background()
	const writers, rounds = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			tag := fmt.Sprint("account:", i)
			q := query(byTags(tag))
			for r := range rounds {
				events, head, err := s.Query(ctx, q, 0, cairn.Forward)
				if err == nil {
					n := 0
					for _, err2 := range events {
						if err = err2; err != nil {
							break
						}
						n++
					}
					if err == nil && n != r {
						err = fmt.Errorf("writer %d read %d events of its own, want %d", i, n, r)
					}
				}
				if err == nil {
					_, err = s.AppendIf(ctx, fmt.Sprint("account-", i), cairn.Any, cairn.AppendCondition{FailIfEventsMatch: q, After: head}, tagged("Deposited", tag))
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d, round %d: %w", i, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantLogLen(t, s, writers*rounds)
}

// testConditionAfter: with After at every position of a small log (and
// none), the condition fails exactly when a matching event follows After,
// naming the first one; the append's own events never fail it.
func testConditionAfter(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	needConditions(t, b)
	ctx := context.Background()
	// x-tagged events at 1, 4 and 6; an Invoiced event at 3 and 6.
	log := []cairn.EventData{tagged("E"), tagged("E", "x"), tagged("E", "y"), tagged("Invoiced"), tagged("E", "x", "y"), tagged("E"), tagged("Invoiced", "x"), tagged("E", "y")}
	for i, e := range log {
		mustAppend(t, s, fmt.Sprint("s-", i%3), cairn.Any, e)
	}
	conditions := []struct {
		name    string
		q       cairn.Query
		matches []uint64
	}{
		{"tag x", query(byTags("x")), []uint64{1, 4, 6}},
		{"type Invoiced or tags x and y", query(byTypes("Invoiced"), byTags("x", "y")), []uint64{3, 4, 6}},
		{"type Invoiced and tag x", query(cairn.QueryItem{Types: []string{"Invoiced"}, Tags: []string{"x"}}), []uint64{6}},
		{"a tag no event carries", query(byTags("z")), nil},
	}
	for _, c := range conditions {
		for a := int64(-1); a <= int64(len(log))+1; a++ {
			cond := cairn.AppendCondition{FailIfEventsMatch: c.q}
			if a >= 0 {
				cond.After = after(uint64(a))
			}
			var first *uint64
			for _, m := range c.matches {
				if a < 0 || m > uint64(a) {
					first = after(m)
					break
				}
			}
			before, _, err := s.LastPosition(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The appended event matches none of the conditions, so the
			// matches stay those of the first len(log) positions.
			res, err := s.AppendIf(ctx, "appended", cairn.Any, cond, tagged("Other"))
			if first != nil {
				wantCondition(t, err, *first)
				if last, _, _ := s.LastPosition(ctx); last != before {
					t.Fatalf("%s, after %d: a failed condition wrote events", c.name, a)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s, after %d: %v; no matching event follows, the append must succeed", c.name, a, err)
			}
			if res.Position != before+1 {
				t.Fatalf("%s, after %d: appended at %d, want %d", c.name, a, res.Position, before+1)
			}
		}
	}
	// An event appended on a condition on its own tag does not fail it.
	if _, err := s.AppendIf(ctx, "own", cairn.Any, onTags("own"), tagged("E", "own"), tagged("E", "own")); err != nil {
		t.Fatalf("an append's own events failed its condition: %v", err)
	}
}

// testConditionAndExpectedVersion: a conditional append checks the
// stream's expected version and the condition together; either failing
// writes nothing, and the expected version is checked first.
func testConditionAndExpectedVersion(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	needConditions(t, b)
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, tagged("E", "t"), tagged("E")) // 0 1
	failing, holding := onTags("t"), onTags("u")
	_, err := s.AppendIf(ctx, "s", cairn.Exact(0), failing, tagged("E"))
	wantWrongVersion(t, err, "s", cairn.Exact(0), 1)
	_, err = s.AppendIf(ctx, "s", cairn.NoStream, holding, tagged("E"))
	wantWrongVersion(t, err, "s", cairn.NoStream, 1)
	_, err = s.AppendIf(ctx, "s", cairn.Exact(1), failing, tagged("E"))
	wantCondition(t, err, 0)
	_, err = s.AppendIf(ctx, "new", cairn.NoStream, failing, tagged("E"))
	wantCondition(t, err, 0)
	wantLogLen(t, s, 2)
	wantVersion(t, s, "new", -1)
	res, err := s.AppendIf(ctx, "s", cairn.Exact(1), holding, tagged("E", "u"))
	if err != nil || res.Version != 2 || res.Position != 2 {
		t.Fatalf("append with both holding = %+v, %v; want version 2 at position 2", res, err)
	}
	failing.After = after(0)
	res, err = s.AppendIf(ctx, "s", cairn.StreamExists, failing, tagged("E"))
	if err != nil || res.Version != 3 {
		t.Fatalf("append after the only match = %+v, %v", res, err)
	}
	if _, ok := b.(cairn.Tombstoner); ok {
		if err := s.TombstoneStream(ctx, "s", cairn.Any); err != nil {
			t.Fatal(err)
		}
		_, err = s.AppendIf(ctx, "s", cairn.Any, onTags("t"), tagged("E"))
		if !errors.Is(err, cairn.ErrStreamDeleted) {
			t.Fatalf("conditional append to a tombstoned stream: %v, want ErrStreamDeleted", err)
		}
	}
}

// testConditionBatch: each request of a batch may carry a condition; one
// that fails fails the batch (its *ConditionError at the request's index)
// and nothing is written; a batch's own events never fail its conditions.
func testConditionBatch(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	needConditions(t, b)
	ctx := context.Background()
	mustAppend(t, s, "a", cairn.NoStream, tagged("E", "t")) // 0
	mustAppend(t, s, "b", cairn.NoStream, tagged("E"))      // 1
	failing := onTags("t")
	_, err := s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "a", Expected: cairn.Exact(0), Events: []cairn.EventData{tagged("E")}, Condition: &cairn.AppendCondition{FailIfEventsMatch: query(byTags("u"))}},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: []cairn.EventData{tagged("E")}, Condition: &failing},
		cairn.AppendRequest{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")}},
	)
	var be *cairn.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 3 {
		t.Fatalf("batch with a failing condition: %v, want a *BatchError with three outcomes", err)
	}
	if be.Errs[0] != nil || be.Errs[2] != nil {
		t.Fatalf("outcomes %v: only request 1 failed", be.Errs)
	}
	wantCondition(t, be.Errs[1], 0)
	wantLogLen(t, s, 2)
	// Both an expected version and a condition failing in one batch.
	_, err = s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")}},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: []cairn.EventData{tagged("E")}, Condition: &failing},
	)
	if !errors.As(err, &be) || len(be.Errs) != 2 {
		t.Fatalf("batch with a failing expectation and condition: %v", err)
	}
	wantWrongVersion(t, be.Errs[0], "a", cairn.NoStream, 0)
	wantCondition(t, be.Errs[1], 0)
	wantLogLen(t, s, 2)
	// The first request writes a "v" event; the second's condition on "v"
	// sees only the events before the batch.
	onV := onTags("v")
	results, err := s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "a", Expected: cairn.Exact(0), Events: []cairn.EventData{tagged("E", "v")}, Condition: &onV},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: []cairn.EventData{tagged("E", "v")}, Condition: &onV},
	)
	if err != nil {
		t.Fatalf("a batch whose own events match its conditions: %v", err)
	}
	if results[0].Position != 2 || results[1].Position != 3 {
		t.Fatalf("results %+v", results)
	}
	_, err = s.AppendBatch(ctx, cairn.AppendRequest{Stream: "c", Expected: cairn.Any, Events: []cairn.EventData{tagged("E")}, Condition: &onV})
	if !errors.As(err, &be) || len(be.Errs) != 1 {
		t.Fatalf("a batch whose condition fails: %v", err)
	}
	wantCondition(t, be.Errs[0], 2)
}

// testConditionCommitAll: CommitAll checks the condition with the
// expected version; when it fails neither the events nor the projections'
// writes are kept.
func testConditionCommitAll(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	needConditions(t, b)
	ctx := context.Background()
	mustAppend(t, s, "a", cairn.NoStream, tagged("E", "t"))
	failing := onTags("t")
	_, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")}, Condition: &failing})
	wantCondition(t, err, 0)
	wantLogLen(t, s, 1)
	holding := onTags("u")
	res, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E", "u")}, Condition: &holding})
	if err != nil || res.Position != 1 {
		t.Fatalf("CommitAll without projections, condition holding = %+v, %v", res, err)
	}
	if _, ok := b.(cairn.TxCommitter); !ok {
		return
	}
	_, canRead := b.(cairn.ReadModelReader)
	ran := 0
	p := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		ran++
		return tx.Put(ctx, "seen", events[0].StreamID, []byte("x"))
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")}, Condition: &failing}, p)
	wantCondition(t, err, 0)
	wantLogLen(t, s, 2)
	if canRead {
		if _, ok, err := s.ReadModelGet(ctx, "seen", "c"); ok || err != nil {
			t.Fatalf("a commit refused by its condition kept its projection's write (%v, %v)", ok, err)
		}
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E")}, Condition: &failing}, p)
	wantWrongVersion(t, err, "b", cairn.NoStream, 0)
	holding.After = after(1)
	res, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{tagged("E", "u")}, Condition: &holding}, p)
	if err != nil || res.Position != 2 {
		t.Fatalf("CommitAll with a projection, condition holding = %+v, %v", res, err)
	}
	if canRead {
		if _, ok, err := s.ReadModelGet(ctx, "seen", "c"); !ok || err != nil {
			t.Fatalf("the projection's write of a commit whose condition held is missing (%v, %v)", ok, err)
		}
	}
}

// testConditionRetry: an append repeated with the same event IDs (a client
// retrying after a lost answer) returns the first result, although its own
// events now fail its condition; in a batch too.
func testConditionRetry(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	needConditions(t, b)
	ctx := context.Background()
	mustAppend(t, s, "other", cairn.NoStream, tagged("E"))
	events := withIDs([]cairn.EventData{tagged("Registered", "user:ann"), tagged("Welcomed", "user:ann")})
	cond := onTags("user:ann")
	first, err := s.AppendIf(ctx, "user-1", cairn.NoStream, cond, events...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AppendIf(ctx, "user-1", cairn.NoStream, cond, events...)
	if err != nil || again != first {
		t.Fatalf("retried conditional append = %+v, %v; want the first result %+v", again, err, first)
	}
	wantLogLen(t, s, 3)
	// Another append with new IDs fails the condition.
	_, err = s.AppendIf(ctx, "user-2", cairn.NoStream, cond, tagged("Registered", "user:ann"))
	wantCondition(t, err, first.Position-1)
	// A batch retried.
	batch := []cairn.AppendRequest{
		{Stream: "user-3", Expected: cairn.NoStream, Events: withIDs([]cairn.EventData{tagged("Registered", "user:bob")}), Condition: &cairn.AppendCondition{FailIfEventsMatch: query(byTags("user:bob"))}},
		{Stream: "audit", Expected: cairn.Any, Events: withIDs([]cairn.EventData{tagged("Audited")})},
	}
	r1, err := s.AppendBatch(ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.AppendBatch(ctx, batch...)
	if err != nil || r2[0] != r1[0] || r2[1] != r1[1] {
		t.Fatalf("retried batch = %+v, %v; want %+v", r2, err, r1)
	}
	wantLogLen(t, s, 5)
	// The same IDs in another stream are not a retry.
	_, err = s.AppendIf(ctx, "user-9", cairn.Any, cairn.AppendCondition{FailIfEventsMatch: query(byTags("none"))}, events...)
	if !errors.Is(err, cairn.ErrDuplicateEvent) {
		t.Fatalf("the same event ids in another stream: %v, want ErrDuplicateEvent", err)
	}
}
