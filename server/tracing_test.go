package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/tracing"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// startTraced runs a server whose spans an in-memory exporter records as
// each ends.
func startTraced(t *testing.T) (*testServer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return start(t, server.Options{Tracing: tracing.New(tp)}), exp
}

// writerSpan is the span context a tracing KurrentDB client (.NET, Java)
// appends under, and the metadata it writes into each event.
func writerSpan(t *testing.T) (trace.SpanContext, []byte) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	md := fmt.Sprintf(`{"$correlationId":"c-1","$traceId":%q,"$spanId":%q}`, tid, sid)
	return sc, []byte(md)
}

// waitSpans waits until the exporter holds a span that match accepts, and
// returns the spans.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, what string, match func(tracetest.SpanStub) bool) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := exp.GetSpans()
		if slices.ContainsFunc(spans, match) {
			return spans
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.Name)
			}
			t.Fatalf("no %s among the spans %v", what, names)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func find(spans tracetest.SpanStubs, match func(tracetest.SpanStub) bool) tracetest.SpanStub {
	i := slices.IndexFunc(spans, match)
	if i < 0 {
		return tracetest.SpanStub{}
	}
	return spans[i]
}

func named(name string) func(tracetest.SpanStub) bool {
	return func(s tracetest.SpanStub) bool { return s.Name == name }
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

func linksTo(s tracetest.SpanStub, sc trace.SpanContext) bool {
	return slices.ContainsFunc(s.Links, func(l sdktrace.Link) bool {
		return l.SpanContext.TraceID() == sc.TraceID() && l.SpanContext.SpanID() == sc.SpanID()
	})
}

// An append through the official client is a gRPC server span with the
// Store's append as its child, linked to the span of the writer named in
// the events' metadata; its delivery to a catch-up subscriber and to a
// persistent subscription's consumer is a span linked to that writer's span,
// child of the subscription call's.
func TestTracingAppendToDelivery(t *testing.T) {
	ts, exp := startTraced(t)
	c := ts.client(t)
	ctx := context.Background()
	writer, md := writerSpan(t)

	if err := c.CreatePersistentSubscription(ctx, "orders-1", "billing", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToStream(ctx, "orders-1", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	id := uuid.New()
	if _, err := c.AppendToStream(ctx, "orders-1", kurrentdb.AppendToStreamOptions{},
		kurrentdb.EventData{EventID: id, EventType: "OrderPlaced", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`), Metadata: md},
		kurrentdb.EventData{EventType: "Untraced", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 2; {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			got++
		}
	}
	ps, err := c.SubscribeToPersistentSubscription(ctx, "orders-1", "billing", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	delivered := recvPersistent(t, ps)
	if string(delivered.Event.Event.UserMetadata) != string(md) {
		t.Errorf("the consumer got metadata %s, want the writer's %s, as written", delivered.Event.Event.UserMetadata, md)
	}

	waitSpans(t, exp, "persistent delivery", func(s tracetest.SpanStub) bool {
		return s.Name == "cairn.deliver" && attr(s, "cairn.subscription") == "orders-1::billing"
	})
	waitSpans(t, exp, "catch-up delivery", func(s tracetest.SpanStub) bool {
		return s.Name == "cairn.deliver" && !strings.Contains(attr(s, "cairn.subscription"), "::")
	})
	// The Append call's span ends once its handler has returned, after
	// the client has its answer: it may end after the deliveries.
	spans := waitSpans(t, exp, "span of the Append call", named("event_store.client.streams.Streams/Append"))
	rpc := find(spans, named("event_store.client.streams.Streams/Append"))
	if rpc.SpanKind != trace.SpanKindServer {
		t.Fatalf("no server span of the Append call: %+v", rpc)
	}
	app := find(spans, named("cairn.append"))
	if app.Parent.SpanID() != rpc.SpanContext.SpanID() {
		t.Errorf("the Store's append span is the child of %v, want the Append call's %v", app.Parent.SpanID(), rpc.SpanContext.SpanID())
	}
	if !linksTo(app, writer) {
		t.Errorf("the Store's append span links to %+v, want the writer's span %v", app.Links, writer.SpanID())
	}
	if attr(app, "cairn.stream") != "orders-1" || attr(app, "cairn.events") != "2" || attr(app, "cairn.position") == "" {
		t.Errorf("the Store's append span has attributes %v", app.Attributes)
	}

	var deliveries tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == "cairn.deliver" {
			deliveries = append(deliveries, s)
		}
	}
	if len(deliveries) != 2 {
		t.Fatalf("%d delivery spans, want 2 (one per subscriber, none for the untraced event): %+v", len(deliveries), deliveries)
	}
	reads := map[trace.SpanID]string{}
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			reads[s.SpanContext.SpanID()] = s.Name
		}
	}
	for _, d := range deliveries {
		if !linksTo(d, writer) {
			t.Errorf("delivery %s links to %+v, want the writer's span", attr(d, "cairn.subscription"), d.Links)
		}
		if d.SpanKind != trace.SpanKindProducer || attr(d, "cairn.event.id") != id.String() || attr(d, "cairn.event.type") != "OrderPlaced" || attr(d, "cairn.stream") != "orders-1" {
			t.Errorf("delivery span %s: kind %v, attributes %v", attr(d, "cairn.subscription"), d.SpanKind, d.Attributes)
		}
		if d.Parent.IsValid() {
			if _, ok := reads[d.Parent.SpanID()]; !ok {
				// The subscription calls are still open: their spans
				// have not ended. The parent must be no other span.
				for _, s := range spans {
					if s.SpanContext.SpanID() == d.Parent.SpanID() {
						t.Errorf("delivery %s is the child of %s, want its subscription call's span", attr(d, "cairn.subscription"), s.Name)
					}
				}
			}
		} else {
			t.Errorf("delivery %s has no parent, want its subscription call's span", attr(d, "cairn.subscription"))
		}
	}
	sub.Close()
	spans = waitSpans(t, exp, "span of the catch-up subscription call", named("event_store.client.streams.Streams/Read"))
	call := find(spans, named("event_store.client.streams.Streams/Read"))
	catchUp := find(deliveries, func(s tracetest.SpanStub) bool { return !strings.Contains(attr(s, "cairn.subscription"), "::") })
	if catchUp.Parent.SpanID() != call.SpanContext.SpanID() {
		t.Errorf("the catch-up delivery is the child of %v, want the subscription call's span %v", catchUp.Parent.SpanID(), call.SpanContext.SpanID())
	}
}

// A call that carries W3C trace context (a traceparent header) continues
// its caller's trace, and the Store's reads are children of its span.
func TestTracingContinuesTheCallersTrace(t *testing.T) {
	ts, exp := startTraced(t)
	ctx := context.Background()
	if _, err := ts.store.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	caller, _ := writerSpan(t)
	octx := metadata.AppendToOutgoingContext(ctx, "traceparent", fmt.Sprintf("00-%s-%s-01", caller.TraceID(), caller.SpanID()))
	read, err := api.NewStreamsClient(ts.conn(t)).Read(octx, &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption:  &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("s")}, RevisionOption: &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}}}},
		ReadDirection: api.ReadReq_Options_Forwards,
		CountOption:   &api.ReadReq_Options_Count{Count: 10},
		FilterOption:  &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:    &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := read.Recv(); err != nil {
			break
		}
	}
	spans := waitSpans(t, exp, "Read call", named("event_store.client.streams.Streams/Read"))
	call := find(spans, named("event_store.client.streams.Streams/Read"))
	if call.SpanContext.TraceID() != caller.TraceID() || call.Parent.SpanID() != caller.SpanID() {
		t.Errorf("the Read call's span is in trace %v under %v, want the caller's %v under %v", call.SpanContext.TraceID(), call.Parent.SpanID(), caller.TraceID(), caller.SpanID())
	}
	rd := find(spans, func(s tracetest.SpanStub) bool {
		return s.Name == "cairn.read_stream" && attr(s, "cairn.stream") == "s" && s.Parent.SpanID() == call.SpanContext.SpanID()
	})
	if rd.Name == "" || attr(rd, "cairn.events") != "1" {
		t.Errorf("no read of s under the Read call's span, with its attributes: %+v", rd)
	}
	// The Store's own append above, outside any request and without trace
	// context in its events, started no trace.
	if s := find(spans, named("cairn.append")); s.Name != "" {
		t.Errorf("an append outside a traced request made a span: %+v", s)
	}
}
