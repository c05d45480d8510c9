// Package tracing traces a cairn server with OpenTelemetry: a span for
// each gRPC call, for each append and read of the Store made while serving
// a traced request, and for each delivery to a subscriber of an event that
// carries its writer's trace context.
//
// A [Tracer] wraps an OpenTelemetry TracerProvider. Give it to the server
// ([Tracer.ServerHandler], which server.Options.Tracing installs) and to the
// Store ([Tracer.Hooks] in cairn.Options.Hooks). The package links no
// exporter: cairn serve gives it a provider that exports over OTLP/gRPC
// when a flag or the standard OTEL_EXPORTER_OTLP_* variables name a
// collector ([Configured]).
//
// # Spans
//
//   - The gRPC call: a server span named after the method
//     ("event_store.client.streams.Streams/Append"), child of the caller's
//     span when the call carries W3C trace context (a traceparent header).
//   - The Store's work: "cairn.append", "cairn.append_batch",
//     "cairn.commit", "cairn.read_stream", "cairn.read_all", children of
//     the span of the request that asked for them, with the stream, the
//     number of events and the last position as attributes. Reads and
//     appends made outside a traced request (projections, persistent
//     subscriptions filling their buffers) start no trace of their own,
//     unless the events appended carry trace context.
//   - A delivery: "cairn.deliver", a producer span, child of the
//     subscription call's span and linked to the span that appended the
//     event, made only for events that carry trace context.
//
// # Trace context in events
//
// The official KurrentDB clients that trace (.NET, Java, and Node.js
// with its instrumentation package) write the trace context of the span
// that appends an event into the event's metadata, a JSON object, under
// the keys "$traceId" (the W3C trace-id, 32 hex digits) and "$spanId" (the
// W3C parent-id, 16 hex digits), and make their consumers' spans children
// of it. cairn keeps the metadata as written; the tracer reads it
// ([FromMetadata]) to link a Store append to its writer's span and a
// delivery to the span that appended the event.
//
// # Cost
//
// Without a Tracer nothing is instrumented: the server installs no gRPC
// stats handler and the Store's Begin hook is nil, one nil check per
// operation. With one, each traced call costs its spans; a sampler (the
// OTEL_TRACES_SAMPLER variables) bounds what is recorded and exported.
package tracing
