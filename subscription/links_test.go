package subscription_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/subscription"
)

// indexEngines runs test on each engine that keeps the index, and skips,
// saying so, those that do not (yet).
func indexEngines(t *testing.T, test func(t *testing.T, f fixture)) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			f := eng.open(t)
			if !links.HasIndex(f.store) {
				t.Skipf("the %s engine keeps no index yet: no standard projection streams", eng.name)
			}
			test(t, f)
		})
	}
}

func appendTo(t testing.TB, s *cairn.Store, stream string, types ...string) {
	t.Helper()
	var evs []cairn.EventData
	for _, typ := range types {
		evs = append(evs, cairn.EventData{Type: typ, Data: []byte(`{}`)})
	}
	if _, err := s.Append(context.Background(), stream, cairn.Any, evs...); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
}

// TestCategoryCatchUpThenLive subscribes to $ce-order while a writer
// appends, and checks that every number arrives exactly once, in order,
// across the switch from history to live, each link with its event.
func TestCategoryCatchUpThenLive(t *testing.T) {
	indexEngines(t, func(t *testing.T, f fixture) {
		ctx := deadline(t)
		s := f.store
		const history, total = 300, 700 // more than a page of history
		for i := range history {
			appendTo(t, s, fmt.Sprintf("order-%d", i%7), "OrderPlaced")
			if i%10 == 0 {
				appendTo(t, s, "invoice-1", "InvoiceSent")
			}
		}
		sub, err := subscription.Stream(ctx, s, "$ce-order", subscription.Start, subscription.Options{ResolveLinks: true, BufferSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // appends during catch-up, at the switch and after it
			defer wg.Done()
			for i := history; i < total; i++ {
				if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i%7), cairn.Any, cairn.EventData{Type: "OrderPlaced", Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
		want, caughtUp := int64(0), false
		for want < total {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("next after %d events: %v", want, err)
			}
			switch m.Kind {
			case subscription.KindCaughtUp:
				caughtUp = true
				continue
			case subscription.KindEvent:
			default:
				continue
			}
			if m.Event.Version != want {
				t.Fatalf("got number %d, want %d", m.Event.Version, want)
			}
			event, link := m.Parts()
			if link == nil || event == nil || link.StreamID != "$ce-order" || event.Type != "OrderPlaced" {
				t.Fatalf("number %d: event %+v, link %+v", want, event, link)
			}
			if string(link.Data) != fmt.Sprintf("%d@%s", event.Version, event.StreamID) || link.Position != event.Position {
				t.Fatalf("number %d: link %s at %d for %s@%d at %d", want, link.Data, link.Position, event.StreamID, event.Version, event.Position)
			}
			want++
		}
		wg.Wait()
		// The writer is done: the subscription catches up, with no event
		// after the last number (none delivered twice).
		for !caughtUp {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			switch m.Kind {
			case subscription.KindCaughtUp:
				caughtUp = true
			case subscription.KindEvent:
				t.Fatalf("an event after the last: number %d", m.Event.Version)
			}
		}
	})
}

// TestDisabledProjectionSubscriptionWaits subscribes to $et- streams of a
// disabled projection: the subscriber waits at the point where it stopped
// and receives the rest, in order, once it is enabled.
func TestDisabledProjectionSubscriptionWaits(t *testing.T) {
	indexEngines(t, func(t *testing.T, f fixture) {
		ctx := deadline(t)
		s := f.store
		p, err := links.OpenProjections(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		r := links.NewReader(s, links.Options{Projections: p})
		appendTo(t, s, "order-1", "OrderPlaced")
		if err := p.Disable(ctx, links.ByEventType); err != nil {
			t.Fatal(err)
		}
		appendTo(t, s, "order-2", "OrderPlaced")
		sub, err := subscription.Stream(ctx, s, "$et-OrderPlaced", subscription.Start, subscription.Options{Links: r})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var got []int64
		for len(got) < 2 {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			switch m.Kind {
			case subscription.KindEvent:
				got = append(got, m.Event.Version)
			case subscription.KindCaughtUp:
				if fmt.Sprint(got) != "[0]" {
					t.Fatalf("caught up after %v, want [0]", got)
				}
				if err := p.Enable(ctx, links.ByEventType); err != nil {
					t.Fatal(err)
				}
			}
		}
		if fmt.Sprint(got) != "[0 1]" {
			t.Errorf("got %v", got)
		}
	})
}

// TestPersistentCategoryGroup runs a group on $ce-order that resolves
// links: deliveries carry the linked events, acks name the links, and
// after a restart the group resumes at its checkpoint.
func TestPersistentCategoryGroup(t *testing.T) {
	indexEngines(t, func(t *testing.T, f fixture) {
		ctx := deadline(t)
		s := f.store
		for i := range 6 {
			appendTo(t, s, fmt.Sprintf("order-%d", i%2), "OrderPlaced")
			appendTo(t, s, "shop-1", "Opened")
		}
		m := newManager(t, s)
		if err := m.Create(ctx, "$ce-order", "billing", subscription.Settings{ResolveLinks: true, CheckpointAfter: 1}); err != nil {
			t.Fatal(err)
		}
		if err := m.Create(ctx, "$et-Opened", "audit", subscription.Settings{}); err != nil {
			t.Fatal(err)
		}
		c := connect(t, ctx, m, "$ce-order", "billing", subscription.ConsumerOptions{})
		for want := range int64(4) {
			d := next(t, ctx, c)
			event, link := d.Parts()
			if link == nil || link.Version != want || event == nil || event.StreamID != fmt.Sprintf("order-%d", want%2) {
				t.Fatalf("delivery %d: event %+v, link %+v", want, event, link)
			}
			ack(t, ctx, c, d)
		}
		a := connect(t, ctx, m, "$et-Opened", "audit", subscription.ConsumerOptions{})
		d := next(t, ctx, a)
		if event, link := d.Parts(); link != nil || event.Type != links.LinkType || string(event.Data) != "0@shop-1" {
			t.Errorf("a group that does not resolve links delivers the link as the event: %+v, %+v", event, link)
		}
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}

		s2 := f.reopen(t, s)
		m2 := newManager(t, s2)
		defer m2.Close(ctx)
		c2 := connect(t, ctx, m2, "$ce-order", "billing", subscription.ConsumerOptions{})
		d = next(t, ctx, c2)
		if d.Event.Version != 4 || d.Target == nil || d.Target.StreamID != "order-0" {
			t.Errorf("after a restart the group delivers %+v (target %+v), want number 4 of $ce-order", d.Event, d.Target)
		}
	})
}

// TestIndexFilterOnAll subscribes to $all with KurrentDB's secondary-index
// filters.
func TestIndexFilterOnAll(t *testing.T) {
	ctx := deadline(t)
	s := openMemory(t).store
	appendTo(t, s, "order-1", "OrderPlaced", "OrderShipped")
	appendTo(t, s, "shop-1", "OrderPlaced")
	appendTo(t, s, "orders-1", "X")
	for _, c := range []struct {
		prefix string
		want   string
	}{
		{"$idx-ce-order", "[order-1/OrderPlaced order-1/OrderShipped]"},
		{"$idx-et-OrderPlaced", "[order-1/OrderPlaced shop-1/OrderPlaced]"},
	} {
		sub, err := subscription.All(ctx, s, subscription.Start, subscription.Options{Filter: subscription.Filter{StreamPrefixes: []string{c.prefix}}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for m, err := range sub.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind == subscription.KindCaughtUp {
				break
			}
			if m.Kind == subscription.KindEvent {
				got = append(got, m.Event.StreamID+"/"+m.Event.Type)
			}
		}
		sub.Close()
		if fmt.Sprint(got) != c.want {
			t.Errorf("%s: got %v, want %s", c.prefix, got, c.want)
		}
	}
}
