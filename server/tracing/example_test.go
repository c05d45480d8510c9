package tracing_test

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A Store traced by a Tracer: an append whose event carries its writer's
// trace context, as the KurrentDB clients write it, is a span linked to the
// writer's span. A cairn server gets the same Tracer in
// server.Options.Tracing; cairn serve's exports over OTLP.
func Example() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	tr := tracing.New(tp)

	store := cairn.NewStore(memstore.New(), cairn.Options{Hooks: tr.Hooks(cairn.Hooks{})})
	defer store.Close()
	md := []byte(`{"$traceId":"4bf92f3577b34da6a3ce929d0e0e4736","$spanId":"00f067aa0ba902b7"}`)
	if _, err := store.Append(context.Background(), "orders-1", cairn.NoStream,
		cairn.EventData{Type: "OrderPlaced", Data: []byte(`{}`), Metadata: md}); err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range exp.GetSpans() {
		fmt.Println(s.Name, "linked to", s.Links[0].SpanContext.TraceID(), s.Links[0].SpanContext.SpanID())
	}
	// Output:
	// cairn.append linked to 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7
}
