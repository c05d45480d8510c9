package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// recAttr returns the value of a record's attribute, "" without it.
func recAttr(r slog.Record, key string) string {
	v := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// warnings returns the warnings logged through h about protocol
// mismatches of kind.
func (h *recordingHandler) mismatches(kind string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Level == slog.LevelWarn && recAttr(r, "kind") == kind {
			out = append(out, r)
		}
	}
	return out
}

// mismatchCount reads cairn_protocol_mismatches_total for kind.
func mismatchCount(t *testing.T, ts *testServer, kind string) float64 {
	t.Helper()
	web := httptest.NewServer(ts.HTTPHandler())
	defer web.Close()
	return scrape(t, web.URL)[`cairn_protocol_mismatches_total{kind="`+kind+`"}`]
}

// A TLS client on the plaintext port is refused, and the log says once,
// whatever the client's retries, to connect without TLS or to serve TLS.
func TestTLSOnAPlaintextPortLoggedOncePerPeer(t *testing.T) {
	h := &recordingHandler{}
	ts := startPlaintext(t, server.Options{Logger: slog.New(h)})
	for range 3 {
		conn, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS handshake succeeded on the plaintext port")
		}
	}
	got := h.mismatches("tls_on_plaintext")
	if len(got) != 1 {
		t.Fatalf("%d warnings of a TLS client on the plaintext port, want 1: %v", len(got), got)
	}
	if msg := got[0].Message; !strings.Contains(msg, "tls=false") || !strings.Contains(msg, "--tls-cert") || recAttr(got[0], "peer") != "127.0.0.1" {
		t.Errorf("the warning does not say what to do, or names no peer: %q %v", msg, got[0])
	}
	if n := mismatchCount(t, ts, "tls_on_plaintext"); n != 3 {
		t.Errorf("cairn_protocol_mismatches_total counts %v, want 3", n)
	}
}

// A plaintext client on the TLS port is refused: an HTTP/1 client reads
// why, and the log says once to connect with TLS.
func TestPlaintextOnATLSPortLoggedOncePerPeer(t *testing.T) {
	h := &recordingHandler{}
	ts := start(t, server.Options{Logger: slog.New(h)})
	for range 2 {
		resp, err := http.Get("http://" + ts.addr + "/ping")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "speaks TLS") {
			t.Errorf("plain HTTP to the TLS port: %s %q, want 400 saying the port speaks TLS", resp.Status, body)
		}
	}
	// A gRPC client without TLS.
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(context.Background(), &shared.Empty{}); err == nil {
		t.Fatal("a plaintext gRPC call succeeded on the TLS port")
	}
	got := h.mismatches("plaintext_on_tls")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tls=true") {
		t.Fatalf("warnings of plaintext on the TLS port: %v, want one saying to connect with TLS", got)
	}
	if n := mismatchCount(t, ts, "plaintext_on_tls"); n < 3 {
		t.Errorf("cairn_protocol_mismatches_total counts %v, want at least 3", n)
	}
}

// A gRPC request over HTTP/1.1, as a proxy that cannot forward HTTP/2
// sends it, is refused with a status that says why, and logged once.
func TestGRPCOverHTTP1LoggedOncePerPeer(t *testing.T) {
	h := &recordingHandler{}
	ts := startPlaintext(t, server.Options{Logger: slog.New(h)})
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, "http://"+ts.addr+"/event_store.client.streams.Streams/Read", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusHTTPVersionNotSupported {
			t.Errorf("gRPC over HTTP/1.1: %s, want 505", resp.Status)
		}
	}
	got := h.mismatches("grpc_over_http1")
	if len(got) != 1 || !strings.Contains(got[0].Message, "HTTP/2") {
		t.Fatalf("warnings of gRPC over HTTP/1.1: %v, want one saying gRPC needs HTTP/2", got)
	}
	// KurrentDB's HTTP API still answers on the port.
	resp, err := http.Get("http://" + ts.addr + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/ping: %s", resp.Status)
	}
}

// At debug level the server logs each connection as it is routed and as it
// closes, and each request, gRPC or HTTP.
func TestDebugLogsConnectionsAndRequests(t *testing.T) {
	h := &recordingHandler{}
	ts := start(t, server.Options{Logger: slog.New(h)})
	conn := ts.conn(t)
	if _, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(context.Background(), &shared.Empty{}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	reqs := h.matching("grpc request")
	if len(reqs) == 0 || !strings.Contains(recAttr(reqs[0], "method"), "GetSupportedMethods") || recAttr(reqs[0], "code") != "OK" || recAttr(reqs[0], "peer") == "" {
		t.Errorf("no debug line of the gRPC request with its method, code and peer: %v", reqs)
	}
	conns := h.matching("connection")
	if !containsRecord(conns, func(r slog.Record) bool {
		return r.Message == "connection" && recAttr(r, "protocol") == "grpc" && recAttr(r, "tls") == "true"
	}) {
		t.Errorf("no debug line of the gRPC connection: %v", conns)
	}
	until(t, "the closed connection logged", func() (bool, string) {
		return containsRecord(h.matching("connection closed"), func(r slog.Record) bool { return recAttr(r, "protocol") == "grpc" }), ""
	})

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get("https://" + ts.addr + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	httpReqs := h.matching("http request")
	if len(httpReqs) == 0 || recAttr(httpReqs[0], "path") != "/ping" || recAttr(httpReqs[0], "status") != "200" {
		t.Errorf("no debug line of the HTTP request with its path and status: %v", httpReqs)
	}
	until(t, "the closed HTTP connection logged", func() (bool, string) {
		return containsRecord(h.matching("connection closed"), func(r slog.Record) bool { return recAttr(r, "protocol") == "http/1" }), ""
	})
}

func containsRecord(rs []slog.Record, f func(slog.Record) bool) bool {
	for _, r := range rs {
		if f(r) {
			return true
		}
	}
	return false
}
