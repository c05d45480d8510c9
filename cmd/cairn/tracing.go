package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/server/tracing"
	"go.opentelemetry.io/otel"
)

// startTracing returns the Tracer of cairn serve, which exports spans over
// OTLP/gRPC, when --otlp-endpoint or the OTEL_EXPORTER_OTLP_* variables
// name a collector; otherwise nil, and nothing is traced. stop exports the
// spans still batched, within a few seconds.
func startTracing(ctx context.Context, log *slog.Logger, endpoint string) (tr *tracing.Tracer, stop func(), err error) {
	if !tracing.Configured(endpoint) {
		return nil, func() {}, nil
	}
	tp, err := tracing.NewOTLP(ctx, tracing.OTLPConfig{Endpoint: endpoint, Version: buildinfo.Version()})
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

// endpointOf names the collector for the log.
func endpointOf(flag string) string {
	if flag != "" {
		return flag
	}
	return "from " + tracing.EnvTracesEndpoint + " or " + tracing.EnvEndpoint
}
