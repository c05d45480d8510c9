package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// testServer is a server on a free loopback port over an in-memory store.
type testServer struct {
	*server.Server
	store *cairn.Store
	addr  string
}

func start(t testing.TB, opts server.Options) *testServer {
	t.Helper()
	return startOn(t, memstore.New(), opts)
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
	m := server.NewMetrics()
	opts.Metrics = m
	store := cairn.NewStore(engine, cairn.Options{Hooks: m.Hooks()})
	srv := server.New(store, opts)
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
	return &testServer{Server: srv, store: store, addr: lis.Addr().String()}
}

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

func (ts *testServer) client(t testing.TB) *kurrentdb.Client {
	return connect(t, "kurrentdb://admin:changeit@"+ts.addr+"?tls=false")
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

		res, err := c.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, events(2, "Placed")...)
		if err != nil {
			t.Fatalf("no stream on a new stream: %v", err)
		}
		if res.NextExpectedVersion != 1 {
			t.Errorf("revision after two events = %d, want 1", res.NextExpectedVersion)
		}
		if res.CommitPosition != 1 || res.PreparePosition != 1 {
			t.Errorf("position = %d/%d, want 1/1", res.CommitPosition, res.PreparePosition)
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
	cases := map[string]struct {
		stream string
		event  kurrentdb.EventData
		want   string
	}{
		"empty event type":  {"s", kurrentdb.EventData{EventID: uuid.New(), ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}, "event type"},
		"reserved stream":   {"$settings", jsonEvent("T", `{}`), "reserved"},
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
	if has, _ := ts.store.HasEvents(ctx); has {
		t.Error("bad appends wrote events")
	}
}

func TestReadStreamAndAll(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()

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
		if e.Position.Commit != 4 || e.Position.Prepare != 4 {
			t.Errorf("position %+v, want 4/4", e.Position)
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
			{"forward from start", kurrentdb.ReadAllOptions{From: kurrentdb.Start{}}, 100, []uint64{0, 1, 2, 3, 4, 5, 6, 7}},
			{"forward count", kurrentdb.ReadAllOptions{From: kurrentdb.Start{}}, 3, []uint64{0, 1, 2}},
			{"forward from position", kurrentdb.ReadAllOptions{From: kurrentdb.Position{Commit: 5, Prepare: 5}}, 100, []uint64{5, 6, 7}},
			{"backward from end", kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 3, []uint64{7, 6, 5}},
			{"backward from position", kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: kurrentdb.Position{Commit: 2, Prepare: 2}}, 100, []uint64{2, 1, 0}},
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
	empty := make([]kurrentdb.EventData, 20000)
	for i := range empty {
		empty[i] = kurrentdb.EventData{EventID: uuid.New(), EventType: "E", ContentType: kurrentdb.ContentTypeBinary}
	}
	_, err := c.AppendToStream(ctx, "empty", kurrentdb.AppendToStreamOptions{}, empty...)
	if errorCode(err) != kurrentdb.ErrorCodeAppendTransactionSizeExceeded {
		t.Fatalf("append of %d empty events: %v, want ErrorCodeAppendTransactionSizeExceeded", len(empty), err)
	}
	if ok, _ := ts.store.HasEvents(ctx); ok {
		t.Error("a refused append wrote events")
	}
	// The v2 multi-stream append is bounded the same way.
	_, err = c.MultiStreamAppend(ctx, func(yield func(kurrentdb.AppendStreamRequest) bool) {
		yield(kurrentdb.AppendStreamRequest{StreamName: "empty", Events: slices.Values(empty), ExpectedStreamState: kurrentdb.Any{}})
	})
	if errorCode(err) != kurrentdb.ErrorCodeAppendTransactionSizeExceeded {
		t.Fatalf("multi-stream append of %d empty events: %v, want ErrorCodeAppendTransactionSizeExceeded", len(empty), err)
	}
	if ok, _ := ts.store.HasEvents(ctx); ok {
		t.Error("a refused multi-stream append wrote events")
	}
}
