package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// onIndexEngines runs body against a server on each engine that keeps the
// index, and skips, saying so, those that do not (yet).
func onIndexEngines(t *testing.T, body func(t *testing.T, ts *testServer)) {
	open := []struct {
		name string
		open func(t *testing.T) cairn.Backend
	}{
		{"memory", func(t *testing.T) cairn.Backend { return memstore.New() }},
		{"disk", func(t *testing.T) cairn.Backend {
			db, err := diskstore.Open(t.TempDir(), diskstore.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
		{"postgres", func(t *testing.T) cairn.Backend {
			url := pgtest.URL(t)
			db, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: pgtest.Schema(t, "server_links")})
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
	}
	for _, e := range open {
		t.Run(e.name, func(t *testing.T) {
			b := e.open(t)
			if _, ok := b.(cairn.IndexReader); !ok {
				b.Close()
				t.Skipf("the %s engine keeps no index yet: it serves no $ce-, $et-, $streams, $category- or $bc- stream", e.name)
			}
			body(t, startOn(t, b, server.Options{}))
		})
	}
}

func appendEvents(t *testing.T, c *kurrentdb.Client, stream string, evs ...kurrentdb.EventData) {
	t.Helper()
	if _, err := c.AppendToStream(context.Background(), stream, kurrentdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
}

func readStream(t *testing.T, c *kurrentdb.Client, stream string, opts kurrentdb.ReadStreamOptions) []*kurrentdb.ResolvedEvent {
	t.Helper()
	evs, err := drain(c.ReadStream(context.Background(), stream, opts, 1000))
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return evs
}

// shape renders resolved events: "n data" for an event alone,
// "n link->stream/version type" for a resolved link, "n link->none" for a
// link whose event is gone.
func shape(evs []*kurrentdb.ResolvedEvent) []string {
	var out []string
	for _, e := range evs {
		switch {
		case e.Link == nil:
			out = append(out, fmt.Sprintf("%d %s", e.Event.EventNumber, e.Event.Data))
		case e.Event == nil:
			out = append(out, fmt.Sprintf("%d %s->none", e.Link.EventNumber, e.Link.Data))
		default:
			out = append(out, fmt.Sprintf("%d %s->%s/%d %s", e.Link.EventNumber, e.Link.Data, e.Event.StreamID, e.Event.EventNumber, e.Event.EventType))
		}
	}
	return out
}

func sameShape(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func withCorrelation(typ, id string) kurrentdb.EventData {
	e := jsonEvent(typ, `{}`)
	e.Metadata = []byte(`{"$correlationId":"` + id + `"}`)
	return e
}

// TestStandardProjectionStreams reads the standard projections' streams
// through the official client, with and without resolveLinkTos, as a
// KurrentDB application does.
func TestStandardProjectionStreams(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		appendEvents(t, c, "order-1", jsonEvent("OrderPlaced", `{"id":1}`))
		appendEvents(t, c, "invoice-1", jsonEvent("InvoiceSent", `{}`))
		appendEvents(t, c, "order-2", withCorrelation("OrderPlaced", "c-7"), withCorrelation("OrderShipped", "c-7"))
		appendEvents(t, c, "order-1", jsonEvent("OrderShipped", `{}`))

		fwd := kurrentdb.ReadStreamOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Start{}}
		links := readStream(t, c, "$ce-order", fwd)
		sameShape(t, "$ce-order", shape(links), []string{"0 0@order-1", "1 0@order-2", "2 1@order-2", "3 1@order-1"})
		for _, e := range links {
			if e.Event.EventType != "$>" || e.Event.StreamID != "$ce-order" || e.Event.ContentType != "application/octet-stream" {
				t.Errorf("$ce-order link = %+v, want a $> event of $ce-order", e.Event)
			}
		}

		fwd.ResolveLinkTos = true
		resolved := readStream(t, c, "$ce-order", fwd)
		sameShape(t, "$ce-order resolved", shape(resolved), []string{
			"0 0@order-1->order-1/0 OrderPlaced", "1 0@order-2->order-2/0 OrderPlaced",
			"2 1@order-2->order-2/1 OrderShipped", "3 1@order-1->order-1/1 OrderShipped",
		})
		if e := resolved[0]; string(e.Event.Data) != `{"id":1}` || e.OriginalEvent() != e.Link || e.OriginalStreamRevision().Value != 0 {
			t.Errorf("resolved event %+v: data %s", e, e.Event.Data)
		}
		// The link reports the position of the event it names.
		if e := resolved[1]; e.Link.Position != e.Event.Position || e.Commit == nil || *e.Commit != e.Event.Position.Commit {
			t.Errorf("link position %v, event position %v, read position %v", e.Link.Position, e.Event.Position, e.Commit)
		}

		back := kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}, ResolveLinkTos: true}
		evs, err := drain(c.ReadStream(context.Background(), "$ce-order", back, 2))
		if err != nil {
			t.Fatal(err)
		}
		sameShape(t, "$ce-order backwards", shape(evs), []string{"3 1@order-1->order-1/1 OrderShipped", "2 1@order-2->order-2/1 OrderShipped"})

		sameShape(t, "$et-OrderPlaced", shape(readStream(t, c, "$et-OrderPlaced", fwd)), []string{
			"0 0@order-1->order-1/0 OrderPlaced", "1 0@order-2->order-2/0 OrderPlaced",
		})
		sameShape(t, "$streams", shape(readStream(t, c, "$streams", fwd)), []string{
			"0 0@order-1->order-1/0 OrderPlaced", "1 0@invoice-1->invoice-1/0 InvoiceSent", "2 0@order-2->order-2/0 OrderPlaced",
		})
		cs := readStream(t, c, "$category-order", fwd)
		sameShape(t, "$category-order", shape(cs), []string{"0 order-1", "1 order-2"})
		if cs[0].Event.EventType != "$@" {
			t.Errorf("$category-order event type %q, want $@", cs[0].Event.EventType)
		}
		sameShape(t, "$bc-c-7", shape(readStream(t, c, "$bc-c-7", fwd)), []string{
			"0 0@order-2->order-2/0 OrderPlaced", "1 1@order-2->order-2/1 OrderShipped",
		})

		// A category with no event: the stream does not exist, as in KurrentDB.
		if _, err := drain(c.ReadStream(context.Background(), "$ce-nothing", fwd, 10)); errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
			t.Errorf("read $ce-nothing: %v, want stream not found", err)
		}

		// The links are not in $all: its events are the four appended.
		all, err := drain(c.ReadAll(context.Background(), kurrentdb.ReadAllOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Start{}, ResolveLinkTos: true}, 100))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			if e.Link != nil || e.Event.EventType == "$>" {
				t.Errorf("$all holds a link: %+v", e)
			}
		}
	})
}

// TestApplicationWrittenLinks appends links as an application does, and
// reads them resolved from their stream and from $all; a link to a deleted
// event resolves to the link alone.
func TestApplicationWrittenLinks(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		appendEvents(t, c, "order-1", jsonEvent("OrderPlaced", `{}`), jsonEvent("OrderShipped", `{}`))
		appendEvents(t, c, "order-9", jsonEvent("OrderPlaced", `{}`))
		link := func(target string) kurrentdb.EventData {
			return kurrentdb.EventData{EventID: uuid.New(), EventType: "$>", ContentType: kurrentdb.ContentTypeBinary, Data: []byte(target)}
		}
		appendEvents(t, c, "vip-orders", link("1@order-1"), link("0@order-9"))
		if _, err := c.DeleteStream(ctx, "order-9", kurrentdb.DeleteStreamOptions{}); err != nil {
			t.Fatal(err)
		}

		fwd := kurrentdb.ReadStreamOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Start{}}
		sameShape(t, "unresolved", shape(readStream(t, c, "vip-orders", fwd)), []string{"0 1@order-1", "1 0@order-9"})
		fwd.ResolveLinkTos = true
		sameShape(t, "resolved", shape(readStream(t, c, "vip-orders", fwd)), []string{
			"0 1@order-1->order-1/1 OrderShipped", "1 0@order-9->none",
		})
		all, err := drain(c.ReadAll(ctx, kurrentdb.ReadAllOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Start{}, ResolveLinkTos: true}, 100))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range all {
			if e.Link != nil {
				got = append(got, shape([]*kurrentdb.ResolvedEvent{e})...)
			}
		}
		sameShape(t, "$all resolved", got, []string{"0 1@order-1->order-1/1 OrderShipped", "1 0@order-9->none"})
	})
}

// TestCategorySubscriptionCatchUpThenLive subscribes to $ce-order with
// resolveLinkTos while events arrive during the catch-up and after it:
// every number arrives exactly once, in order, with its event.
func TestCategorySubscriptionCatchUpThenLive(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const history, total = 300, 600
		for i := range history {
			appendEvents(t, c, fmt.Sprintf("order-%d", i%5), jsonEvent("OrderPlaced", fmt.Sprintf(`{"n":%d}`, i)))
		}
		sub, err := c.SubscribeToStream(ctx, "$ce-order", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}, ResolveLinkTos: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := history; i < total; i++ {
				if _, err := c.AppendToStream(ctx, fmt.Sprintf("order-%d", i%5), kurrentdb.AppendToStreamOptions{}, jsonEvent("OrderPlaced", fmt.Sprintf(`{"n":%d}`, i))); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
		for want := uint64(0); want < total; want++ {
			e, _ := next(t, sub)
			if e.Link == nil || e.Event == nil || e.Link.EventNumber != want || string(e.Event.Data) != fmt.Sprintf(`{"n":%d}`, want) {
				t.Fatalf("event %d: %+v", want, shape([]*kurrentdb.ResolvedEvent{e}))
			}
		}
		wg.Wait()
	})
}

// TestPersistentSubscriptionToCategory runs persistent subscriptions to
// $ce-order (resolving links) and $et-OrderPlaced (not), acking by the
// link, as a KurrentDB application does.
func TestPersistentSubscriptionToCategory(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range 4 {
			appendEvents(t, c, fmt.Sprintf("order-%d", i%2), jsonEvent("OrderPlaced", fmt.Sprintf(`{"n":%d}`, i)))
		}
		settings := kurrentdb.SubscriptionSettingsDefault()
		settings.ResolveLinkTos = true
		if err := c.CreatePersistentSubscription(ctx, "$ce-order", "billing", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: kurrentdb.Start{}}); err != nil {
			t.Fatalf("create on $ce-order: %v", err)
		}
		if err := c.CreatePersistentSubscription(ctx, "$et-OrderPlaced", "audit", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
			t.Fatalf("create on $et-OrderPlaced: %v", err)
		}
		info, err := c.GetPersistentSubscriptionInfo(ctx, "$ce-order", "billing", kurrentdb.GetPersistentSubscriptionOptions{})
		if err != nil || !info.Settings.ResolveLinkTos {
			t.Errorf("info: %+v, %v; want resolveLinkTos", info, err)
		}
		sub, err := c.SubscribeToPersistentSubscription(ctx, "$ce-order", "billing", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		for want := uint64(0); want < 4; want++ {
			ev := recvPersistent(t, sub).Event
			if ev.Link == nil || ev.Event == nil || ev.Link.EventNumber != want || string(ev.Event.Data) != fmt.Sprintf(`{"n":%d}`, want) {
				t.Fatalf("delivery %d: %+v", want, shape([]*kurrentdb.ResolvedEvent{ev}))
			}
			if err := sub.Ack(ev); err != nil {
				t.Fatal(err)
			}
		}
		appendEvents(t, c, "order-1", jsonEvent("OrderPlaced", `{"n":4}`))
		if ev := recvPersistent(t, sub).Event; ev.Link == nil || ev.Link.EventNumber != 4 {
			t.Fatalf("live delivery: %+v", shape([]*kurrentdb.ResolvedEvent{ev}))
		}

		audit, err := c.SubscribeToPersistentSubscription(ctx, "$et-OrderPlaced", "audit", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer audit.Close()
		ev := recvPersistent(t, audit).Event
		if ev.Link != nil || ev.Event.EventType != "$>" || string(ev.Event.Data) != "0@order-0" || ev.Event.StreamID != "$et-OrderPlaced" {
			t.Fatalf("without resolveLinkTos: %+v", shape([]*kurrentdb.ResolvedEvent{ev}))
		}
		if err := audit.Ack(ev); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDisabledStandardProjection disables $by_category: $ce- streams stop
// where they were, and a subscriber gets the rest once it is enabled.
func TestDisabledStandardProjection(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		appendEvents(t, c, "order-1", jsonEvent("OrderPlaced", `{}`))
		p := ts.StandardProjections()
		if err := p.Disable(ctx, links.ByCategory); err != nil {
			t.Fatal(err)
		}
		appendEvents(t, c, "order-2", jsonEvent("OrderPlaced", `{}`))
		fwd := kurrentdb.ReadStreamOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Start{}}
		sameShape(t, "disabled", shape(readStream(t, c, "$ce-order", fwd)), []string{"0 0@order-1"})
		sub, err := c.SubscribeToStream(ctx, "$ce-order", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if got := untilCaughtUp(t, sub); len(got) != 1 {
			t.Fatalf("caught up after %v", shape(got))
		}
		if err := p.Enable(ctx, links.ByCategory); err != nil {
			t.Fatal(err)
		}
		if e, _ := next(t, sub); e.Event.EventNumber != 1 || string(e.Event.Data) != "0@order-2" {
			t.Fatalf("after enable: %v", shape([]*kurrentdb.ResolvedEvent{e}))
		}
	})
}

// TestSecondaryIndexFilter subscribes to $all with KurrentDB 25.1's
// $idx-ce- and $idx-et- filters.
func TestSecondaryIndexFilter(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		appendEvents(t, c, "order-1", jsonEvent("OrderPlaced", `{}`), jsonEvent("OrderShipped", `{}`))
		appendEvents(t, c, "shop-1", jsonEvent("OrderPlaced", `{}`))
		for prefix, want := range map[string][]string{
			"$idx-ce-order":       {"order-1/OrderPlaced", "order-1/OrderShipped", "order-1/OrderCancelled"},
			"$idx-et-OrderPlaced": {"order-1/OrderPlaced", "shop-1/OrderPlaced", "shop-2/OrderPlaced"},
		} {
			sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}, Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{prefix}}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range untilCaughtUp(t, sub) {
				got = append(got, e.Event.StreamID+"/"+e.Event.EventType)
			}
			if prefix == "$idx-ce-order" {
				appendEvents(t, c, "order-1", jsonEvent("OrderCancelled", `{}`))
			} else {
				appendEvents(t, c, "shop-2", jsonEvent("OrderPlaced", `{}`))
			}
			e, _ := next(t, sub)
			got = append(got, e.Event.StreamID+"/"+e.Event.EventType)
			sub.Close()
			sameShape(t, prefix, got, want)
		}
		// KurrentDB takes one index name in place of the prefixes.
		_, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}, Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{"$idx-ce-order", "shop-"}}})
		if err == nil || !strings.Contains(err.Error(), "one index") {
			t.Errorf("an index mixed with another prefix: %v, want a refusal that says a filter names one index", err)
		}
	})
}

// TestSecondaryIndexRead reads $all through the $idx-et- filter, which the
// Go client cannot send on a read: the generated client of the protocol
// does.
func TestSecondaryIndexRead(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		// A new server's log starts with the system's events (its users).
		b := ts.next(t)
		appendEvents(t, c, "order-1", jsonEvent("OrderPlaced", `{}`), jsonEvent("OrderShipped", `{}`))
		appendEvents(t, c, "shop-1", jsonEvent("OrderPlaced", `{}`))
		appendEvents(t, c, "order-2", jsonEvent("OrderPlaced", `{}`))
		conn := ts.conn(t)
		read := func(all *api.ReadReq_Options_AllOptions, dir api.ReadReq_Options_ReadDirection, count uint64) []string {
			t.Helper()
			rs, err := api.NewStreamsClient(conn).Read(ctx, &api.ReadReq{Options: &api.ReadReq_Options{
				StreamOption:  &api.ReadReq_Options_All{All: all},
				ReadDirection: dir,
				CountOption:   &api.ReadReq_Options_Count{Count: count},
				FilterOption: &api.ReadReq_Options_Filter{Filter: &api.ReadReq_Options_FilterOptions{
					Filter: &api.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: &api.ReadReq_Options_FilterOptions_Expression{Prefix: []string{"$idx-et-OrderPlaced"}}},
					Window: &api.ReadReq_Options_FilterOptions_Count{Count: &shared.Empty{}},
				}},
				UuidOption: &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for {
				m, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					return out
				}
				if err != nil {
					t.Fatal(err)
				}
				if e := m.GetEvent(); e != nil {
					if e.GetLink() != nil {
						t.Errorf("an index read returned a link: %v", e)
					}
					out = append(out, fmt.Sprintf("%s@%d", e.GetEvent().GetStreamIdentifier().GetStreamName(), e.GetEvent().GetCommitPosition()))
				}
			}
		}
		start := &api.ReadReq_Options_AllOptions{AllOption: &api.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}
		end := &api.ReadReq_Options_AllOptions{AllOption: &api.ReadReq_Options_AllOptions_End{End: &shared.Empty{}}}
		at := func(p uint64) *api.ReadReq_Options_AllOptions {
			return &api.ReadReq_Options_AllOptions{AllOption: &api.ReadReq_Options_AllOptions_Position{Position: &api.ReadReq_Options_Position{CommitPosition: p, PreparePosition: p}}}
		}
		at1 := func(stream string, off uint64) string { return fmt.Sprintf("%s@%d", stream, b+off) }
		sameShape(t, "forwards", read(start, api.ReadReq_Options_Forwards, 10), []string{at1("order-1", 0), at1("shop-1", 2), at1("order-2", 3)})
		sameShape(t, "from 1", read(at(b+1), api.ReadReq_Options_Forwards, 10), []string{at1("shop-1", 2), at1("order-2", 3)})
		sameShape(t, "count", read(start, api.ReadReq_Options_Forwards, 2), []string{at1("order-1", 0), at1("shop-1", 2)})
		sameShape(t, "backwards", read(end, api.ReadReq_Options_Backwards, 2), []string{at1("order-2", 3), at1("shop-1", 2)})
		sameShape(t, "backwards from 2", read(at(b+2), api.ReadReq_Options_Backwards, 10), []string{at1("shop-1", 2), at1("order-1", 0)})
	})
}

// TestLinkResolutionHonoursStreamMetadata resolves links to events that
// the stream's metadata ($tb) hides: reads and persistent subscriptions
// return those links alone.
func TestLinkResolutionHonoursStreamMetadata(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		appendEvents(t, c, "order-5", jsonEvent("OrderPlaced", `{}`), jsonEvent("OrderShipped", `{}`))
		link := func(target string) kurrentdb.EventData {
			return kurrentdb.EventData{EventID: uuid.New(), EventType: "$>", ContentType: kurrentdb.ContentTypeBinary, Data: []byte(target)}
		}
		appendEvents(t, c, "picked", link("0@order-5"), link("1@order-5"))
		var meta kurrentdb.StreamMetadata
		meta.SetTruncateBefore(1)
		if _, err := c.SetStreamMetadata(ctx, "order-5", kurrentdb.AppendToStreamOptions{}, meta); err != nil {
			t.Fatal(err)
		}
		want := []string{"0 0@order-5->none", "1 1@order-5->order-5/1 OrderShipped"}
		sameShape(t, "read", shape(readStream(t, c, "picked", kurrentdb.ReadStreamOptions{From: kurrentdb.Start{}, ResolveLinkTos: true})), want)
		sameShape(t, "$ce-order", shape(readStream(t, c, "$ce-order", kurrentdb.ReadStreamOptions{From: kurrentdb.Start{}, ResolveLinkTos: true})), []string{
			"0 0@order-5->none", "1 1@order-5->order-5/1 OrderShipped",
		})
		settings := kurrentdb.SubscriptionSettingsDefault()
		settings.ResolveLinkTos = true
		if err := c.CreatePersistentSubscription(ctx, "picked", "g", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: kurrentdb.Start{}}); err != nil {
			t.Fatal(err)
		}
		sub, err := c.SubscribeToPersistentSubscription(ctx, "picked", "g", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var got []string
		for range 2 {
			ev := recvPersistent(t, sub).Event
			got = append(got, shape([]*kurrentdb.ResolvedEvent{ev})...)
			if err := sub.Ack(ev); err != nil {
				t.Fatal(err)
			}
		}
		sameShape(t, "persistent", got, want)
	})
}

// TestStandardProjectionsThroughTheProjectionsAPI manages $by_category as a
// KurrentDB operator does, with the official client's projection calls:
// statistics, disable, enable, and an update whose query cairn's index
// cannot honour, which is refused. Managing takes an operator.
func TestStandardProjectionsThroughTheProjectionsAPI(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		pc := ts.projections(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		appendEvents(t, c, "order-1", jsonEvent("OrderPlaced", `{}`))
		st, err := pc.GetStatus(ctx, links.ByCategory, kurrentdb.GenericProjectionOptions{})
		if err != nil || st.Status != "Running" || st.Mode != "Continuous" {
			t.Fatalf("status: %+v, %v", st, err)
		}
		if err := pc.Disable(ctx, links.ByCategory, kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		if st, err := pc.GetStatus(ctx, links.ByCategory, kurrentdb.GenericProjectionOptions{}); err != nil || st.Status != "Stopped" {
			t.Fatalf("status once disabled: %+v, %v", st, err)
		}
		appendEvents(t, c, "order-2", jsonEvent("OrderPlaced", `{}`))
		fwd := kurrentdb.ReadStreamOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Start{}}
		sameShape(t, "disabled", shape(readStream(t, c, "$ce-order", fwd)), []string{"0 0@order-1"})
		if err := pc.Enable(ctx, links.ByCategory, kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		sameShape(t, "enabled", shape(readStream(t, c, "$ce-order", fwd)), []string{"0 0@order-1", "1 0@order-2"})

		if err := pc.Update(ctx, links.ByCategory, "first\n-", kurrentdb.UpdateProjectionOptions{}); err != nil {
			t.Errorf("the default query: %v", err)
		}
		if err := pc.Update(ctx, links.ByCategory, "last\n_", kurrentdb.UpdateProjectionOptions{}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("another separator: %v, want InvalidArgument", err)
		}
		if err := pc.Delete(ctx, links.ByCategory, kurrentdb.DeleteProjectionOptions{}); err == nil {
			t.Error("a standard projection was deleted")
		}

		ts.createUser(t, "reader", "secret")
		userPC := kurrentdb.NewProjectionClientFromExistingClient(ts.clientAs(t, "reader", "secret"))
		if err := userPC.Disable(ctx, links.ByCategory, kurrentdb.GenericProjectionOptions{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("a user without ops disabled a projection: %v, want PermissionDenied", err)
		}
		if _, err := userPC.GetStatus(ctx, links.ByCategory, kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Errorf("a user reads the statistics: %v", err)
		}
	})
}
