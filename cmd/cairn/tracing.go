package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/server/tracing"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// startTracing returns the Tracer of cairn serve, which exports spans over
// OTLP/gRPC, when --otlp-endpoint or the OTEL_EXPORTER_OTLP_* variables
// name a collector; otherwise nil, and nothing is traced. stop exports the
// spans still batched, within a few seconds.
//
// OTLP over gRPC rather than HTTP: the binary links gRPC already, and 4317
// is the port collectors and KurrentDB's own exporter document first.
func startTracing(ctx context.Context, log *slog.Logger, endpoint string) (tr *tracing.Tracer, stop func(), err error) {
	if !tracing.Configured(endpoint) {
		return nil, func() {}, nil
	}
	tp, err := newOTLP(ctx, endpoint)
	if err != nil {
		return nil, nil, err
	}
	// The SDK reports failed exports through its process-wide handler,
	// which would print to stderr past the server's log.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", "err", err)
	}))
	log.Info("tracing: exporting spans over OTLP/gRPC", "endpoint", endpointOf(endpoint))
	return tracing.New(tp), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("tracing: exporting the last spans", "err", err)
		}
	}, nil
}

// newOTLP returns a TracerProvider that batches spans and exports them to
// endpoint (else the collector the environment names) over OTLP/gRPC. The
// sampler is the SDK's default, parent-based and always on, unless
// OTEL_TRACES_SAMPLER says otherwise. It connects lazily: a collector that
// is down costs dropped spans, never a failed request.
func newOTLP(ctx context.Context, endpoint string) (*sdktrace.TracerProvider, error) {
	var opts []otlptracegrpc.Option
	if endpoint != "" {
		if err := tracing.CheckEndpoint(endpoint); err != nil {
			return nil, err
		}
		opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
	} else {
		for _, env := range []string{tracing.EnvTracesEndpoint, tracing.EnvEndpoint} {
			if v := os.Getenv(env); v != "" {
				if err := tracing.CheckEndpoint(v); err != nil {
					return nil, fmt.Errorf("%s: %w", env, err)
				}
				break
			}
		}
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	// Later options win: the environment (OTEL_SERVICE_NAME,
	// OTEL_RESOURCE_ATTRIBUTES) over cairn's defaults. No process
	// detector: the command line may hold passwords.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(attribute.String("service.name", "cairn"), attribute.String("service.version", buildinfo.Version())),
		resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTLP resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// endpointOf names the collector for the log.
func endpointOf(flag string) string {
	if flag != "" {
		return flag
	}
	return "from " + tracing.EnvTracesEndpoint + " or " + tracing.EnvEndpoint
}
