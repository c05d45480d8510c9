package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// settingsOf returns settings with every field other than its default, so
// that a round trip shows each one kept.
func settingsOf(base int32, strategy kurrentdb.ConsumerStrategy) kurrentdb.PersistentSubscriptionSettings {
	return kurrentdb.PersistentSubscriptionSettings{
		ResolveLinkTos:       true,
		ExtraStatistics:      true,
		MaxRetryCount:        base + 1,
		LiveBufferSize:       base + 2,
		ReadBatchSize:        base + 3,
		HistoryBufferSize:    base + 4,
		CheckpointAfter:      base*1000 + 5,
		CheckpointLowerBound: base + 6,
		CheckpointUpperBound: base + 70,
		MaxSubscriberCount:   base + 8,
		MessageTimeout:       base*1000 + 9,
		ConsumerStrategyName: strategy,
	}
}

// TestPersistentSettingsRoundTrip creates and updates groups on a stream
// and on $all through the official Go client and checks that GetInfo and
// List report every setting as it was set, the start in KurrentDB's
// formats included.
func TestPersistentSettingsRoundTrip(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	if _, err := c.AppendToStream(ctx, "orders", kurrentdb.AppendToStreamOptions{}, events(5, "E")...); err != nil {
		t.Fatal(err)
	}
	want := func(what string, got *kurrentdb.PersistentSubscriptionInfo, s kurrentdb.PersistentSubscriptionSettings, start any) {
		t.Helper()
		s.StartFrom = start
		if *got.Settings != s {
			t.Errorf("%s:\n got  %+v\n want %+v", what, *got.Settings, s)
		}
	}
	info := func(stream, group string) *kurrentdb.PersistentSubscriptionInfo {
		t.Helper()
		var i *kurrentdb.PersistentSubscriptionInfo
		var err error
		if stream == "$all" {
			i, err = c.GetPersistentSubscriptionInfoToAll(ctx, group, kurrentdb.GetPersistentSubscriptionOptions{})
		} else {
			i, err = c.GetPersistentSubscriptionInfo(ctx, stream, group, kurrentdb.GetPersistentSubscriptionOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		return i
	}

	strategies := []kurrentdb.ConsumerStrategy{kurrentdb.ConsumerStrategyRoundRobin, kurrentdb.ConsumerStrategyDispatchToSingle,
		kurrentdb.ConsumerStrategyPinned, kurrentdb.ConsumerStrategyPinnedByCorrelation}
	starts := []struct {
		name   string
		stream kurrentdb.StreamPosition // the StartFrom given and reported
		all    kurrentdb.AllPosition
		allGot any // as the client reports it
	}{
		{"start", kurrentdb.Start{}, kurrentdb.Start{}, kurrentdb.Start{}},
		{"end", kurrentdb.End{}, kurrentdb.End{}, kurrentdb.End{}},
		{"at", kurrentdb.Revision(3), kurrentdb.Position{Commit: 2, Prepare: 2}, kurrentdb.Position{Commit: 2, Prepare: 2}},
	}
	for i, st := range starts {
		s := settingsOf(int32(10*(i+1)), strategies[i%len(strategies)])
		if err := c.CreatePersistentSubscription(ctx, "orders", st.name, kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: st.stream, Settings: &s}); err != nil {
			t.Fatalf("create on orders from %s: %v", st.name, err)
		}
		want("stream group from "+st.name, info("orders", st.name), s, st.stream)
		if err := c.CreatePersistentSubscriptionToAll(ctx, st.name, kurrentdb.PersistentAllSubscriptionOptions{StartFrom: st.all, Settings: &s}); err != nil {
			t.Fatalf("create on $all from %s: %v", st.name, err)
		}
		got := info("$all", st.name)
		if p, ok := got.Settings.StartFrom.(*kurrentdb.Position); ok {
			got.Settings.StartFrom = *p // the client parses a position into a pointer
		}
		want("$all group from "+st.name, got, s, st.allGot)
	}

	// An update replaces every setting but the start; each strategy the
	// update's enum carries.
	for i, strategy := range strategies[:3] {
		u := settingsOf(int32(100*(i+1)), strategy)
		if err := c.UpdatePersistentSubscription(ctx, "orders", "start", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &u}); err != nil {
			t.Fatal(err)
		}
		want("updated stream group", info("orders", "start"), u, kurrentdb.Start{})
		if err := c.UpdatePersistentSubscriptionToAll(ctx, "end", kurrentdb.PersistentAllSubscriptionOptions{Settings: &u}); err != nil {
			t.Fatal(err)
		}
		want("updated $all group", info("$all", "end"), u, kurrentdb.End{})
	}

	// List reports the same.
	list, err := c.ListPersistentSubscriptionsForStream(ctx, "orders", kurrentdb.ListPersistentSubscriptionsOptions{})
	if err != nil || len(list) != 3 {
		t.Fatalf("list on orders: %d groups, %v", len(list), err)
	}
	for _, l := range list {
		if got := info("orders", l.GroupName); *got.Settings != *l.Settings {
			t.Errorf("list reports %+v for %s, info %+v", *l.Settings, l.GroupName, *got.Settings)
		}
	}
	all, err := c.ListAllPersistentSubscriptions(ctx, kurrentdb.ListPersistentSubscriptionsOptions{})
	if err != nil || len(all) != 6 {
		t.Fatalf("list of every group: %d groups, %v", len(all), err)
	}
}

// TestPersistentConnectionInfo checks the connections GetInfo reports: the
// user, the client's address, its connection name ("<unknown>" when the
// client sends none, as the Go client does), its slots and its counts.
func TestPersistentConnectionInfo(t *testing.T) {
	ts, files := startTLS(t) // the client sends its credentials over TLS only
	c := connect(t, "kurrentdb://admin:s3cret@localhost"+ts.addr[strings.LastIndexByte(ts.addr, ':'):]+"?tls=true&tlscafile="+files.CACert)
	ctx := context.Background()
	if _, err := c.AppendToStream(ctx, "jobs", kurrentdb.AppendToStreamOptions{}, events(3, "Job")...); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePersistentSubscription(ctx, "jobs", "w", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscription(ctx, "jobs", "w", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for range 3 {
		e := recvPersistent(t, sub)
		if err := sub.Ack(e.Event); err != nil {
			t.Fatal(err)
		}
	}
	info, err := c.GetPersistentSubscriptionInfo(ctx, "jobs", "w", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Connections) != 1 {
		t.Fatalf("connections %+v, want one", info.Connections)
	}
	conn := info.Connections[0]
	if conn.Username != "admin" || conn.ConnectionName != "<unknown>" || conn.From == "" || conn.TotalItemsProcessed != 3 ||
		conn.CountSinceLastMeasurement != 3 || conn.AvailableSlots+conn.InFlightMessages != 10 {
		t.Errorf("connection %+v: want admin, <unknown>, an address, 3 items since the start, 10 slots in all", conn)
	}
	if info.Stats.TotalItems != 3 || info.Stats.CountSinceLastMeasurement != 3 {
		t.Errorf("stats %+v, want 3 items, 3 since the last measurement", *info.Stats)
	}
	again, err := c.GetPersistentSubscriptionInfo(ctx, "jobs", "w", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.CountSinceLastMeasurement != 0 || again.Connections[0].CountSinceLastMeasurement != 0 || again.Connections[0].TotalItemsProcessed != 3 {
		t.Errorf("second measurement: %+v, %+v; want no items since the first", *again.Stats, again.Connections[0])
	}
}

// TestPersistentStrategiesDelivery connects three consumers to a group
// of each strategy through the official Go client, appends twelve events
// over four streams (with correlation ids that cross the streams), and
// checks who receives what: RoundRobin in turn, DispatchToSingle all to
// the first consumer, Pinned each stream to one consumer,
// PinnedByCorrelation each correlation id to one consumer.
func TestPersistentStrategiesDelivery(t *testing.T) {
	for _, strategy := range []kurrentdb.ConsumerStrategy{kurrentdb.ConsumerStrategyRoundRobin, kurrentdb.ConsumerStrategyDispatchToSingle,
		kurrentdb.ConsumerStrategyPinned, kurrentdb.ConsumerStrategyPinnedByCorrelation} {
		t.Run(string(strategy), func(t *testing.T) {
			ts := start(t, server.Options{})
			c := ts.client(t)
			ctx := context.Background()
			s := kurrentdb.SubscriptionSettingsDefault()
			s.ConsumerStrategyName = strategy
			if err := c.CreatePersistentSubscriptionToAll(ctx, "g", kurrentdb.PersistentAllSubscriptionOptions{Settings: &s, StartFrom: kurrentdb.Start{},
				Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{"s-"}}}); err != nil {
				t.Fatal(err)
			}
			type got struct {
				consumer int
				e        *kurrentdb.RecordedEvent
			}
			out := make(chan got, 12)
			for i := range 3 {
				sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, "g", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 20})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sub.Close() })
				go func() {
					for {
						m := sub.Recv()
						if m.EventAppeared == nil {
							return
						}
						out <- got{i, m.EventAppeared.Event.Event}
					}
				}()
			}
			for i := range 12 {
				e := jsonEvent("E", `{}`)
				e.Metadata = fmt.Appendf(nil, `{"$correlationId":"saga-%d"}`, i%3)
				if _, err := c.AppendToStream(ctx, fmt.Sprint("s-", i%4), kurrentdb.AppendToStreamOptions{}, e); err != nil {
					t.Fatal(err)
				}
			}
			per := map[int]int{}
			byStream, byCorrelation := map[string]map[int]bool{}, map[string]map[int]bool{}
			add := func(m map[string]map[int]bool, k string, c int) {
				if m[k] == nil {
					m[k] = map[int]bool{}
				}
				m[k][c] = true
			}
			timeout := time.After(20 * time.Second)
			for range 12 {
				select {
				case g := <-out:
					per[g.consumer]++
					add(byStream, g.e.StreamID, g.consumer)
					add(byCorrelation, string(g.e.UserMetadata), g.consumer)
				case <-timeout:
					t.Fatalf("received %v of 12 events", per)
				}
			}
			switch strategy {
			case kurrentdb.ConsumerStrategyRoundRobin:
				if per[0] != 4 || per[1] != 4 || per[2] != 4 {
					t.Errorf("RoundRobin handed %v, want 4 to each", per)
				}
			case kurrentdb.ConsumerStrategyDispatchToSingle:
				if per[0] != 12 {
					t.Errorf("DispatchToSingle handed %v, want all 12 to the first", per)
				}
			case kurrentdb.ConsumerStrategyPinned:
				for k, cs := range byStream {
					if len(cs) != 1 {
						t.Errorf("Pinned handed stream %s to %v", k, cs)
					}
				}
			case kurrentdb.ConsumerStrategyPinnedByCorrelation:
				for k, cs := range byCorrelation {
					if len(cs) != 1 {
						t.Errorf("PinnedByCorrelation handed %s to %v", k, cs)
					}
				}
			}
		})
	}
}
