package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

func recvPersistent(t *testing.T, sub *kurrentdb.PersistentSubscription) *kurrentdb.EventAppeared {
	t.Helper()
	m := sub.Recv()
	if m.SubscriptionDropped != nil {
		t.Fatalf("persistent subscription dropped: %v", m.SubscriptionDropped.Error)
	}
	return m.EventAppeared
}

// waitParked waits until the group reports n parked events.
func waitParked(t *testing.T, c *kurrentdb.Client, stream, group string, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		info, err := c.GetPersistentSubscriptionInfo(ctx, stream, group, kurrentdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatalf("info: %v", err)
		}
		if info.Stats != nil && info.Stats.ParkedMessagesCount == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the group never reported %d parked events", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestPersistentSubscriptionOnStream(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		if _, err := c.AppendToStream(ctx, "jobs", kurrentdb.AppendToStreamOptions{}, events(3, "Job")...); err != nil {
			t.Fatal(err)
		}
		if err := c.CreatePersistentSubscription(ctx, "jobs", "workers", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
			t.Fatalf("create: %v", err)
		}
		err := c.CreatePersistentSubscription(ctx, "jobs", "workers", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}})
		if errorCode(err) != kurrentdb.ErrorCodeResourceAlreadyExists {
			t.Errorf("create twice: %v, want ErrorCodeResourceAlreadyExists", err)
		}

		sub, err := c.SubscribeToPersistentSubscription(ctx, "jobs", "workers", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 10})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer sub.Close()
		var got []*kurrentdb.ResolvedEvent
		for range 3 {
			got = append(got, recvPersistent(t, sub).Event)
		}
		if r := revisions(got); !equal(r, []uint64{0, 1, 2}) {
			t.Fatalf("delivered %v, want [0 1 2]", r)
		}
		if err := sub.Ack(got[0], got[1]); err != nil {
			t.Fatal(err)
		}
		if err := sub.Nack("poison", kurrentdb.NackActionRetry, got[2]); err != nil {
			t.Fatal(err)
		}
		again := recvPersistent(t, sub)
		if again.Event.OriginalEvent().EventNumber != 2 || again.RetryCount != 1 {
			t.Errorf("retried event %d with retry count %d, want 2 and 1", again.Event.OriginalEvent().EventNumber, again.RetryCount)
		}
		if err := sub.Nack("poison", kurrentdb.NackActionPark, again.Event); err != nil {
			t.Fatal(err)
		}

		// Live events reach the consumer too.
		if _, err := c.AppendToStream(ctx, "jobs", kurrentdb.AppendToStreamOptions{}, events(1, "Job")...); err != nil {
			t.Fatal(err)
		}
		live := recvPersistent(t, sub)
		if live.Event.OriginalEvent().EventNumber != 3 {
			t.Errorf("live event %d, want 3", live.Event.OriginalEvent().EventNumber)
		}
		if err := sub.Ack(live.Event); err != nil {
			t.Fatal(err)
		}

		info, err := c.GetPersistentSubscriptionInfo(ctx, "jobs", "workers", kurrentdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatalf("info: %v", err)
		}
		if info.EventSource != "jobs" || info.GroupName != "workers" || len(info.Connections) != 1 {
			t.Errorf("info %+v", info)
		}
		list, err := c.ListAllPersistentSubscriptions(ctx, kurrentdb.ListPersistentSubscriptionsOptions{})
		if err != nil || len(list) != 1 {
			t.Errorf("list: %d groups, %v", len(list), err)
		}

		// The parked event comes back on replay. A nack travels on the
		// subscription's stream and the replay on a call of its own, so
		// wait until the server has parked the event before replaying.
		waitParked(t, c, "jobs", "workers", 1)
		if err := c.ReplayParkedMessages(ctx, "jobs", "workers", kurrentdb.ReplayParkedMessagesOptions{}); err != nil {
			t.Fatalf("replay parked: %v", err)
		}
		replayed := recvPersistent(t, sub)
		if replayed.Event.OriginalEvent().EventNumber != 2 {
			t.Errorf("replayed event %d, want 2", replayed.Event.OriginalEvent().EventNumber)
		}
		if err := sub.Ack(replayed.Event); err != nil {
			t.Fatal(err)
		}

		if err := c.DeletePersistentSubscription(ctx, "jobs", "workers", kurrentdb.DeletePersistentSubscriptionOptions{}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err = c.GetPersistentSubscriptionInfo(ctx, "jobs", "workers", kurrentdb.GetPersistentSubscriptionOptions{})
		if errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
			t.Errorf("info after delete: %v, want ErrorCodeResourceNotFound", err)
		}
	})
}

func TestPersistentSubscriptionOnAllWithFilter(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		for _, s := range []string{"order-1", "user-1", "order-2"} {
			if _, err := c.AppendToStream(ctx, s, kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
				t.Fatal(err)
			}
		}
		err := c.CreatePersistentSubscriptionToAll(ctx, "orders", kurrentdb.PersistentAllSubscriptionOptions{
			StartFrom: kurrentdb.Start{},
			Filter:    &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{"order-"}},
		})
		if err != nil {
			t.Fatalf("create on $all: %v", err)
		}
		sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, "orders", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		for _, want := range []string{"order-1", "order-2"} {
			e := recvPersistent(t, sub).Event
			if e.OriginalEvent().StreamID != want {
				t.Errorf("delivered %s, want %s", e.OriginalEvent().StreamID, want)
			}
			if err := sub.Ack(e); err != nil {
				t.Fatal(err)
			}
		}
		info, err := c.GetPersistentSubscriptionInfoToAll(ctx, "orders", kurrentdb.GetPersistentSubscriptionOptions{})
		if err != nil || info.EventSource != "$all" {
			t.Fatalf("info on $all: %+v, %v", info, err)
		}
	})
}
