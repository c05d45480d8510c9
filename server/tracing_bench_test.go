package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/tracing"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkAppendTracing appends one 100-byte JSON event per call, one call
// at a time, through the v1 Append RPC over plaintext as admin, and reports
// the latency of an append: "off" is a server without tracing (no stats
// handler, no Store hook), the default of cairn serve; "unsampled" traces
// with a sampler that records nothing; "on" records every span (the call's
// and the Store append's) into a batch exporter that drops them; "linked"
// is "on" with events whose metadata carries a writer's trace context, as
// the .NET and Java clients write it, which the append span links to.
// Compare the variants of one run: the machine's noise moves them together;
// the allocations (client's and server's) are the figure noise moves least.
//
//	go test -run '^$' -bench AppendTracing -benchtime 2000x ./server
func BenchmarkAppendTracing(b *testing.B) {
	plain := []byte(`{"$correlationId":"3b4bc15a-2b70-4d4c-8cf0-7d6d2d4b8a1e"}`)
	traced := []byte(`{"$correlationId":"3b4bc15a-2b70-4d4c-8cf0-7d6d2d4b8a1e","$traceId":"4bf92f3577b34da6a3ce929d0e0e4736","$spanId":"00f067aa0ba902b7"}`)
	data := []byte(fmt.Sprintf(`{"payload":%q}`, make([]byte, 84)))
	for _, tc := range []struct {
		name     string
		sampler  sdktrace.Sampler // nil: no tracing
		metadata []byte
	}{
		{"off", nil, plain},
		{"unsampled", sdktrace.NeverSample(), plain},
		{"on", sdktrace.AlwaysSample(), plain},
		{"linked", sdktrace.AlwaysSample(), traced},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opts := server.Options{}
			if tc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer tp.Shutdown(context.Background())
				opts.Tracing = tracing.New(tp)
			}
			ts := startPlaintext(b, opts)
			client := api.NewStreamsClient(ts.conn(b))
			appendOne := func(stream string) error {
				as, err := client.Append(context.Background())
				if err != nil {
					return err
				}
				if err := as.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{
					StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
					ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}},
				}}}); err != nil {
					return err
				}
				if err := as.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{
					Id:             &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
					Metadata:       map[string]string{"type": "Bench", "content-type": "application/json"},
					CustomMetadata: tc.metadata,
					Data:           data,
				}}}); err != nil {
					return err
				}
				resp, err := as.CloseAndRecv()
				if err != nil {
					return err
				}
				if resp.GetSuccess() == nil {
					return fmt.Errorf("append: %v", resp)
				}
				return nil
			}
			if err := appendOne("warm"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := appendOne("bench"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/append")
		})
	}
}
