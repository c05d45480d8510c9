package server_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// TestDeletionsThroughTheGoClient deletes streams through the official Go
// client and checks what KurrentDB's clients see of it: the deleted
// streams read as not found and deleted; $all, read and subscribed to,
// holds KurrentDB's records of the deletes (a $metadata event of $$<stream>
// whose $tb is long.MaxValue, a $streamDeleted event at revision
// long.MaxValue) and a filter that excludes system events hides them; and
// a foreachStream projection's $deleted runs for each.
func TestDeletionsThroughTheGoClient(t *testing.T) {
	onProjectionEngines(t, func(t *testing.T, ts *testServer) {
		c, pc := ts.client(t), ts.projections(t)
		ctx := context.Background()
		for _, s := range []string{"order-1", "order-2"} {
			if _, err := c.AppendToStream(ctx, s, kurrentdb.AppendToStreamOptions{}, jsonEvent("OrderPlaced", `{}`)); err != nil {
				t.Fatal(err)
			}
		}
		err := pc.Create(ctx, "orders", `fromCategory('order').foreachStream().when({
			$init: function () { return { n: 0, deleted: 0 }; },
			OrderPlaced: function (s, e) { s.n++; },
			$deleted: function (s, e, streamId, isSoftDeleted) { s.deleted++; s.soft = isSoftDeleted; s.stream = streamId; }
		})`, kurrentdb.CreateProjectionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitProjectionState(t, pc, "orders", "order-1", `{"n":1,"deleted":0}`)

		soft, err := c.DeleteStream(ctx, "order-1", kurrentdb.DeleteStreamOptions{StreamState: kurrentdb.Revision(0)})
		if err != nil {
			t.Fatal(err)
		}
		hard, err := c.TombstoneStream(ctx, "order-2", kurrentdb.TombstoneStreamOptions{StreamState: kurrentdb.Any{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drain(c.ReadStream(ctx, "order-1", kurrentdb.ReadStreamOptions{}, 10)); errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
			t.Errorf("read after delete: %v, want ErrorCodeResourceNotFound", err)
		}
		if _, err := drain(c.ReadStream(ctx, "order-2", kurrentdb.ReadStreamOptions{}, 10)); errorCode(err) != kurrentdb.ErrorCodeStreamDeleted {
			t.Errorf("read after tombstone: %v, want ErrorCodeStreamDeleted", err)
		}

		// $all holds the delete's record, then the tombstone's.
		all, err := drain(c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: kurrentdb.Start{}}, 1000))
		if err != nil {
			t.Fatal(err)
		}
		var recs []*kurrentdb.RecordedEvent
		for _, e := range all {
			if e.Event.StreamID == "$$order-1" || (e.Event.StreamID == "order-2" && e.Event.EventType != "OrderPlaced") {
				recs = append(recs, e.Event)
			}
		}
		if len(recs) != 2 {
			t.Fatalf("$all holds %d records of the deletes, want 2", len(recs))
		}
		del, tomb := recs[0], recs[1]
		if del.EventType != "$metadata" || !sameJSON(string(del.Data), `{"$tb":9223372036854775807}`) {
			t.Errorf("soft delete in $all: %s %s %s, want $$order-1 $metadata {$tb: long.MaxValue}", del.StreamID, del.EventType, del.Data)
		}
		if tomb.EventType != "$streamDeleted" || tomb.EventNumber != math.MaxInt64 {
			t.Errorf("tombstone in $all: %s %s #%d, want order-2 $streamDeleted #%d", tomb.StreamID, tomb.EventType, tomb.EventNumber, uint64(math.MaxInt64))
		}
		if soft.Position.Commit < del.Position.Commit || hard.Position.Commit < tomb.Position.Commit {
			t.Errorf("the deletes answered positions %d, %d, before their records %d, %d", soft.Position.Commit, hard.Position.Commit, del.Position.Commit, tomb.Position.Commit)
		}

		// A subscription to $all sees them too; without system events, not.
		for _, filter := range []*kurrentdb.SubscriptionFilter{nil, kurrentdb.ExcludeSystemEventsFilter()} {
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			sub, err := c.SubscribeToAll(sctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}, Filter: filter})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			var types []string
			for {
				ev := sub.Recv()
				if ev.SubscriptionDropped != nil {
					t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
				}
				if ev.CaughtUp != nil {
					break
				}
				if ev.EventAppeared != nil {
					e := ev.EventAppeared.Event
					if (e.StreamID == "order-2" || e.StreamID == "$$order-1") && e.EventType != "OrderPlaced" {
						types = append(types, e.EventType)
					}
				}
			}
			sub.Close()
			cancel()
			want := 2
			if filter != nil {
				want = 0
			}
			if len(types) != want {
				t.Errorf("subscription to $all (filter %v) saw %v of the deletes, want %d records", filter != nil, types, want)
			}
		}

		waitProjectionState(t, pc, "orders", "order-1", `{"n":1,"deleted":1,"soft":true,"stream":"order-1"}`)
		waitProjectionState(t, pc, "orders", "order-2", `{"n":1,"deleted":1,"soft":false,"stream":"order-2"}`)
	})
}
