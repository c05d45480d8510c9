package tracing

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Exporting spans
//
// The package makes spans; an OpenTelemetry TracerProvider exports them.
// It links no exporter, so that a program that embeds the server pays for
// none it does not use: cairn serve builds an OTLP/gRPC one. These helpers
// tell whether the environment asks for export and check an endpoint.

// The environment variables that name a collector, as the OpenTelemetry
// specification defines them; an OTLP exporter reads the others
// (OTEL_EXPORTER_OTLP_HEADERS, _CERTIFICATE, _TIMEOUT, _COMPRESSION, their
// _TRACES_ forms) itself.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

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
