package subscription_test

import (
	"context"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/subscription"
)

// Stats count, per group, the events not yet processed, those held by a
// consumer and those parked; a group no consumer has used is listed too.
func TestStatsCountLagInFlightAndParked(t *testing.T) {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	m := newManager(t, store)
	defer m.Close(ctx)
	for range 5 {
		if _, err := store.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Create(ctx, "s", "g", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "s", "idle", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, ctx, m, "s", "g", subscription.ConsumerOptions{InFlight: 10})
	defer c.Close(ctx)
	first := next(t, ctx, c)
	ack(t, ctx, c, first)
	second := next(t, ctx, c)
	if err := c.Nack(ctx, subscription.Park, "poison", second.Event.ID); err != nil {
		t.Fatal(err)
	}
	third := next(t, ctx, c) // held, unanswered
	_ = third

	stats, err := m.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]subscription.Stats{}
	for _, s := range stats {
		got[s.Group] = s
	}
	g := got["g"]
	if g.Stream != "s" || g.Lag != 3 || g.Parked != 1 || g.InFlight < 1 || g.Consumers != 1 {
		t.Errorf("group g: %+v; want lag 3 (the events after the acked and the parked one), 1 parked, the third in flight, 1 consumer", g)
	}
	if idle, ok := got["idle"]; !ok || idle.Lag != 5 || idle.InFlight != 0 || idle.Parked != 0 || idle.Consumers != 0 {
		t.Errorf("the idle group: %+v (listed %v); want lag 5 and nothing held", idle, ok)
	}
	info, err := m.Info(ctx, "s", "g")
	if err != nil {
		t.Fatal(err)
	}
	if info.Rate.Count != 3 {
		t.Errorf("Info after Stats measured %d deliveries, want 3: Stats must not start a new measurement", info.Rate.Count)
	}
}
