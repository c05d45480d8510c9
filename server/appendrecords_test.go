package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	streamerrors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	apiv2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func record(stream, typ string) kurrentdb.AppendRecord {
	return kurrentdb.AppendRecord{Stream: stream, Record: jsonEvent(typ, `{}`)}
}

// violationsOf returns the violations of an AppendRecords error, failing
// unless it is the Go client's typed consistency-violation error.
func violationsOf(t *testing.T, err error) []kurrentdb.ConsistencyViolation {
	t.Helper()
	var v *kurrentdb.AppendConsistencyViolationError
	if errorCode(err) != kurrentdb.ErrorCodeAppendConsistencyViolation || !errors.As(err, &v) {
		t.Fatalf("got %v, want ErrorCodeAppendConsistencyViolation", err)
	}
	return v.Violations
}

// TestAppendRecords drives KurrentDB 26.1's AppendRecords through the
// official Go client: records for several streams, interleaved, with
// consistency checks on streams it writes and on streams it does not,
// passing and failing; every failed check is reported and nothing is
// written.
func TestAppendRecords(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()
		if _, err := c.AppendToStream(ctx, "seen", kurrentdb.AppendToStreamOptions{}, events(3, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "deleted", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteStream(ctx, "deleted", kurrentdb.DeleteStreamOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "dead", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.TombstoneStream(ctx, "dead", kurrentdb.TombstoneStreamOptions{}); err != nil {
			t.Fatal(err)
		}
		head := func() uint64 {
			t.Helper()
			evs, err := drain(c.ReadAll(ctx, kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 1))
			if err != nil || len(evs) != 1 {
				t.Fatalf("read the head: %v", err)
			}
			return evs[0].OriginalEvent().Position.Commit
		}

		// Interleaved records, checks on a written stream and on three
		// that are not written: all hold.
		res, err := c.AppendRecords(ctx,
			[]kurrentdb.AppendRecord{record("a", "A1"), record("b", "B1"), record("a", "A2")},
			kurrentdb.StreamStateCheck{Stream: "a", ExpectedState: kurrentdb.NoStream{}},
			kurrentdb.StreamStateCheck{Stream: "seen", ExpectedState: kurrentdb.StreamRevision{Value: 2}},
			kurrentdb.StreamStateCheck{Stream: "never", ExpectedState: kurrentdb.NoStream{}},
			kurrentdb.StreamStateCheck{Stream: "deleted", ExpectedState: kurrentdb.NoStream{}},
		)
		if err != nil {
			t.Fatalf("append with checks that hold: %v", err)
		}
		got := map[string]int64{}
		for _, r := range res.Responses {
			got[r.Stream] = r.StreamRevision
		}
		if len(got) != 2 || got["a"] != 1 || got["b"] != 0 {
			t.Errorf("revisions %v, want a at 1 and b at 0, one entry per written stream", got)
		}
		if uint64(res.Position) != head() {
			t.Errorf("position %d, want the last record's, %d", res.Position, head())
		}
		if ok, _ := ts.store.StreamExists(ctx, "never"); ok {
			t.Error("a stream only checked was created")
		}

		// Every failed check is reported, in order; nothing is written.
		before := head()
		_, err = c.AppendRecords(ctx,
			[]kurrentdb.AppendRecord{record("c", "C1")},
			kurrentdb.StreamStateCheck{Stream: "seen", ExpectedState: kurrentdb.StreamRevision{Value: 2}},
			kurrentdb.StreamStateCheck{Stream: "never", ExpectedState: kurrentdb.StreamExists{}},
			kurrentdb.StreamStateCheck{Stream: "a", ExpectedState: kurrentdb.NoStream{}},
			kurrentdb.StreamStateCheck{Stream: "dead", ExpectedState: kurrentdb.NoStream{}},
			kurrentdb.StreamStateCheck{Stream: "c", ExpectedState: kurrentdb.StreamRevision{Value: 5}},
		)
		vs := violationsOf(t, err)
		want := []kurrentdb.ConsistencyViolation{
			{CheckIndex: 1, Stream: "never", ExpectedState: kurrentdb.StreamExists{}, ActualState: kurrentdb.NoStream{}},
			{CheckIndex: 2, Stream: "a", ExpectedState: kurrentdb.NoStream{}, ActualState: kurrentdb.StreamRevision{Value: 1}},
			{CheckIndex: 3, Stream: "dead", ExpectedState: kurrentdb.NoStream{}, ActualState: kurrentdb.StreamRevision{Value: ^uint64(99)}},
			{CheckIndex: 4, Stream: "c", ExpectedState: kurrentdb.StreamRevision{Value: 5}, ActualState: kurrentdb.NoStream{}},
		}
		if len(vs) != len(want) {
			t.Fatalf("violations %+v, want %+v", vs, want)
		}
		for i := range want {
			if vs[i] != want[i] {
				t.Errorf("violation %d: %+v, want %+v", i, vs[i], want[i])
			}
		}
		if head() != before {
			t.Error("a refused AppendRecords wrote")
		}

		// A write to a tombstoned stream is a violation of Any.
		_, err = c.AppendRecords(ctx, []kurrentdb.AppendRecord{record("dead", "D")})
		vs = violationsOf(t, err)
		if len(vs) != 1 || vs[0].Stream != "dead" || vs[0].ExpectedState != (kurrentdb.Any{}) || vs[0].CheckIndex != -1 {
			t.Errorf("write to a tombstoned stream: %+v, want one violation of Any on dead", vs)
		}
	})
}

// TestAppendRecordsSchemaAndErrors checks through the generated client what
// the Go client does not send: a v1 read returns a record's schema in the
// metadata; bad requests and oversized records and requests are refused
// with the protocol's errors.
func TestAppendRecordsSchemaAndErrors(t *testing.T) {
	ts := start(t, server.Options{MaxAppendBytes: 4096})
	ctx := context.Background()
	conn := ts.conn(t)
	raw := apiv2.NewStreamsServiceClient(conn)
	rec := func(stream string, data []byte) *apiv2.AppendRecord {
		id := uuid.NewString()
		return &apiv2.AppendRecord{Stream: stream, RecordId: &id, Data: data,
			Schema: &apiv2.SchemaInfo{Name: "Registered", Format: apiv2.SchemaFormat_SCHEMA_FORMAT_PROTOBUF}}
	}
	if _, err := raw.AppendRecords(ctx, &apiv2.AppendRecordsRequest{Records: []*apiv2.AppendRecord{rec("users", []byte{1, 2})}}); err != nil {
		t.Fatal(err)
	}
	evs, err := drain(ts.client(t).ReadStream(ctx, "users", kurrentdb.ReadStreamOptions{}, 10))
	if err != nil || len(evs) != 1 {
		t.Fatalf("read: %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(evs[0].Event.UserMetadata, &meta); err != nil || meta["$schema.name"] != "Registered" || meta["$schema.format"] != "Protobuf" {
		t.Errorf("metadata %s, want $schema.name Registered and $schema.format Protobuf", evs[0].Event.UserMetadata)
	}

	for _, tc := range []struct {
		name string
		req  *apiv2.AppendRecordsRequest
		code codes.Code
		msg  string
	}{
		{"no records", &apiv2.AppendRecordsRequest{}, codes.InvalidArgument, "at least one record"},
		{"no stream", &apiv2.AppendRecordsRequest{Records: []*apiv2.AppendRecord{rec("", nil)}}, codes.InvalidArgument, "records[0].stream"},
		{"two checks of one stream", &apiv2.AppendRecordsRequest{Records: []*apiv2.AppendRecord{rec("x", nil)}, Checks: []*apiv2.ConsistencyCheck{
			{Type: &apiv2.ConsistencyCheck_StreamState{StreamState: &apiv2.ConsistencyCheck_StreamStateCheck{Stream: "y", ExpectedState: -1}}},
			{Type: &apiv2.ConsistencyCheck_StreamState{StreamState: &apiv2.ConsistencyCheck_StreamStateCheck{Stream: "y", ExpectedState: -4}}},
		}}, codes.InvalidArgument, "checks[1]"},
		{"bad expected state", &apiv2.AppendRecordsRequest{Records: []*apiv2.AppendRecord{rec("x", nil)}, Checks: []*apiv2.ConsistencyCheck{
			{Type: &apiv2.ConsistencyCheck_StreamState{StreamState: &apiv2.ConsistencyCheck_StreamStateCheck{Stream: "y", ExpectedState: -3}}},
		}}, codes.InvalidArgument, "checks[0].expected_state"},
		{"too large", &apiv2.AppendRecordsRequest{Records: []*apiv2.AppendRecord{rec("x", make([]byte, 5000))}}, codes.Aborted, "split it"},
	} {
		_, err := raw.AppendRecords(ctx, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", tc.name, err, tc.code, tc.msg)
		}
	}
	_, err = raw.AppendRecords(ctx, &apiv2.AppendRecordsRequest{Records: []*apiv2.AppendRecord{rec("x", make([]byte, 5000))}})
	var size *streamerrors.AppendTransactionSizeExceededErrorDetails
	for _, d := range status.Convert(err).Details() {
		if s, ok := d.(*streamerrors.AppendTransactionSizeExceededErrorDetails); ok {
			size = s
		}
	}
	if size == nil || size.MaxSize != 4096 {
		t.Errorf("oversized request: details %v, want the transaction size exceeded, 4096", status.Convert(err).Details())
	}
	if ok, _ := ts.store.StreamExists(ctx, "x"); ok {
		t.Error("a refused request wrote")
	}
}

// TestMultiStreamAppendKeepsSchema: an event appended through the v2
// multi-stream append reads back through v1 with its schema in the
// metadata ($schema.name, $schema.format) beside its properties, as
// KurrentDB returns it.
func TestMultiStreamAppendKeepsSchema(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	e := jsonEvent("OrderCreated", `{"id":1}`)
	e.Metadata = []byte(`{"tenant":"acme"}`)
	b := kurrentdb.EventData{EventID: uuid.New(), EventType: "Blob", ContentType: kurrentdb.ContentTypeBinary, Data: []byte{1}}
	if _, err := c.MultiStreamAppend(ctx, slices.Values([]kurrentdb.AppendStreamRequest{
		{StreamName: "orders", Events: slices.Values([]kurrentdb.EventData{e}), ExpectedStreamState: kurrentdb.NoStream{}},
		{StreamName: "blobs", Events: slices.Values([]kurrentdb.EventData{b}), ExpectedStreamState: kurrentdb.Any{}},
	})); err != nil {
		t.Fatal(err)
	}
	for stream, want := range map[string]map[string]string{
		"orders": {"tenant": "acme", "$schema.name": "OrderCreated", "$schema.format": "Json"},
		"blobs":  {"$schema.name": "Blob", "$schema.format": "Bytes"},
	} {
		evs, err := drain(c.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{}, 10))
		if err != nil || len(evs) != 1 {
			t.Fatalf("read %s: %v", stream, err)
		}
		var got map[string]string
		if err := json.Unmarshal(evs[0].Event.UserMetadata, &got); err != nil || !maps.Equal(got, want) {
			t.Errorf("%s: metadata %s, want %v", stream, evs[0].Event.UserMetadata, want)
		}
	}
}
