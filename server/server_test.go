package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/remotestore"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/users"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// testServer is a server on a free loopback port over an in-memory store.
type testServer struct {
	*server.Server
	store *cairn.Store
	addr  string
	// ca is the file of the CA that signed the server's certificate;
	// empty when the server speaks plaintext.
	ca string
}

// The test binary's development CA and node certificate, made once.
var (
	certsOnce sync.Once
	certDir   string
	certFiles server.CertFiles
	certsErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if certDir != "" {
		os.RemoveAll(certDir)
	}
	os.Exit(code)
}

// testCerts returns the test binary's CA and node certificate.
func testCerts(t testing.TB) server.CertFiles {
	t.Helper()
	certsOnce.Do(func() {
		if certDir, certsErr = os.MkdirTemp("", "cairn-server-test-"); certsErr == nil {
			certFiles, certsErr = server.GenerateCerts(certDir, server.CertOptions{})
		}
	})
	if certsErr != nil {
		t.Fatal(certsErr)
	}
	return certFiles
}

// start runs a server over TLS (the official Go client sends credentials
// only over TLS) on an in-memory store; opts.TLS, when set, replaces the
// test certificate.
func start(t testing.TB, opts server.Options) *testServer {
	t.Helper()
	return startOn(t, memstore.New(), opts)
}

// startPlaintext runs a server without TLS.
func startPlaintext(t testing.TB, opts server.Options) *testServer {
	t.Helper()
	return launch(t, memstore.New(), opts, false)
}

// onEngines runs body against a server on the in-memory engine and on the
// embedded on-disk engine, the default of cairn serve.
func onEngines(t *testing.T, opts server.Options, body func(t *testing.T, ts *testServer)) {
	t.Run("memory", func(t *testing.T) { body(t, startOn(t, memstore.New(), opts)) })
	t.Run("disk", func(t *testing.T) {
		db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		body(t, startOn(t, db, opts))
	})
}

func startOn(t testing.TB, engine cairn.Backend, opts server.Options) *testServer {
	t.Helper()
	return launch(t, engine, opts, true)
}

func launch(t testing.TB, engine cairn.Backend, opts server.Options, withTLS bool) *testServer {
	t.Helper()
	m := server.NewMetrics()
	opts.Metrics = m
	ca := ""
	if withTLS && opts.TLS == nil {
		files := testCerts(t)
		cfg, err := server.LoadTLS(files.NodeCert, files.NodeKey)
		if err != nil {
			t.Fatal(err)
		}
		opts.TLS, ca = cfg, files.CACert
	}
	if opts.Users.Hash == (users.HashParams{}) {
		// A cheaper hash than a server's: tests create many users.
		opts.Users.Hash = testHash
	}
	hooks := m.Hooks()
	if opts.Tracing != nil {
		hooks = opts.Tracing.Hooks(hooks)
	}
	store := cairn.NewStore(engine, cairn.Options{Hooks: hooks})
	srv, err := server.New(context.Background(), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		store.Close()
	})
	return &testServer{Server: srv, store: store, addr: lis.Addr().String(), ca: ca}
}

// testHash is the Argon2id cost of the test servers' new passwords: still
// memory-hard, a tenth of a server's default.
var testHash = users.HashParams{Time: 1, MemoryKiB: 2048, Threads: 1}

// connect returns an official client for the connection string.
func connect(t testing.TB, conn string) *kurrentdb.Client {
	t.Helper()
	cfg, err := kurrentdb.ParseConnectionString(conn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = kurrentdb.NoopLogging()
	c, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// client returns an official client of the server, authenticated as the
// built-in admin.
func (ts *testServer) client(t testing.TB) *kurrentdb.Client {
	return ts.clientAs(t, "admin", server.DefaultAdminPassword)
}

// clientAs returns an official client that authenticates as user.
func (ts *testServer) clientAs(t testing.TB, user, password string) *kurrentdb.Client {
	t.Helper()
	return connect(t, ts.url(user, password, ""))
}

// url is the connection string of the server for user (none when empty),
// with extra parameters.
func (ts *testServer) url(user, password, extra string) string {
	cred := ""
	if user != "" {
		cred = url.UserPassword(user, password).String() + "@"
	}
	if ts.ca == "" {
		return "kurrentdb://" + cred + ts.addr + "?tls=false" + extra
	}
	return "kurrentdb://" + cred + ts.addr + "?tls=true&tlscafile=" + url.QueryEscape(ts.ca) + extra
}

// conn returns a gRPC connection to the server whose calls authenticate as
// the built-in admin, for the generated clients.
func (ts *testServer) conn(t testing.TB, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	return ts.connAs(t, "admin", server.DefaultAdminPassword, opts...)
}

// connAs returns a gRPC connection whose calls authenticate as user; with
// an empty user, calls carry no credentials.
func (ts *testServer) connAs(t testing.TB, user, password string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if ts.ca == "" {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		pool, err := server.LoadCertPool(ts.ca)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	}
	if user != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(basicAuth{
			header: "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)),
			secure: ts.ca != "",
		}))
	}
	conn, err := grpc.NewClient(ts.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// remote returns the remote engine of the server (cairn.v1), which
// authenticates as user.
func (ts *testServer) remote(t testing.TB, user, password string) *remotestore.Store {
	t.Helper()
	raw := "cairn://" + url.UserPassword(user, password).String() + "@" + ts.addr
	if ts.ca != "" {
		raw += "?tls=true&tlscafile=" + url.QueryEscape(ts.ca)
	}
	b, err := remotestore.Open(raw, remotestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// next returns the position the next event appended will get: the events
// before it are the system's (the built-in users) and those a test wrote.
func (ts *testServer) next(t testing.TB) uint64 {
	t.Helper()
	last, err := ts.store.ReadAll(context.Background(), cairn.LogEnd, 1, cairn.Backward)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) == 0 {
		return 0
	}
	return last[0].Position + 1
}

// basicAuth sends basic credentials with every call.
type basicAuth struct {
	header string
	secure bool
}

func (a basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": a.header}, nil
}

func (a basicAuth) RequireTransportSecurity() bool { return a.secure }

// withoutUsers returns the events that are not those of the user database
// ($users, $user-…, their metadata, the password notifications): a new
// store holds the built-in users.
func withoutUsers(events []cairn.Event) []cairn.Event {
	var out []cairn.Event
	for _, e := range events {
		if !strings.HasPrefix(strings.TrimPrefix(e.StreamID, "$$"), "$user") {
			out = append(out, e)
		}
	}
	return out
}

func jsonEvent(typ, data string) kurrentdb.EventData {
	return kurrentdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: kurrentdb.ContentTypeJson, Data: []byte(data)}
}

func events(n int, typ string) []kurrentdb.EventData {
	out := make([]kurrentdb.EventData, n)
	for i := range out {
		out[i] = jsonEvent(typ, fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

func errorCode(err error) kurrentdb.ErrorCode {
	var e *kurrentdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// readAll drains a read.
func drain(rs *kurrentdb.ReadStream, err error) ([]*kurrentdb.ResolvedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*kurrentdb.ResolvedEvent
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func revisions(evs []*kurrentdb.ResolvedEvent) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.OriginalEvent().EventNumber)
	}
	return out
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendExpectedStates(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		first := ts.next(t)

		res, err := c.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, events(2, "Placed")...)
		if err != nil {
			t.Fatalf("no stream on a new stream: %v", err)
		}
		if res.NextExpectedVersion != 1 {
			t.Errorf("revision after two events = %d, want 1", res.NextExpectedVersion)
		}
		if res.CommitPosition != first+1 || res.PreparePosition != first+1 {
			t.Errorf("position = %d/%d, want %d/%d", res.CommitPosition, res.PreparePosition, first+1, first+1)
		}

		cases := []struct {
			name   string
			stream string
			state  kurrentdb.StreamState
			ok     bool
			msg    string // part of the wrong-expected-version message
		}{
			{"no stream on an existing stream", "order-1", kurrentdb.NoStream{}, false, "expecting 'no_stream' but got '1'"},
			{"stream exists on a missing stream", "order-2", kurrentdb.StreamExists{}, false, "expecting 'stream_exists' but got 'no_stream'"},
			{"wrong exact revision", "order-1", kurrentdb.Revision(0), false, "expecting '0' but got '1'"},
			{"exact revision on a missing stream", "order-3", kurrentdb.Revision(0), false, "got 'no_stream'"},
			{"stream exists", "order-1", kurrentdb.StreamExists{}, true, ""},
			{"exact revision", "order-1", kurrentdb.Revision(2), true, ""},
			{"any on an existing stream", "order-1", kurrentdb.Any{}, true, ""},
			{"any on a new stream", "order-4", kurrentdb.Any{}, true, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := ts.store.ReadAll(ctx, 0, 1000, cairn.Forward)
				_, err := c.AppendToStream(ctx, tc.stream, kurrentdb.AppendToStreamOptions{StreamState: tc.state}, jsonEvent("Changed", `{}`))
				if tc.ok {
					if err != nil {
						t.Fatalf("append: %v", err)
					}
					return
				}
				if errorCode(err) != kurrentdb.ErrorCodeWrongExpectedVersion {
					t.Fatalf("err = %v, want ErrorCodeWrongExpectedVersion", err)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("err = %v, want it to say %q", err, tc.msg)
				}
				after, _ := ts.store.ReadAll(ctx, 0, 1000, cairn.Forward)
				if len(after) != len(before) {
					t.Errorf("a failed append wrote %d events", len(after)-len(before))
				}
			})
		}

		v, err := ts.store.StreamVersion(ctx, "order-1")
		if err != nil || v != 4 {
			t.Errorf("order-1 version = %d, %v; want 4", v, err)
		}
	})
}

func TestAppendRetryIsIdempotent(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		evs := events(3, "Placed")
		first, err := c.AppendToStream(ctx, "cart", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, evs...)
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.AppendToStream(ctx, "cart", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, evs...)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if *again != *first {
			t.Errorf("retry result %+v, first %+v", again, first)
		}
		if v, _ := ts.store.StreamVersion(ctx, "cart"); v != 2 {
			t.Errorf("version after retry = %d, want 2", v)
		}
	})
}

func TestAppendBadInputWritesNothing(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	first := ts.next(t)
	cases := map[string]struct {
		stream string
		event  kurrentdb.EventData
		want   string
	}{
		"empty event type":  {"s", kurrentdb.EventData{EventID: uuid.New(), ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}, "event type"},
		"settings not ACLs": {"$settings", jsonEvent("$settings", `{"$userStreamAcl":5}`), "$userStreamAcl"},
		"acl not roles":     {"$$s", jsonEvent("$metadata", `{"$acl":{"$r":7}}`), "$r"},
		"control character": {"a\x01b", jsonEvent("T", `{}`), "control character"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.AppendToStream(ctx, tc.stream, kurrentdb.AppendToStreamOptions{}, tc.event)
			var e *kurrentdb.Error
			if !errors.As(err, &e) || status.Code(e.Err()) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	if ts.next(t) != first {
		t.Error("bad appends wrote events")
	}
}

// span returns the positions from to to, both included.
func span(from, to uint64) []uint64 {
	var out []uint64
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

func reversed(s []uint64) []uint64 {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

func TestReadStreamAndAll(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		b := ts.next(t)

		id := uuid.New()
		bin := kurrentdb.EventData{EventID: id, EventType: "Blob", ContentType: kurrentdb.ContentTypeBinary, Data: []byte{0, 1, 2}, Metadata: []byte(`{"by":"x"}`)}
		if _, err := c.AppendToStream(ctx, "a", kurrentdb.AppendToStreamOptions{}, append(events(4, "A"), bin)...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "b", kurrentdb.AppendToStreamOptions{}, events(3, "B")...); err != nil {
			t.Fatal(err)
		}

		stream := func(opts kurrentdb.ReadStreamOptions, n uint64) []uint64 {
			t.Helper()
			evs, err := drain(c.ReadStream(ctx, "a", opts, n))
			if err != nil {
				t.Fatalf("read %+v: %v", opts, err)
			}
			return revisions(evs)
		}
		for _, tc := range []struct {
			name string
			opts kurrentdb.ReadStreamOptions
			n    uint64
			want []uint64
		}{
			{"forward from start", kurrentdb.ReadStreamOptions{From: kurrentdb.Start{}}, 100, []uint64{0, 1, 2, 3, 4}},
			{"forward count", kurrentdb.ReadStreamOptions{From: kurrentdb.Start{}}, 2, []uint64{0, 1}},
			{"forward from revision", kurrentdb.ReadStreamOptions{From: kurrentdb.Revision(3)}, 100, []uint64{3, 4}},
			{"forward from end", kurrentdb.ReadStreamOptions{From: kurrentdb.End{}}, 100, nil},
			{"backward from end", kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 100, []uint64{4, 3, 2, 1, 0}},
			{"backward from revision", kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.Revision(2)}, 2, []uint64{2, 1}},
		} {
			if got := stream(tc.opts, tc.n); !equal(got, tc.want) {
				t.Errorf("%s: revisions %v, want %v", tc.name, got, tc.want)
			}
		}

		last, err := drain(c.ReadStream(ctx, "a", kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 1))
		if err != nil || len(last) != 1 {
			t.Fatalf("read last: %v %v", last, err)
		}
		e := last[0].Event
		if e.EventID != id || e.EventType != "Blob" || e.ContentType != "application/octet-stream" ||
			string(e.Data) != "\x00\x01\x02" || string(e.UserMetadata) != `{"by":"x"}` || e.StreamID != "a" {
			t.Errorf("event read back as %+v", e)
		}
		if e.Position.Commit != b+4 || e.Position.Prepare != b+4 {
			t.Errorf("position %+v, want %d/%d", e.Position, b+4, b+4)
		}
		if d := time.Since(e.CreatedDate); d < 0 || d > time.Minute {
			t.Errorf("created %v is not about now", e.CreatedDate)
		}

		all := func(opts kurrentdb.ReadAllOptions, n uint64) []uint64 {
			t.Helper()
			evs, err := drain(c.ReadAll(ctx, opts, n))
			if err != nil {
				t.Fatalf("read all %+v: %v", opts, err)
			}
			var out []uint64
			for _, e := range evs {
				out = append(out, e.OriginalEvent().Position.Commit)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			opts kurrentdb.ReadAllOptions
			n    uint64
			want []uint64
		}{
			// The built-in users come first, at 0…b-1.
			{"forward from start", kurrentdb.ReadAllOptions{From: kurrentdb.Start{}}, 100, span(0, b+7)},
			{"forward count", kurrentdb.ReadAllOptions{From: kurrentdb.Start{}}, 3, []uint64{0, 1, 2}},
			{"forward from position", kurrentdb.ReadAllOptions{From: kurrentdb.Position{Commit: b + 5, Prepare: b + 5}}, 100, []uint64{b + 5, b + 6, b + 7}},
			{"backward from end", kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 3, []uint64{b + 7, b + 6, b + 5}},
			{"backward from position", kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: kurrentdb.Position{Commit: b + 2, Prepare: b + 2}}, 100, reversed(span(0, b+2))},
			{"forward from end", kurrentdb.ReadAllOptions{From: kurrentdb.End{}}, 100, nil},
		} {
			if got := all(tc.opts, tc.n); !equal(got, tc.want) {
				t.Errorf("$all %s: positions %v, want %v", tc.name, got, tc.want)
			}
		}

		_, err = drain(c.ReadStream(ctx, "missing", kurrentdb.ReadStreamOptions{}, 10))
		if errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
			t.Errorf("read of a missing stream: %v, want ErrorCodeResourceNotFound", err)
		}
	})
}

func TestDeleteAndTombstone(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		if _, err := c.AppendToStream(ctx, "soft", kurrentdb.AppendToStreamOptions{}, events(3, "E")...); err != nil {
			t.Fatal(err)
		}
		_, err := c.DeleteStream(ctx, "soft", kurrentdb.DeleteStreamOptions{StreamState: kurrentdb.Revision(0)})
		wantConflict(t, "delete with a wrong revision", err, "soft", kurrentdb.Revision(0), kurrentdb.Revision(2))
		if v, _ := ts.store.StreamVersion(ctx, "soft"); v != 2 {
			t.Errorf("a refused delete changed the stream: version %d", v)
		}
		if _, err := c.DeleteStream(ctx, "soft", kurrentdb.DeleteStreamOptions{StreamState: kurrentdb.Revision(2)}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := drain(c.ReadStream(ctx, "soft", kurrentdb.ReadStreamOptions{}, 10)); errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
			t.Errorf("read after delete: %v, want ErrorCodeResourceNotFound", err)
		}
		res, err := c.AppendToStream(ctx, "soft", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, jsonEvent("E", `{}`))
		if err != nil {
			t.Fatalf("recreate after soft delete: %v", err)
		}
		if res.NextExpectedVersion != 3 {
			t.Errorf("recreated stream at revision %d, want 3 (continuing)", res.NextExpectedVersion)
		}

		if _, err := c.AppendToStream(ctx, "hard", kurrentdb.AppendToStreamOptions{}, events(2, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.TombstoneStream(ctx, "hard", kurrentdb.TombstoneStreamOptions{StreamState: kurrentdb.Any{}}); err != nil {
			t.Fatalf("tombstone: %v", err)
		}
		if _, err := drain(c.ReadStream(ctx, "hard", kurrentdb.ReadStreamOptions{}, 10)); errorCode(err) != kurrentdb.ErrorCodeStreamDeleted {
			t.Errorf("read after tombstone: %v, want ErrorCodeStreamDeleted", err)
		}
		_, err = c.AppendToStream(ctx, "hard", kurrentdb.AppendToStreamOptions{}, jsonEvent("E", `{}`))
		if errorCode(err) != kurrentdb.ErrorCodeStreamDeleted {
			t.Errorf("append after tombstone: %v, want ErrorCodeStreamDeleted", err)
		}
		if !strings.Contains(fmt.Sprint(err), "hard") {
			t.Errorf("stream-deleted error %v does not name the stream", err)
		}
	})
}

// wantConflict fails unless err is the Go client's typed
// wrong-expected-version error of a delete or tombstone, with the stream,
// the expectation and the actual state.
func wantConflict(t *testing.T, what string, err error, stream string, expected, actual kurrentdb.StreamState) {
	t.Helper()
	var c *kurrentdb.StreamRevisionConflictError
	if errorCode(err) != kurrentdb.ErrorCodeStreamRevisionConflict || !errors.As(err, &c) ||
		c.Stream != stream || c.ExpectedRevision != expected || c.ActualRevision != actual {
		t.Errorf("%s: %v, want a revision conflict on %s, expected %v, actual %v", what, err, stream, expected, actual)
	}
}

// TestDeleteOfAStreamThatNeverExisted checks each expectation of a delete
// and a tombstone of a stream that was never written against KurrentDB's
// answers: a soft delete fails with wrong-expected-version whatever it
// expects (there is nothing to delete), a tombstone succeeds when it allows
// a missing stream.
func TestDeleteOfAStreamThatNeverExisted(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		cases := []struct {
			name     string
			expected kurrentdb.StreamState
			tombOK   bool
		}{
			{"any", kurrentdb.Any{}, true},
			{"no-stream", kurrentdb.NoStream{}, true},
			{"exists", kurrentdb.StreamExists{}, false},
			{"revision", kurrentdb.Revision(0), false},
		}
		for _, tc := range cases {
			_, err := c.DeleteStream(ctx, "never-"+tc.name, kurrentdb.DeleteStreamOptions{StreamState: tc.expected})
			wantConflict(t, "delete expecting "+tc.name, err, "never-"+tc.name, tc.expected, kurrentdb.NoStream{})

			_, err = c.TombstoneStream(ctx, "never-"+tc.name, kurrentdb.TombstoneStreamOptions{StreamState: tc.expected})
			if tc.tombOK {
				if err != nil {
					t.Errorf("tombstone expecting %s: %v, want success", tc.name, err)
				}
			} else {
				wantConflict(t, "tombstone expecting "+tc.name, err, "never-"+tc.name, tc.expected, kurrentdb.NoStream{})
			}
		}
	})
}

func TestAppendSizeLimit(t *testing.T) {
	ts := start(t, server.Options{MaxAppendBytes: 1000})
	c := ts.client(t)
	ctx := context.Background()
	big := strings.Repeat("x", 400)
	evs := []kurrentdb.EventData{jsonEvent("E", `"`+big+`"`), jsonEvent("E", `"`+big+`"`)}
	_, err := c.AppendToStream(ctx, "big", kurrentdb.AppendToStreamOptions{}, evs...)
	var e *kurrentdb.Error
	if !errors.As(err, &e) || e.Code() != kurrentdb.ErrorCodeAppendTransactionSizeExceeded {
		t.Fatalf("oversized append: %v, want ErrorCodeAppendTransactionSizeExceeded", err)
	}
	var tooBig *kurrentdb.AppendTransactionSizeExceededError
	if !errors.As(e.Err(), &tooBig) || tooBig.MaxSize != 1000 || tooBig.Size <= 1000 {
		t.Errorf("oversized append: %v, want an AppendTransactionSizeExceededError with MaxSize 1000", e.Err())
	}
	if _, err := c.AppendToStream(ctx, "big", kurrentdb.AppendToStreamOptions{}, evs[0]); err != nil {
		t.Errorf("append within the limit: %v", err)
	}
	if v, _ := ts.store.StreamVersion(ctx, "big"); v != 0 {
		t.Errorf("version %d after one accepted append, want 0", v)
	}
}

// TestAppendOfManyEmptyEventsIsRefused: empty events carry no data, but an
// append of many of them still costs memory; the limit counts each
// event's encoding and overhead, and nothing of a refused append is
// written.
func TestAppendOfManyEmptyEventsIsRefused(t *testing.T) {
	ts := start(t, server.Options{MaxAppendBytes: 64 << 10})
	c := ts.client(t)
	ctx := context.Background()
	first := ts.next(t)
	// 400 empty events encode to 40–130 bytes each (an id, a type, a
	// content type): under the limit without the per-event overhead, over
	// it with it. So the refusal shows that the overhead is counted, and
	// the client sends little enough that a loaded machine finishes
	// sending well within the call's deadline.
	empty := make([]kurrentdb.EventData, 400)
	for i := range empty {
		empty[i] = kurrentdb.EventData{EventID: uuid.New(), EventType: "E", ContentType: kurrentdb.ContentTypeBinary}
	}
	_, err := c.AppendToStream(ctx, "empty", kurrentdb.AppendToStreamOptions{}, empty...)
	if errorCode(err) != kurrentdb.ErrorCodeAppendTransactionSizeExceeded {
		t.Fatalf("append of %d empty events: %v, want ErrorCodeAppendTransactionSizeExceeded", len(empty), err)
	}
	if ts.next(t) != first {
		t.Error("a refused append wrote events")
	}
	// The v2 multi-stream append is bounded the same way.
	_, err = c.MultiStreamAppend(ctx, func(yield func(kurrentdb.AppendStreamRequest) bool) {
		yield(kurrentdb.AppendStreamRequest{StreamName: "empty", Events: slices.Values(empty), ExpectedStreamState: kurrentdb.Any{}})
	})
	if errorCode(err) != kurrentdb.ErrorCodeAppendTransactionSizeExceeded {
		t.Fatalf("multi-stream append of %d empty events: %v, want ErrorCodeAppendTransactionSizeExceeded", len(empty), err)
	}
	if ts.next(t) != first {
		t.Error("a refused multi-stream append wrote events")
	}
}
