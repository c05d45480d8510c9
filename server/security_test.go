package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
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
	opts.TLS, opts.AdminPassword = cfg, "s3cret"
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

// Without TLS every request must authenticate too: the official Go client
// sends no credentials over plaintext and is refused; a client that sends
// them (cairn's own, the Node.js client) is served with the right password
// and refused, for writes and reads alike, with a wrong one.
func TestPlaintextRequiresCredentials(t *testing.T) {
	ts := startPlaintext(t, server.Options{})
	ctx := context.Background()
	c := ts.client(t)
	_, err := c.AppendToStream(ctx, "s", kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
	if errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Fatalf("append over plaintext without credentials: %v, want ErrorCodeUnauthenticated", err)
	}

	appendAs := func(user, password string) error {
		_, err := appendRaw(ctx, api.NewStreamsClient(ts.connAs(t, user, password)), "s", "E")
		return err
	}
	read := func(user, password string) error {
		_, err := readRaw(ctx, api.NewStreamsClient(ts.connAs(t, user, password)), "s")
		return err
	}
	if err := appendAs("admin", server.DefaultAdminPassword); err != nil {
		t.Fatalf("append with the right credentials: %v", err)
	}
	if err := read("admin", server.DefaultAdminPassword); err != nil {
		t.Errorf("read with the right credentials: %v", err)
	}
	for _, cred := range [][2]string{{"admin", "guess"}, {"mallory", "guess"}, {"", ""}} {
		if err := appendAs(cred[0], cred[1]); status.Code(err) != codes.Unauthenticated {
			t.Errorf("append as %q/%q over plaintext: %v, want Unauthenticated", cred[0], cred[1], err)
		}
		if err := read(cred[0], cred[1]); status.Code(err) != codes.Unauthenticated {
			t.Errorf("read as %q/%q over plaintext: %v, want Unauthenticated", cred[0], cred[1], err)
		}
	}
	if v, _ := ts.store.StreamVersion(ctx, "s"); v != 0 {
		t.Errorf("refused appends were written: version %d, want 0", v)
	}
	// Discovery needs no credentials.
	if _, err := serverfeatures.NewServerFeaturesClient(ts.connAs(t, "", "")).GetSupportedMethods(ctx, &shared.Empty{}); err != nil {
		t.Errorf("server features without credentials: %v", err)
	}
}

// appendRaw appends one event of type typ to stream through the v1 Append
// RPC of client.
func appendRaw(ctx context.Context, client api.StreamsClient, stream, typ string) (*api.AppendResp, error) {
	as, err := client.Append(ctx)
	if err != nil {
		return nil, err
	}
	if err := as.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
		ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}}); err != nil {
		return nil, err
	}
	if err := as.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Metadata: map[string]string{"type": typ, "content-type": "application/json"},
		Data:     []byte(`{}`),
	}}}); err != nil {
		return nil, err
	}
	return as.CloseAndRecv()
}

// readRaw reads stream from its start through the v1 Read RPC of client.
func readRaw(ctx context.Context, client api.StreamsClient, stream string) ([]*api.ReadResp, error) {
	rs, err := client.Read(ctx, &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
			RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption: &api.ReadReq_Options_Count{Count: 100},
	}})
	if err != nil {
		return nil, err
	}
	var out []*api.ReadResp
	for {
		msg, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, msg)
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
	d := connect(t, "kurrentdb+discover://admin:changeit@"+ts.addr+"?tls=true&tlscafile="+ts.ca)
	if _, err := d.AppendToStream(ctx, "discovered", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
		t.Fatalf("append through discovery: %v", err)
	}
}

func TestMultiStreamAppend(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		ctx := context.Background()
		c := ts.client(t)
		first := int64(ts.next(t))
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
		if len(resp.Responses) != 2 || resp.Responses[0].StreamRevision != 1 || resp.Responses[1].StreamRevision != 0 || resp.Position != first+2 {
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
	h := httptest.NewServer(ts.HTTPHandler())
	defer h.Close()
	// The store holds the built-in users already.
	before := metricValue(t, h.URL, "cairn_appended_events_total")
	if _, err := c.AppendToStream(ctx, "m", kurrentdb.AppendToStreamOptions{}, events(3, "E")...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppendToStream(ctx, "m", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, events(1, "E")...); err == nil {
		t.Fatal("conflicting append succeeded")
	}
	if n := metricValue(t, h.URL, "cairn_appended_events_total"); n != before+3 {
		t.Errorf("cairn_appended_events_total went from %v to %v, want 3 more", before, n)
	}
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
		addr string
		tls  bool
		ok   bool
	}{
		{"127.0.0.1:2113", false, true},
		{"localhost:2113", false, true},
		{"[::1]:2113", true, true},
		{"0.0.0.0:2113", true, true},
		{"0.0.0.0:2113", false, false},
		{":2113", false, false},
		{"10.0.0.7:2113", true, true},
	} {
		if err := server.CheckExposure(tc.addr, tc.tls); (err == nil) != tc.ok {
			t.Errorf("CheckExposure(%q, tls=%v) = %v", tc.addr, tc.tls, err)
		}
	}
}

// Beyond loopback the server refuses to start while a built-in user has the
// default password, as the store has it: configured passwords apply only
// on a new store.
func TestCheckDefaultPasswords(t *testing.T) {
	ctx := context.Background()
	fresh := start(t, server.Options{})
	if err := fresh.CheckDefaultPasswords(ctx, "127.0.0.1:2113"); err != nil {
		t.Errorf("loopback: %v", err)
	}
	err := fresh.CheckDefaultPasswords(ctx, "0.0.0.0:2113")
	if err == nil || !strings.Contains(err.Error(), "admin") {
		t.Errorf("admin with the default password beyond loopback: %v, want a refusal naming admin", err)
	}
	opsDefault := start(t, server.Options{AdminPassword: "long-secret"})
	if err := opsDefault.CheckDefaultPasswords(ctx, "0.0.0.0:2113"); err == nil || !strings.Contains(err.Error(), "ops") {
		t.Errorf("ops with the default password beyond loopback: %v, want a refusal naming ops", err)
	}
	set := start(t, server.Options{AdminPassword: "long-secret", OpsPassword: "other-secret"})
	if err := set.CheckDefaultPasswords(ctx, "0.0.0.0:2113"); err != nil {
		t.Errorf("both passwords set: %v", err)
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

// metricValue returns the value of an unlabelled metric of the /metrics
// page at base.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
