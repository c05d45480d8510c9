package tracing

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The environment variables that name a collector, as the OpenTelemetry
// specification defines them; the exporter reads the others
// (OTEL_EXPORTER_OTLP_HEADERS, _CERTIFICATE, _TIMEOUT, _COMPRESSION, their
// _TRACES_ forms) itself.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// OTLPConfig configures [NewOTLP].
type OTLPConfig struct {
	// Endpoint is the URL of the OTLP/gRPC collector:
	// "http://host:4317" for plaintext, "https://host:4317" for TLS. Empty
	// means the environment's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	// ServiceName is the service.name of the spans' resource, unless
	// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
	// Empty means "cairn".
	ServiceName string
	// Version is the service.version of the spans' resource.
	Version string
}

// Configured reports whether tracing is asked for: endpoint (a flag) is
// set, or the environment names a collector, and OTEL_SDK_DISABLED is not
// "true".
func Configured(endpoint string) bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvSDKDisabled)), "true") {
		return false
	}
	return endpoint != "" || os.Getenv(EnvTracesEndpoint) != "" || os.Getenv(EnvEndpoint) != ""
}

// CheckEndpoint returns an error that says what is wrong with an endpoint
// that is not an http or https URL with a host.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("OTLP endpoint %q: want the collector's URL, such as http://127.0.0.1:4317 (plaintext) or https://collector:4317 (TLS)", endpoint)
	}
	return nil
}

// NewOTLP returns a TracerProvider that batches spans and exports them over
// OTLP/gRPC. The sampler is the SDK's default, parent-based and always on,
// unless OTEL_TRACES_SAMPLER says otherwise. It connects lazily: a
// collector that is down costs dropped spans, never a failed request.
// Shut it down to export the spans still batched.
func NewOTLP(ctx context.Context, cfg OTLPConfig) (*sdktrace.TracerProvider, error) {
	var opts []otlptracegrpc.Option
	if cfg.Endpoint != "" {
		if err := CheckEndpoint(cfg.Endpoint); err != nil {
			return nil, err
		}
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	} else {
		for _, env := range []string{EnvTracesEndpoint, EnvEndpoint} {
			if v := os.Getenv(env); v != "" {
				if err := CheckEndpoint(v); err != nil {
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
	name := cfg.ServiceName
	if name == "" {
		name = "cairn"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	// Later options win: the environment over cairn's defaults.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTLP resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
