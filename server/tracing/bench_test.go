package tracing_test

import (
	"context"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkStoreAppend appends one 100-byte event per call straight to a
// Store on the in-memory engine, the append path with no network to hide
// the Store's own cost: "off" has no Begin hook; "untraced" has the
// Tracer's hook but the caller has no span, so it starts none (the Store's
// background work in a traced server); "on" appends within a sampled span,
// so each append is a span too, batched to an exporter that drops it.
//
//	go test -run '^$' -bench StoreAppend ./server/tracing
func BenchmarkStoreAppend(b *testing.B) {
	data := make([]byte, 100)
	for _, tc := range []struct {
		name   string
		traced bool
		parent bool
	}{{"off", false, false}, {"untraced", true, false}, {"on", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			opts := cairn.Options{}
			if tc.traced {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer tp.Shutdown(ctx)
				opts.Hooks = tracing.New(tp).Hooks(opts.Hooks)
				if tc.parent {
					var span trace.Span
					ctx, span = tp.Tracer("bench").Start(ctx, "request")
					defer span.End()
				}
			}
			store := cairn.NewStore(memstore.New(), opts)
			defer store.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := store.Append(ctx, "bench", cairn.Any, cairn.EventData{Type: "Bench", Data: data}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
