package tracing

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/cairndb/cairn"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// ScopeName is the instrumentation scope of cairn's own spans.
const ScopeName = "github.com/cairndb/cairn"

// The metadata keys under which the KurrentDB clients write the trace
// context of the span that appends an event.
const (
	TraceIDKey = "$traceId"
	SpanIDKey  = "$spanId"
)

// The attributes of cairn's spans.
const (
	AttrStream       = attribute.Key("cairn.stream")
	AttrEvents       = attribute.Key("cairn.events")
	AttrPosition     = attribute.Key("cairn.position")
	AttrSubscription = attribute.Key("cairn.subscription")
	AttrEventID      = attribute.Key("cairn.event.id")
	AttrEventType    = attribute.Key("cairn.event.type")
)

// Tracer makes the spans of a cairn server. It is safe for concurrent use.
type Tracer struct {
	tp     trace.TracerProvider
	tracer trace.Tracer
}

// New returns a Tracer whose spans go to tp.
func New(tp trace.TracerProvider) *Tracer {
	return &Tracer{tp: tp, tracer: tp.Tracer(ScopeName)}
}

// ServerHandler returns the gRPC stats handler that makes a server span of
// each call, continuing the trace of a call that carries W3C trace context.
// It records no metrics (the server has its own) and no per-message events
// (a subscription may send millions).
func (t *Tracer) ServerHandler() stats.Handler {
	return otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.tp),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
	)
}

// Hooks returns h with its Begin hook set to make the Store's spans; the
// other hooks are h's. Put the result in cairn.Options.Hooks.
func (t *Tracer) Hooks(h cairn.Hooks) cairn.Hooks {
	h.Begin = t.begin
	return h
}

var spanNames = map[string]string{
	cairn.OpAppend:      "cairn.append",
	cairn.OpAppendBatch: "cairn.append_batch",
	cairn.OpCommit:      "cairn.commit",
	cairn.OpReadStream:  "cairn.read_stream",
	cairn.OpReadAll:     "cairn.read_all",
}

// begin starts the span of a Store operation: a child of the request's
// span, linked to the writers' spans named in the metadata of the events
// appended. Without either it starts none.
func (t *Tracer) begin(ctx context.Context, op cairn.Operation) (context.Context, func(cairn.Outcome)) {
	var links []trace.Link
	add := func(events []cairn.EventData) {
		for i := range events {
			sc, ok := FromMetadata(events[i].Metadata)
			if ok && !hasLink(links, sc) {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	add(op.Events)
	for _, r := range op.Batch {
		add(r.Events)
	}
	if len(links) == 0 && !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, noEnd
	}
	name := spanNames[op.Name]
	if name == "" {
		name = "cairn." + op.Name
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithLinks(links...)}
	if op.Stream != "" {
		opts = append(opts, trace.WithAttributes(AttrStream.String(op.Stream)))
	}
	ctx, span := t.tracer.Start(ctx, name, opts...)
	return ctx, func(o cairn.Outcome) {
		if span.IsRecording() {
			span.SetAttributes(AttrEvents.Int(o.Events))
			if o.Events > 0 {
				span.SetAttributes(AttrPosition.Int64(int64(o.Position)))
			}
			if o.Err != nil {
				span.RecordError(o.Err)
				span.SetStatus(codes.Error, o.Err.Error())
			}
		}
		span.End()
	}
}

func noEnd(cairn.Outcome) {}

func hasLink(links []trace.Link, sc trace.SpanContext) bool {
	for _, l := range links {
		if l.SpanContext.Equal(sc) {
			return true
		}
	}
	return false
}

// Deliver starts the span of the delivery of e to a subscriber of
// subscription, when e's metadata carries its writer's trace context: a
// producer span, child of ctx's span (the subscription call's) and linked
// to the writer's span. It returns the function that ends the span with
// the error of the send, or nil when e carries no trace context.
func (t *Tracer) Deliver(ctx context.Context, subscription string, e *cairn.Event) func(error) {
	sc, ok := FromMetadata(e.Metadata)
	if !ok {
		return nil
	}
	_, span := t.tracer.Start(ctx, "cairn.deliver",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(trace.Link{SpanContext: sc}),
		trace.WithAttributes(
			AttrSubscription.String(subscription),
			AttrStream.String(e.StreamID),
			AttrEventID.String(e.ID.String()),
			AttrEventType.String(e.Type),
			AttrPosition.Int64(int64(e.Position)),
		))
	return func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// metadataKey finds the metadata that may carry trace context without
// decoding the rest.
var metadataKey = []byte(`"` + TraceIDKey + `"`)

// FromMetadata returns the trace context that an event's metadata carries
// under the keys the KurrentDB clients write ("$traceId" and "$spanId"),
// as a remote, sampled span context; false when the metadata is not a JSON
// object with both keys holding valid W3C ids.
func FromMetadata(metadata []byte) (trace.SpanContext, bool) {
	if !bytes.Contains(metadata, metadataKey) {
		return trace.SpanContext{}, false
	}
	var ids struct {
		TraceID string `json:"$traceId"`
		SpanID  string `json:"$spanId"`
	}
	if json.Unmarshal(metadata, &ids) != nil {
		return trace.SpanContext{}, false
	}
	tid, err := trace.TraceIDFromHex(ids.TraceID)
	if err != nil {
		return trace.SpanContext{}, false
	}
	sid, err := trace.SpanIDFromHex(ids.SpanID)
	if err != nil {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	}), true
}
