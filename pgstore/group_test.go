package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

func newPending(req cairn.AppendRequest) *pending {
	p := &pending{req: req, done: make(chan struct{})}
	p.keys = p.runs.addRequest(0, 0, req.Stream, -1, req.Events)
	return p
}

func taggedEvent(tags ...string) cairn.EventData {
	return cairn.EventData{ID: uuid.New(), Type: "E", Data: []byte(`{}`), Tags: tags}
}

func onTag(tag string) *cairn.AppendCondition {
	return &cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{tag}}}}}
}

// TestGroupOutcomesApart commits one group whose appends fail their
// condition, their expected version, or pass: each gets its own outcome,
// and the others are written.
func TestGroupOutcomesApart(t *testing.T) {
	ctx := context.Background()
	s, _ := migratedTo(t, len(migrations))
	if _, err := s.Append(ctx, "taken", cairn.NoStream, []cairn.EventData{taggedEvent("x")}); err != nil {
		t.Fatal(err)
	}
	group := []*pending{
		newPending(cairn.AppendRequest{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent("y")}}),
		newPending(cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}, Condition: onTag("x")}),
		newPending(cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(0), Events: []cairn.EventData{taggedEvent()}}),
		newPending(cairn.AppendRequest{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent("z")}, Condition: onTag("z")}),
		newPending(cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}}),
	}
	s.commitGroup(group)
	var ce *cairn.ConditionError
	if p := group[1]; !errors.As(p.err, &ce) || ce.Position != 0 || p.whole {
		t.Fatalf("the append whose condition fails: %+v, %v (whole %v); want a conflict at 0", p.res, p.err, p.whole)
	}
	if p := group[2]; !errors.Is(p.err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("an append expecting the refused one: %v, want a wrong expected version", p.err)
	}
	for _, i := range []int{0, 3, 4} {
		if p := group[i]; p.err != nil {
			t.Fatalf("append %d of the group: %v", i, p.err)
		}
	}
	if group[4].res.Version != 0 || group[3].res.Position != 2 || group[4].res.Position != 3 {
		t.Fatalf("results %+v, %+v", group[3].res, group[4].res)
	}
	got, err := s.ReadIndex(ctx, cairn.IndexKey{Kind: cairn.IndexStreams}, 0, 10, cairn.Forward)
	if err != nil || len(got) != 4 {
		t.Fatalf("stream list: %+v, %v; want taken, a, c, b", got, err)
	}
}

// TestTakeMarksClashes: a conditional append whose query may match the
// events of an append already taken into the group is marked, so that its
// condition is checked against them; one whose query cannot is not.
func TestTakeMarksClashes(t *testing.T) {
	a := newPending(cairn.AppendRequest{Stream: "a", Events: []cairn.EventData{taggedEvent("x", "y")}})
	b := newPending(cairn.AppendRequest{Stream: "b", Events: []cairn.EventData{taggedEvent("y")}, Condition: onTag("x")})
	c := newPending(cairn.AppendRequest{Stream: "c", Events: []cairn.EventData{taggedEvent("x")}, Condition: onTag("z")})
	d := newPending(cairn.AppendRequest{Stream: "d", Events: []cairn.EventData{taggedEvent("x")}, Condition: &cairn.AppendCondition{}})
	e := newPending(cairn.AppendRequest{Stream: "$e", Events: []cairn.EventData{taggedEvent()}, Condition: &cairn.AppendCondition{
		FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Other"}}, {Types: []string{"E"}, Tags: []string{"q"}}}}}})
	var cm committer
	cm.queue = []*pending{a, b, c, d, e}
	group := cm.takeLocked()
	if len(group) != 5 || len(cm.queue) != 0 {
		t.Fatalf("group of %d, %d left; want all 5 in one group", len(group), len(cm.queue))
	}
	for _, x := range []struct {
		p    *pending
		want bool
	}{{a, false}, {b, true}, {c, false}, {d, true}, {e, false}} {
		if x.p.clash != x.want {
			t.Errorf("append to %s marked clash %v, want %v", x.p.req.Stream, x.p.clash, x.want)
		}
	}
}

// TestGroupChecksEarlierAppends: in one group, a condition fails on the
// events of an append written before it in the group, at the positions
// they get, and only on those after its After.
func TestGroupChecksEarlierAppends(t *testing.T) {
	ctx := context.Background()
	s, _ := migratedTo(t, len(migrations))
	zero := uint64(0)
	var cm committer
	cm.queue = []*pending{
		newPending(cairn.AppendRequest{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent("t")}}),
		newPending(cairn.AppendRequest{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent("t")}, Condition: onTag("t")}),
		newPending(cairn.AppendRequest{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent("t")},
			Condition: &cairn.AppendCondition{FailIfEventsMatch: onTag("t").FailIfEventsMatch, After: &zero}}),
		newPending(cairn.AppendRequest{Stream: "d", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}, Condition: onTag("t")}),
		newPending(cairn.AppendRequest{Stream: "e", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}, Condition: onTag("u")}),
	}
	group := cm.takeLocked()
	if len(group) != 5 {
		t.Fatalf("group of %d", len(group))
	}
	s.commitGroup(group)
	var ce *cairn.ConditionError
	if p := group[1]; !errors.As(p.err, &ce) || ce.Position != 0 {
		t.Fatalf("a condition failed by the append before it in the group: %+v, %v; want a conflict at 0", p.res, p.err)
	}
	if p := group[2]; p.err != nil || p.res.Position != 1 {
		t.Fatalf("a condition after the event of the group's first append: %+v, %v; want written at 1", p.res, p.err)
	}
	if p := group[3]; !errors.As(p.err, &ce) || ce.Position != 0 {
		t.Fatalf("a condition failed by two appends of the group: %+v, %v; want a conflict at 0", p.res, p.err)
	}
	if p := group[4]; p.err != nil || p.res.Position != 2 {
		t.Fatalf("a condition nothing fails: %+v, %v; want written at 2", p.res, p.err)
	}
	got, err := s.ReadQuery(ctx, onTag("t").FailIfEventsMatch, 0, 10, cairn.Forward)
	if err != nil || len(got) != 2 {
		t.Fatalf("events tagged t: %d, %v; want 2", len(got), err)
	}
}

// TestAppendOthersAfterCondition: when a group falls back to a transaction
// of its own and a condition fails there, the other appends are written.
func TestAppendOthersAfterCondition(t *testing.T) {
	ctx := context.Background()
	s, _ := migratedTo(t, len(migrations))
	if _, err := s.Append(ctx, "taken", cairn.NoStream, []cairn.EventData{taggedEvent("x")}); err != nil {
		t.Fatal(err)
	}
	results, errs, err := s.appendRetrying(ctx, []cairn.AppendRequest{
		{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}},
		{Stream: "b", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}, Condition: onTag("x")},
		{Stream: "c", Expected: cairn.Exact(3), Events: []cairn.EventData{taggedEvent()}},
		{Stream: "d", Expected: cairn.NoStream, Events: []cairn.EventData{taggedEvent()}},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	var ce *cairn.ConditionError
	if errs[0] != nil || !errors.As(errs[1], &ce) || !errors.Is(errs[2], cairn.ErrWrongExpectedVersion) || errs[3] != nil {
		t.Fatalf("outcomes %v", errs)
	}
	if results[0].Position != 1 || results[3].Position != 2 || results[1] != (cairn.AppendResult{}) {
		t.Fatalf("results %+v", results)
	}
}

// Every attempt of a group gets at least GroupTimeout and at most twice
// that: attempts share a deadline while GroupTimeout of it is left, and a
// new one starts, the old one ended, when less is left.
func TestAttemptDeadline(t *testing.T) {
	const timeout = time.Minute
	var c committer
	start := time.Now()
	first := c.attemptContext(timeout)
	end, ok := first.Deadline()
	if !ok || end.Before(start.Add(timeout)) || end.After(time.Now().Add(2*timeout)) {
		t.Fatalf("deadline %v after the attempt started, want %v to %v", end.Sub(start), timeout, 2*timeout)
	}
	if c.attemptContext(timeout) != first {
		t.Fatal("an attempt with more than the timeout left did not share the deadline")
	}
	// As if most of the deadline had passed.
	c.attemptEnd = time.Now().Add(timeout / 2)
	before := time.Now()
	next := c.attemptContext(timeout)
	if next == first {
		t.Fatal("an attempt with less than the timeout left shared the deadline")
	}
	if end, _ := next.Deadline(); end.Before(before.Add(timeout)) {
		t.Errorf("the new deadline is %v after the attempt started, want at least %v", end.Sub(before), timeout)
	}
	if !errors.Is(first.Err(), context.Canceled) {
		t.Errorf("the deadline replaced is not ended: %v", first.Err())
	}
	if next.Err() != nil {
		t.Errorf("the new deadline has ended: %v", next.Err())
	}
}
