package tracing_test

import (
	"testing"

	"github.com/cairndb/cairn/server/tracing"
)

func TestFromMetadata(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tc := range []struct {
		name     string
		metadata string
		ok       bool
	}{
		{"as the clients write it", `{"$traceId":"` + tid + `","$spanId":"` + sid + `"}`, true},
		{"among other keys", `{"$correlationId":"x","$spanId":"` + sid + `","user":{"a":1},"$traceId":"` + tid + `"}`, true},
		{"no metadata", ``, false},
		{"no trace context", `{"$correlationId":"x"}`, false},
		{"a trace id without a span id", `{"$traceId":"` + tid + `"}`, false},
		{"an all-zero trace id", `{"$traceId":"00000000000000000000000000000000","$spanId":"` + sid + `"}`, false},
		{"a short span id", `{"$traceId":"` + tid + `","$spanId":"00f067aa"}`, false},
		{"not hex", `{"$traceId":"4bf92f3577b34da6a3ce929d0e0e473z","$spanId":"` + sid + `"}`, false},
		{"numbers", `{"$traceId":1,"$spanId":2}`, false},
		{"not JSON", `$traceId=` + tid, false},
		{"a JSON array", `["$traceId"]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, ok := tracing.FromMetadata([]byte(tc.metadata))
			if ok != tc.ok {
				t.Fatalf("FromMetadata(%s) = %v, %v; want ok %v", tc.metadata, sc, ok, tc.ok)
			}
			if !ok {
				return
			}
			if sc.TraceID().String() != tid || sc.SpanID().String() != sid || !sc.IsRemote() || !sc.IsSampled() {
				t.Errorf("FromMetadata = %v %v remote %v sampled %v", sc.TraceID(), sc.SpanID(), sc.IsRemote(), sc.IsSampled())
			}
		})
	}
}

func TestCheckEndpoint(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:4317", "https://collector.example:4317", "http://[::1]:4317"} {
		if err := tracing.CheckEndpoint(ok); err != nil {
			t.Errorf("CheckEndpoint(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:4317", "collector:4317", "grpc://collector:4317", "http://", "localhost"} {
		if err := tracing.CheckEndpoint(bad); err == nil {
			t.Errorf("CheckEndpoint(%q) accepted it", bad)
		}
	}
}

func TestConfigured(t *testing.T) {
	t.Setenv(tracing.EnvEndpoint, "")
	t.Setenv(tracing.EnvTracesEndpoint, "")
	t.Setenv(tracing.EnvSDKDisabled, "")
	if tracing.Configured("") {
		t.Error("configured with no endpoint anywhere")
	}
	if !tracing.Configured("http://127.0.0.1:4317") {
		t.Error("not configured by the flag")
	}
	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:4317")
	if !tracing.Configured("") {
		t.Error("not configured by " + tracing.EnvEndpoint)
	}
	t.Setenv(tracing.EnvSDKDisabled, "true")
	if tracing.Configured("http://127.0.0.1:4317") {
		t.Error("configured although " + tracing.EnvSDKDisabled + "=true")
	}
}
