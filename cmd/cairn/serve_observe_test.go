package main

import (
	"context"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collectorStub is an OTLP/gRPC trace collector that keeps what it gets.
type collectorStub struct {
	collector.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []string
	services []string
}

func (c *collectorStub) Export(_ context.Context, req *collector.ExportTraceServiceRequest) (*collector.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.services = append(c.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, s.Name)
			}
		}
	}
	return &collector.ExportTraceServiceResponse{}, nil
}

func (c *collectorStub) got() (spans, services []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans), slices.Clone(c.services)
}

// startCollector serves a collectorStub on a loopback port and returns its
// URL.
func startCollector(t *testing.T) (*collectorStub, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collectorStub{}
	srv := grpc.NewServer()
	collector.RegisterTraceServiceServer(srv, c)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return c, "http://" + lis.Addr().String()
}

// cairn serve --otlp-endpoint exports the spans of the calls it serves to
// the collector, the last ones when it stops.
func TestServeExportsSpansOverOTLP(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	coll, endpoint := startCollector(t)
	certs := devCerts(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCmd()
	logs := &syncBuffer{}
	cmd.SetErr(logs)
	cmd.SetOut(logs)
	cmd.SetArgs([]string{"serve", "--store", "memory:", "--listen", "127.0.0.1:0", "--http-listen", "",
		"--tls-cert", certs.NodeCert, "--tls-key", certs.NodeKey, "--otlp-endpoint", endpoint})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	addr := regexp.MustCompile(`grpc=(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for !addr.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	appendThroughClient(t, addr.FindStringSubmatch(logs.String())[1], certs, 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	spans, services := coll.got()
	for _, want := range []string{"event_store.client.streams.Streams/Append", "cairn.append"} {
		if !slices.Contains(spans, want) {
			t.Errorf("the collector got no %s span: %v\n%s", want, spans, logs)
		}
	}
	if len(services) == 0 || services[0] != "cairn" {
		t.Errorf("the spans' service.name is %v, want cairn", services)
	}
	if !strings.Contains(logs.String(), "exporting spans over OTLP/gRPC") {
		t.Errorf("serve did not say it traces:\n%s", logs)
	}
}

func TestServeRefusesABadOTLPEndpoint(t *testing.T) {
	_, _, err := cairnCmd(t, "serve", "--store", "memory:", "--otlp-endpoint", "collector:4317")
	if err == nil || !strings.Contains(err.Error(), "--otlp-endpoint") || !strings.Contains(err.Error(), "http://127.0.0.1:4317") {
		t.Fatalf("serve --otlp-endpoint collector:4317: %v, want an error naming the flag and the form it takes", err)
	}
}

func TestServeRefusesPprofBeyondLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"--pprof", "--http-listen", ""},
		{"--pprof", "--http-listen", "0.0.0.0:0", "--http-public"},
	} {
		_, _, err := cairnCmd(t, append([]string{"serve", "--store", "memory:"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "--pprof") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("serve %s: %v, want a refusal naming --pprof and loopback", strings.Join(args, " "), err)
		}
	}
}
