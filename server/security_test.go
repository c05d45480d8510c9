package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func startTLS(t *testing.T) (*testServer, server.CertFiles) {
	t.Helper()
	return startTLSWith(t, server.Options{})
}

// startTLSWith starts a server with opts, TLS and the admin password
// s3cret.
func startTLSWith(t *testing.T, opts server.Options) (*testServer, server.CertFiles) {
	t.Helper()
	files, err := server.GenerateCerts(t.TempDir(), server.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadTLS(files.NodeCert, files.NodeKey)
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS, opts.Users = cfg, map[string]string{"admin": "s3cret"}
	return start(t, opts), files
}

func TestTLSAndAuthentication(t *testing.T) {
	ts, files := startTLS(t)
	ctx := context.Background()
	port := ts.addr[strings.LastIndexByte(ts.addr, ':'):]
	base := "@localhost" + port + "?tls=true&tlscafile=" + files.CACert

	good := connect(t, "kurrentdb://admin:s3cret"+base)
	if _, err := good.AppendToStream(ctx, "secure", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
		t.Fatalf("append over TLS with the right password: %v", err)
	}
	evs, err := drain(good.ReadStream(ctx, "secure", kurrentdb.ReadStreamOptions{}, 10))
	if err != nil || len(evs) != 1 {
		t.Fatalf("read over TLS: %d events, %v", len(evs), err)
	}

	wrong := connect(t, "kurrentdb://admin:changeit"+base)
	_, err = wrong.AppendToStream(ctx, "secure", kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
	if errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("wrong password: %v, want ErrorCodeUnauthenticated", err)
	}
	_, err = drain(wrong.ReadStream(ctx, "secure", kurrentdb.ReadStreamOptions{}, 10))
	if errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("read with a wrong password: %v, want ErrorCodeUnauthenticated", err)
	}
	if strings.Contains(err.Error(), "changeit") {
		t.Errorf("the error repeats the password: %v", err)
	}

	unknown := connect(t, "kurrentdb://mallory:s3cret"+base)
	_, err = unknown.AppendToStream(ctx, "secure", kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
	if errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("unknown user: %v, want ErrorCodeUnauthenticated", err)
	}

	anonymous := connect(t, "kurrentdb://localhost"+port+"?tls=true&tlscafile="+files.CACert)
	_, err = anonymous.AppendToStream(ctx, "secure", kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
	if errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("no credentials: %v, want ErrorCodeUnauthenticated", err)
	}
	if v, _ := ts.store.StreamVersion(ctx, "secure"); v != 0 {
		t.Errorf("refused appends were written: version %d", v)
	}

	// A client that does not trust the CA, or speaks plaintext, gets nowhere.
	for name, conn := range map[string]string{
		"untrusted": "kurrentdb://admin:s3cret@localhost" + port + "?tls=true&maxDiscoverAttempts=1",
		"plaintext": "kurrentdb://admin:s3cret@localhost" + port + "?tls=false&maxDiscoverAttempts=1",
	} {
		cfg, err := kurrentdb.ParseConnectionString(conn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Logger = kurrentdb.NoopLogging()
		cfg.GossipTimeout = 1
		c, err := kurrentdb.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "secure", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err == nil {
			t.Errorf("%s client appended to a TLS server", name)
		}
		c.Close()
	}
}

func TestPlaintextChecksPresentedCredentials(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	// Without TLS the official client sends no credentials, and is served.
	c := ts.client(t)
	if _, err := c.AppendToStream(ctx, "s", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
		t.Fatalf("anonymous append over loopback plaintext: %v", err)
	}
	// Credentials that are presented anyway are checked.
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read := func(user, password string) error {
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
		rctx := metadata.AppendToOutgoingContext(ctx, "authorization", auth)
		rs, err := api.NewStreamsClient(conn).Read(rctx, &api.ReadReq{Options: &api.ReadReq_Options{
			StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("s")},
				RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
			}},
			CountOption: &api.ReadReq_Options_Count{Count: 1},
		}})
		if err != nil {
			return err
		}
		for {
			if _, err := rs.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	if err := read("admin", server.DefaultAdminPassword); err != nil {
		t.Errorf("right credentials: %v", err)
	}
	if err := read("admin", "guess"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("wrong password over plaintext: %v, want Unauthenticated", err)
	}
}

func TestGenerateCertsRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	if _, err := server.GenerateCerts(dir, server.CertOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.GenerateCerts(dir, server.CertOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second run: %v, want an error saying the files exist", err)
	}
	if _, err := server.GenerateCerts(dir, server.CertOptions{Overwrite: true, Hosts: []string{"db.example", "10.0.0.7"}}); err != nil {
		t.Errorf("overwrite: %v", err)
	}
}

func TestGossipAndDiscovery(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	c := ts.client(t)
	members, err := c.Gossip(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || !members[0].IsAlive || members[0].State.String() != "Leader" {
		t.Fatalf("gossip: %v, want one alive leader", members)
	}
	// The version the clients see is the one whose calls are served.
	v, err := c.GetServerVersion()
	if err != nil || fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) != buildinfo.Protocol {
		t.Errorf("server version %+v, %v, want %s", v, err, buildinfo.Protocol)
	}
	// Cluster discovery reads gossip and connects to the advertised node.
	d := connect(t, "kurrentdb+discover://"+ts.addr+"?tls=false")
	if _, err := d.AppendToStream(ctx, "discovered", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
		t.Fatalf("append through discovery: %v", err)
	}
}

func TestMultiStreamAppend(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		ctx := context.Background()
		c := ts.client(t)
		seq := func(evs ...kurrentdb.EventData) func(func(kurrentdb.EventData) bool) {
			return func(yield func(kurrentdb.EventData) bool) {
				for _, e := range evs {
					if !yield(e) {
						return
					}
				}
			}
		}
		reqs := func(rs ...kurrentdb.AppendStreamRequest) func(func(kurrentdb.AppendStreamRequest) bool) {
			return func(yield func(kurrentdb.AppendStreamRequest) bool) {
				for _, r := range rs {
					if !yield(r) {
						return
					}
				}
			}
		}
		meta := jsonEvent("Paid", `{}`)
		meta.Metadata = []byte(`{"tenant":"acme"}`)
		resp, err := c.MultiStreamAppend(ctx, reqs(
			kurrentdb.AppendStreamRequest{StreamName: "orders", Events: seq(events(2, "Placed")...), ExpectedStreamState: kurrentdb.NoStream{}},
			kurrentdb.AppendStreamRequest{StreamName: "payments", Events: seq(meta), ExpectedStreamState: kurrentdb.Any{}},
		))
		if err != nil {
			t.Fatalf("multi-stream append: %v", err)
		}
		if len(resp.Responses) != 2 || resp.Responses[0].StreamRevision != 1 || resp.Responses[1].StreamRevision != 0 || resp.Position != 2 {
			t.Errorf("response %+v", resp)
		}
		e, err := drain(c.ReadStream(ctx, "payments", kurrentdb.ReadStreamOptions{}, 1))
		if err != nil || len(e) != 1 || !strings.Contains(string(e[0].Event.UserMetadata), `"tenant":"acme"`) {
			t.Errorf("payments read back %v, %v", e, err)
		}

		_, err = c.MultiStreamAppend(ctx, reqs(
			kurrentdb.AppendStreamRequest{StreamName: "payments", Events: seq(jsonEvent("Refunded", `{}`)), ExpectedStreamState: kurrentdb.Any{}},
			kurrentdb.AppendStreamRequest{StreamName: "orders", Events: seq(jsonEvent("Cancelled", `{}`)), ExpectedStreamState: kurrentdb.Revision(0)},
		))
		var conflict *kurrentdb.StreamRevisionConflictError
		if !errors.As(err, &conflict) || conflict.Stream != "orders" || conflict.ActualRevision != (kurrentdb.StreamRevision{Value: 1}) {
			t.Fatalf("conflict: %v, want a StreamRevisionConflictError on orders at 1", err)
		}
		if v, _ := ts.store.StreamVersion(ctx, "payments"); v != 0 {
			t.Errorf("a failed multi-stream append wrote to payments: version %d", v)
		}
	})
}

func TestHealthAndMetrics(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	c := ts.client(t)
	if _, err := c.AppendToStream(ctx, "m", kurrentdb.AppendToStreamOptions{}, events(3, "E")...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppendToStream(ctx, "m", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, events(1, "E")...); err == nil {
		t.Fatal("conflicting append succeeded")
	}
	h := httptest.NewServer(ts.HTTPHandler())
	defer h.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/health: %d %q", code, body)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`cairn_appends_total{result="ok"} 1`,
		`cairn_appends_total{result="wrong_expected_version"} 1`,
		`cairn_appended_events_total 3`,
		`cairn_append_duration_seconds_count 1`,
		`cairn_grpc_requests_total{code="OK",method="event_store.client.streams.Streams/Append"} 2`,
		`cairn_subscriptions_active 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	ts.store.Close()
	if code, _ := get("/health"); code != http.StatusServiceUnavailable {
		t.Errorf("/health with a closed store: %d, want 503", code)
	}
}

func TestCheckExposure(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		tls      bool
		password string
		ok       bool
	}{
		{"127.0.0.1:2113", false, server.DefaultAdminPassword, true},
		{"localhost:2113", false, server.DefaultAdminPassword, true},
		{"[::1]:2113", true, server.DefaultAdminPassword, true},
		{"0.0.0.0:2113", true, "long-secret", true},
		{"0.0.0.0:2113", false, "long-secret", false},
		{":2113", true, server.DefaultAdminPassword, false},
		{"10.0.0.7:2113", true, server.DefaultAdminPassword, false},
	} {
		err := server.CheckExposure(tc.addr, tc.tls, tc.password)
		if (err == nil) != tc.ok {
			t.Errorf("CheckExposure(%q, tls=%v, default password=%v) = %v", tc.addr, tc.tls, tc.password == server.DefaultAdminPassword, err)
		}
		if err != nil && strings.Contains(err.Error(), tc.password) && tc.password != server.DefaultAdminPassword {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
}

func TestCheckHTTPExposure(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
		ok     bool
	}{
		{"", false, true},
		{"127.0.0.1:2114", false, true},
		{"localhost:2114", false, true},
		{"[::1]:2114", false, true},
		{"0.0.0.0:2114", false, false},
		{":2114", false, false},
		{"10.0.0.7:2114", false, false},
		{"0.0.0.0:2114", true, true},
		{":2114", true, true},
	} {
		err := server.CheckHTTPExposure(tc.addr, tc.public)
		if (err == nil) != tc.ok {
			t.Errorf("CheckHTTPExposure(%q, public=%v) = %v", tc.addr, tc.public, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--http-public") {
			t.Errorf("the refusal does not say how to override it: %v", err)
		}
	}
}
