package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// next returns the next event of sub, skipping checkpoints, and fails the
// test on a drop. caughtUp reports whether a caught-up message came first.
func next(t *testing.T, sub *kurrentdb.Subscription) (e *kurrentdb.ResolvedEvent, caughtUp bool) {
	t.Helper()
	for {
		m := sub.Recv()
		switch {
		case m.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped: %v", m.SubscriptionDropped.Error)
		case m.CaughtUp != nil:
			caughtUp = true
		case m.EventAppeared != nil:
			return m.EventAppeared, caughtUp
		}
	}
}

// untilCaughtUp collects events until the caught-up message.
func untilCaughtUp(t *testing.T, sub *kurrentdb.Subscription) []*kurrentdb.ResolvedEvent {
	t.Helper()
	var out []*kurrentdb.ResolvedEvent
	for {
		m := sub.Recv()
		switch {
		case m.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped: %v", m.SubscriptionDropped.Error)
		case m.CaughtUp != nil:
			return out
		case m.EventAppeared != nil:
			out = append(out, m.EventAppeared)
		}
	}
}

func TestSubscribeToStreamCatchUpThenLive(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		if _, err := c.AppendToStream(ctx, "sub", kurrentdb.AppendToStreamOptions{}, events(3, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "other", kurrentdb.AppendToStreamOptions{}, events(2, "E")...); err != nil {
			t.Fatal(err)
		}

		fromStart, err := c.SubscribeToStream(ctx, "sub", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}})
		if err != nil {
			t.Fatal(err)
		}
		defer fromStart.Close()
		if got := revisions(untilCaughtUp(t, fromStart)); !equal(got, []uint64{0, 1, 2}) {
			t.Errorf("catch-up from start: %v, want [0 1 2]", got)
		}

		after1, err := c.SubscribeToStream(ctx, "sub", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Revision(1)})
		if err != nil {
			t.Fatal(err)
		}
		defer after1.Close()
		if got := revisions(untilCaughtUp(t, after1)); !equal(got, []uint64{2}) {
			t.Errorf("catch-up after revision 1: %v, want [2]", got)
		}

		fromEnd, err := c.SubscribeToStream(ctx, "sub", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.End{}})
		if err != nil {
			t.Fatal(err)
		}
		defer fromEnd.Close()
		if got := untilCaughtUp(t, fromEnd); len(got) != 0 {
			t.Errorf("subscription from the end replayed %d events", len(got))
		}

		// Live: new events reach every subscriber, in order, and events of
		// other streams do not.
		if _, err := c.AppendToStream(ctx, "other", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "sub", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Revision(2)}, events(2, "E")...); err != nil {
			t.Fatal(err)
		}
		for name, sub := range map[string]*kurrentdb.Subscription{"from start": fromStart, "after 1": after1, "from end": fromEnd} {
			for _, want := range []uint64{3, 4} {
				e, _ := next(t, sub)
				if e.OriginalEvent().StreamID != "sub" || e.OriginalEvent().EventNumber != want {
					t.Errorf("%s: live event %s@%d, want sub@%d", name, e.OriginalEvent().StreamID, e.OriginalEvent().EventNumber, want)
				}
			}
		}
	})
}

func TestSubscribeToStreamNotYetWritten(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	sub, err := c.SubscribeToStream(ctx, "later", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	untilCaughtUp(t, sub)
	if _, err := c.AppendToStream(ctx, "later", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, events(1, "E")...); err != nil {
		t.Fatal(err)
	}
	if e, _ := next(t, sub); e.OriginalEvent().EventNumber != 0 {
		t.Errorf("first event at revision %d, want 0", e.OriginalEvent().EventNumber)
	}
}

func TestSubscribeToAllWithFilters(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		// The built-in users are at 0…b-1; a subscription from b-1 starts
		// after them.
		b := ts.next(t)
		afterUsers := kurrentdb.Position{Commit: b - 1, Prepare: b - 1}
		for i := range 3 {
			if _, err := c.AppendToStream(ctx, fmt.Sprintf("order-%d", i), kurrentdb.AppendToStreamOptions{}, jsonEvent("OrderPlaced", `{}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.AppendToStream(ctx, fmt.Sprintf("user-%d", i), kurrentdb.AppendToStreamOptions{}, jsonEvent("UserRegistered", `{}`)); err != nil {
				t.Fatal(err)
			}
		}

		all, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: afterUsers})
		if err != nil {
			t.Fatal(err)
		}
		defer all.Close()
		if got := untilCaughtUp(t, all); len(got) != 6 {
			t.Errorf("$all catch-up: %d events, want 6", len(got))
		}

		after, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Position{Commit: b + 3, Prepare: b + 3}})
		if err != nil {
			t.Fatal(err)
		}
		defer after.Close()
		var positions []uint64
		for _, e := range untilCaughtUp(t, after) {
			positions = append(positions, e.OriginalEvent().Position.Commit)
		}
		if !equal(positions, []uint64{b + 4, b + 5}) {
			t.Errorf("$all after position %d: %v, want [%d %d]", b+3, positions, b+4, b+5)
		}

		streamPrefix, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{
			From:   kurrentdb.Start{},
			Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{"order-"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer streamPrefix.Close()
		typeRegex, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{
			From:   kurrentdb.Start{},
			Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.EventFilterType, Regex: "^User"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer typeRegex.Close()
		for _, e := range untilCaughtUp(t, streamPrefix) {
			if s := e.OriginalEvent().StreamID; len(s) < 6 || s[:6] != "order-" {
				t.Errorf("stream prefix filter let %s through", s)
			}
		}
		for _, e := range untilCaughtUp(t, typeRegex) {
			if typ := e.OriginalEvent().EventType; typ != "UserRegistered" {
				t.Errorf("event type filter let %s through", typ)
			}
		}

		// Live, the filters keep applying.
		if _, err := c.AppendToStream(ctx, "user-9", kurrentdb.AppendToStreamOptions{}, jsonEvent("UserRegistered", `{}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "order-9", kurrentdb.AppendToStreamOptions{}, jsonEvent("OrderPlaced", `{}`)); err != nil {
			t.Fatal(err)
		}
		if e, _ := next(t, streamPrefix); e.OriginalEvent().StreamID != "order-9" {
			t.Errorf("stream prefix filter, live: got %s, want order-9", e.OriginalEvent().StreamID)
		}
		if e, _ := next(t, typeRegex); e.OriginalEvent().StreamID != "user-9" {
			t.Errorf("event type filter, live: got %s, want user-9", e.OriginalEvent().StreamID)
		}
		for _, want := range []string{"user-9", "order-9"} {
			if e, _ := next(t, all); e.OriginalEvent().StreamID != want {
				t.Errorf("$all, live: got %s, want %s", e.OriginalEvent().StreamID, want)
			}
		}
	})
}

func TestFilteredSubscriptionCheckpoints(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		b := ts.next(t) // after the built-in users
		// Ten events, none of which pass the filter.
		if _, err := c.AppendToStream(ctx, "noise", kurrentdb.AppendToStreamOptions{}, events(10, "Noise")...); err != nil {
			t.Fatal(err)
		}
		sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{
			From:               kurrentdb.Position{Commit: b - 1, Prepare: b - 1},
			Filter:             &kurrentdb.SubscriptionFilter{Type: kurrentdb.EventFilterType, Prefixes: []string{"Signal"}},
			MaxSearchWindow:    2,
			CheckpointInterval: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		// A checkpoint every 2×2 events examined: after positions b+3 and
		// b+7.
		var checkpoints []uint64
		for {
			m := sub.Recv()
			if m.SubscriptionDropped != nil {
				t.Fatal(m.SubscriptionDropped.Error)
			}
			if m.EventAppeared != nil {
				t.Fatalf("filtered subscription delivered %s", m.EventAppeared.OriginalEvent().EventType)
			}
			if m.CheckPointReached != nil {
				checkpoints = append(checkpoints, m.CheckPointReached.Commit)
			}
			if m.CaughtUp != nil {
				break
			}
		}
		if !equal(checkpoints, []uint64{b + 3, b + 7}) {
			t.Errorf("checkpoints at %v, want [%d %d]", checkpoints, b+3, b+7)
		}
		if _, err := c.AppendToStream(ctx, "signal", kurrentdb.AppendToStreamOptions{}, jsonEvent("Signal", `{}`)); err != nil {
			t.Fatal(err)
		}
		if e, _ := next(t, sub); e.OriginalEvent().Position.Commit != b+10 {
			t.Errorf("live filtered event at %d, want %d", e.OriginalEvent().Position.Commit, b+10)
		}
	})
}

func TestShutdownEndsSubscriptions(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	untilCaughtUp(t, sub)
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a live subscription: %v", err)
	}
	for {
		m := sub.Recv()
		if m.SubscriptionDropped != nil {
			break
		}
	}
}

func TestSubscriptionEndsWhenStreamIsTombstoned(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	if _, err := c.AppendToStream(ctx, "doomed", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToStream(ctx, "doomed", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	untilCaughtUp(t, sub)
	if _, err := c.TombstoneStream(ctx, "doomed", kurrentdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		m := sub.Recv()
		if m.SubscriptionDropped != nil {
			if !strings.Contains(m.SubscriptionDropped.Error.Error(), "deleted") {
				t.Errorf("dropped with %v, want the stream-deleted error", m.SubscriptionDropped.Error)
			}
			return
		}
		if m.EventAppeared != nil {
			t.Fatalf("event after tombstone: %+v", m.EventAppeared.OriginalEvent())
		}
	}
}
