package cairnv1_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The fuzz targets of the cairn.v1 conversions: arbitrary bytes, read as
// the message a client or a server received, convert to cairn's types or
// give an error; what converts goes back to the same message. CI runs each
// for a few seconds (.ci/run).

func marshal(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func sameEventData(a, b cairn.EventData) bool {
	return a.ID == b.ID && a.Type == b.Type && a.ContentType == b.ContentType &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Metadata, b.Metadata) && slices.Equal(a.Tags, b.Tags)
}

// FuzzToAppendRequest converts the AppendRequest a server receives.
func FuzzToAppendRequest(f *testing.F) {
	req := cairn.AppendRequest{Stream: "order-1", Expected: cairn.Exact(4), Events: []cairn.EventData{
		{ID: [16]byte{1, 15: 2}, Type: "Placed", ContentType: cairn.ContentBinary, Data: []byte{0, 1}, Metadata: []byte("{}"), Tags: []string{"t"}},
		{Type: "Paid"},
	}}
	f.Add(marshal(f, cairnv1.FromAppendRequest(req)))
	f.Add(marshal(f, &cairnv1.AppendRequest{Stream: "s", ExpectedVersion: -3}))
	f.Add(marshal(f, &cairnv1.AppendRequest{Stream: "s", ExpectedVersion: -1, Events: []*cairnv1.EventData{{Id: []byte{1, 2, 3}}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m cairnv1.AppendRequest
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		got, err := cairnv1.ToAppendRequest(&m)
		if err != nil {
			if !errors.Is(err, cairn.ErrInvalidArgument) {
				t.Fatalf("ToAppendRequest: %v, want ErrInvalidArgument", err)
			}
			return
		}
		if got.Stream != m.GetStream() || got.Expected.Int64() != m.GetExpectedVersion() || len(got.Events) != len(m.GetEvents()) {
			t.Fatalf("ToAppendRequest(%v) = %+v", &m, got)
		}
		back, err := cairnv1.ToAppendRequest(cairnv1.FromAppendRequest(got))
		if err != nil || back.Stream != got.Stream || back.Expected != got.Expected || !slices.EqualFunc(back.Events, got.Events, sameEventData) {
			t.Fatalf("%+v converts back to %+v, %v", got, back, err)
		}
	})
}

// FuzzToEvent converts the Event a client receives.
func FuzzToEvent(f *testing.F) {
	e := cairn.Event{
		EventData: cairn.EventData{ID: [16]byte{1, 15: 2}, Type: "Placed", Data: []byte(`{"total":42}`), Tags: []string{"a", "b"}},
		StreamID:  "order-1", Version: 3, Position: 77, Created: time.Date(2026, 11, 24, 12, 0, 0, 1000, time.UTC),
	}
	f.Add(marshal(f, cairnv1.FromEvent(e)))
	f.Add(marshal(f, &cairnv1.Event{Id: []byte{1}}))
	f.Add(marshal(f, &cairnv1.Event{Id: make([]byte, 16), Created: &timestamppb.Timestamp{Seconds: -1 << 62, Nanos: -5}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m cairnv1.Event
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		got, err := cairnv1.ToEvent(&m)
		if err != nil {
			return
		}
		back, err := cairnv1.ToEvent(cairnv1.FromEvent(got))
		if err != nil || !sameEventData(back.EventData, got.EventData) || back.StreamID != got.StreamID ||
			back.Version != got.Version || back.Position != got.Position || !back.Created.Equal(got.Created) {
			t.Fatalf("%+v converts back to %+v, %v", got, back, err)
		}
		if got.StreamID != m.GetStreamId() || got.Version != m.GetVersion() || got.Position != m.GetPosition() || got.Type != m.GetType() {
			t.Fatalf("ToEvent(%v) = %+v", &m, got)
		}
	})
}

// FuzzToSnapshot converts the Snapshot a server or a client receives.
func FuzzToSnapshot(f *testing.F) {
	f.Add(marshal(f, cairnv1.FromSnapshot(cairn.Snapshot{StreamID: "s", Version: 4, Data: []byte("state"), Created: time.Unix(5, 6)})))
	f.Add(marshal(f, &cairnv1.Snapshot{Created: &timestamppb.Timestamp{Seconds: 1 << 62}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m cairnv1.Snapshot
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		got := cairnv1.ToSnapshot(&m)
		back := cairnv1.ToSnapshot(cairnv1.FromSnapshot(got))
		if back.StreamID != got.StreamID || back.Version != got.Version || !bytes.Equal(back.Data, got.Data) ||
			!bytes.Equal(back.Metadata, got.Metadata) || !back.Created.Equal(got.Created) {
			t.Fatalf("%+v converts back to %+v", got, back)
		}
	})
}

// FuzzErrorFromDetail rebuilds the typed error of the Error detail a client
// receives, directly and inside a gRPC status: a known code comes back as
// the same code with its facts.
func FuzzErrorFromDetail(f *testing.F) {
	for _, err := range []error{
		&cairn.WrongExpectedVersionError{Op: "delete", Stream: "s", Expected: cairn.Exact(3), Actual: 5},
		&cairn.InvalidArgumentError{Field: "events[0].type", Reason: "must not be empty"},
		cairn.NotFound("read", "s"),
		cairn.ErrClosed,
		errors.New("boom"),
	} {
		f.Add(marshal(f, cairnv1.ErrorDetail(err)), int32(codes.FailedPrecondition))
	}
	f.Add(marshal(f, &cairnv1.Error{Code: 99, Stream: "s"}), int32(codes.Internal))
	f.Add([]byte{}, int32(0))
	f.Fuzz(func(t *testing.T, b []byte, grpcCode int32) {
		var d cairnv1.Error
		if proto.Unmarshal(b, &d) != nil {
			return
		}
		err := cairnv1.ErrorFromDetail(&d)
		code := d.GetCode()
		if _, known := cairnv1.Code_name[int32(code)]; known && code != cairnv1.Code_CODE_UNKNOWN {
			got := cairnv1.ErrorDetail(err)
			if got.GetCode() != code {
				t.Fatalf("%v comes back as %v (%v)", &d, got, err)
			}
			// An invalid argument names a field, a failed condition a
			// position: neither carries an operation or a stream, so a
			// detail that gives one anyway loses it.
			carriesStream := code != cairnv1.Code_CODE_INVALID_ARGUMENT && code != cairnv1.Code_CODE_CONDITION_FAILED
			if carriesStream && (got.GetStream() != d.GetStream() || got.GetOp() != d.GetOp()) {
				t.Fatalf("%v comes back as %v (%v)", &d, got, err)
			}
			if code == cairnv1.Code_CODE_WRONG_EXPECTED_VERSION && (got.GetExpectedVersion() != d.GetExpectedVersion() || got.GetActualVersion() != d.GetActualVersion()) {
				t.Fatalf("%v comes back as %v", &d, got)
			}
			if code == cairnv1.Code_CODE_INVALID_ARGUMENT && (got.GetField() != d.GetField() || got.GetMessage() != d.GetMessage()) {
				t.Fatalf("%v comes back as %v", &d, got)
			}
		}
		// The same detail inside a status, as the client reads it.
		st := &status.Status{Code: grpcCode, Message: "m"}
		if s, err := grpcstatus.FromProto(st).WithDetails(&d); err == nil {
			_ = cairnv1.FromStatus(s.Err())
		}
		_ = cairnv1.FromStatus(grpcstatus.ErrorProto(st))
		// The bytes as a whole status, details of any type included.
		var whole status.Status
		if proto.Unmarshal(b, &whole) == nil {
			_ = cairnv1.FromStatus(grpcstatus.ErrorProto(&whole))
		}
	})
}
