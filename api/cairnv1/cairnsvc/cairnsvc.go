// Package cairnsvc serves cairn's own gRPC API (cairn.v1, see package
// cairnv1) over a [cairn.Store]. Every call goes through the Store, so the
// same validation, fallbacks and notifications apply as in-process; errors
// travel as gRPC statuses whose details rebuild the typed cairn error on the
// client.
//
// # Memory
//
// A read answers with at most [MessageLimit] bytes: the Store's sized reads
// hold about that much of the engine's events at once (at most the limit
// plus one event), the response aliases their data, and gRPC encodes it
// once more, so one read holds at most about three times the limit
// (51 MiB with the default 16 MiB event limit), whatever count it asks for.
// A read whose events do not all fit stops early and sets size_limited;
// the client reads on from after its last event. Every event the Store
// accepts fits in one response; one written under a larger
// [cairn.Options.MaxEventBytes] than the Store now has may not, and a read
// that reaches it fails with RESOURCE_EXHAUSTED naming its position.
package cairnsvc

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Service implements cairnv1.CairnServer.
type Service struct {
	cairnv1.UnimplementedCairnServer
	store *cairn.Store
	limit int // the largest response, in bytes
}

// MessageOverhead is what [MessageLimit] allows beyond an event's data and
// metadata: its stream id, type, tags, id and the encoding's framing take
// less than 20 KiB.
const MessageOverhead = 1 << 20

// MessageLimit is the largest message the service sends and receives for
// store: one event of the Store's largest size and its overhead. A gRPC
// server that serves the service must allow messages of this size.
func MessageLimit(store *cairn.Store) int { return store.MaxEventBytes() + MessageOverhead }

// New returns the service over store.
func New(store *cairn.Store) *Service { return &Service{store: store, limit: MessageLimit(store)} }

// Register registers the service on srv.
func Register(srv grpc.ServiceRegistrar, store *cairn.Store) {
	cairnv1.RegisterCairnServer(srv, New(store))
}

var empty = &cairnv1.Empty{}

func (s *Service) Append(ctx context.Context, req *cairnv1.AppendRequest) (*cairnv1.AppendResponse, error) {
	r, err := cairnv1.ToAppendRequest(req)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	var res cairn.AppendResult
	if r.Condition != nil {
		res, err = s.store.AppendIf(ctx, r.Stream, r.Expected, *r.Condition, r.Events...)
	} else {
		res, err = s.store.Append(ctx, r.Stream, r.Expected, r.Events...)
	}
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.AppendResponse{Version: res.Version, Position: res.Position}, nil
}

func (s *Service) AppendBatch(ctx context.Context, req *cairnv1.AppendBatchRequest) (*cairnv1.AppendBatchResponse, error) {
	reqs := make([]cairn.AppendRequest, len(req.GetRequests()))
	for i, r := range req.GetRequests() {
		var err error
		if reqs[i], err = cairnv1.ToAppendRequest(r); err != nil {
			return nil, cairnv1.Status(err)
		}
	}
	results, err := s.store.AppendBatch(ctx, reqs...)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	out := &cairnv1.AppendBatchResponse{Results: make([]*cairnv1.AppendResponse, len(results))}
	for i, r := range results {
		out.Results[i] = &cairnv1.AppendResponse{Version: r.Version, Position: r.Position}
	}
	return out, nil
}

// deleteExpected is a delete's expectation: Any when the request sets none.
func deleteExpected(req *cairnv1.DeleteStreamRequest) (cairn.ExpectedVersion, error) {
	if req.ExpectedVersion == nil {
		return cairn.Any, nil
	}
	return cairn.ParseExpectedVersion(req.GetExpectedVersion())
}

func readCount(n int32) int {
	if n > cairnv1.MaxReadCount {
		return cairnv1.MaxReadCount
	}
	return int(n)
}

func (s *Service) ReadStream(ctx context.Context, req *cairnv1.ReadStreamRequest) (*cairnv1.ReadResponse, error) {
	count, maxBytes := readCount(req.GetCount()), s.readBytes(req.GetMaxBytes())
	events, err := s.store.ReadStreamSized(ctx, req.GetStream(), req.GetFrom(), count, maxBytes, cairn.Direction(req.GetDirection()))
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return s.response(events, count, maxBytes)
}

func (s *Service) ReadAll(ctx context.Context, req *cairnv1.ReadAllRequest) (*cairnv1.ReadResponse, error) {
	count, maxBytes := readCount(req.GetCount()), s.readBytes(req.GetMaxBytes())
	events, err := s.store.ReadAllSized(ctx, req.GetFrom(), count, maxBytes, cairn.Direction(req.GetDirection()))
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return s.response(events, count, maxBytes)
}

// readBytes is the data and metadata a read may gather: what the caller
// asked for, within one response.
func (s *Service) readBytes(asked int64) int {
	if asked > 0 && asked < int64(s.limit) {
		return int(asked)
	}
	return s.limit
}

// response holds the events of a sized read of count events and maxBytes
// that fit in one message, and says whether the read stopped for size.
func (s *Service) response(events []cairn.Event, count, maxBytes int) (*cairnv1.ReadResponse, error) {
	out := &cairnv1.ReadResponse{SizeLimited: len(events) < count && cairn.PageFull(events, count, maxBytes)}
	room := s.limit - 16 // the size_limited field
	for i, e := range events {
		ev := cairnv1.FromEvent(e)
		n := protowire.SizeTag(1) + protowire.SizeBytes(proto.Size(ev))
		if n > room {
			if i == 0 {
				return nil, status.Errorf(codes.ResourceExhausted,
					"the event at position %d (stream %q, version %d) takes %d bytes, more than the server's message limit of %d: it was written with a larger event size limit than the server has now",
					e.Position, e.StreamID, e.Version, n, s.limit)
			}
			out.SizeLimited = true
			break
		}
		room -= n
		out.Events = append(out.Events, ev)
	}
	return out, nil
}

func (s *Service) StreamVersion(ctx context.Context, req *cairnv1.StreamRequest) (*cairnv1.StreamVersionResponse, error) {
	v, err := s.store.StreamVersion(ctx, req.GetStream())
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.StreamVersionResponse{Version: v}, nil
}

func (s *Service) StreamExists(ctx context.Context, req *cairnv1.StreamRequest) (*cairnv1.StreamExistsResponse, error) {
	ok, err := s.store.StreamExists(ctx, req.GetStream())
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.StreamExistsResponse{Exists: ok}, nil
}

func (s *Service) HasEvents(ctx context.Context, _ *cairnv1.Empty) (*cairnv1.HasEventsResponse, error) {
	ok, err := s.store.HasEvents(ctx)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.HasEventsResponse{HasEvents: ok}, nil
}

func (s *Service) ListStreams(ctx context.Context, req *cairnv1.ListStreamsRequest) (*cairnv1.ListStreamsResponse, error) {
	limit := readCount(req.GetLimit())
	if limit <= 0 {
		return nil, cairnv1.Status(&cairn.InvalidArgumentError{Field: "limit", Reason: "must be positive"})
	}
	ids, err := s.store.Backend().ListStreams(ctx, req.GetAfter(), limit)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.ListStreamsResponse{Streams: ids}, nil
}

func (s *Service) DeleteStream(ctx context.Context, req *cairnv1.DeleteStreamRequest) (*cairnv1.Empty, error) {
	exp, err := deleteExpected(req)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return empty, cairnv1.Status(s.store.DeleteStream(ctx, req.GetStream(), exp))
}

func (s *Service) TombstoneStream(ctx context.Context, req *cairnv1.DeleteStreamRequest) (*cairnv1.Empty, error) {
	exp, err := deleteExpected(req)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return empty, cairnv1.Status(s.store.TombstoneStream(ctx, req.GetStream(), exp))
}

func (s *Service) TruncateStream(ctx context.Context, req *cairnv1.TruncateStreamRequest) (*cairnv1.Empty, error) {
	return empty, cairnv1.Status(s.store.TruncateStream(ctx, req.GetStream(), req.GetBefore()))
}

func (s *Service) CommitSnapshot(ctx context.Context, req *cairnv1.Snapshot) (*cairnv1.Empty, error) {
	return empty, cairnv1.Status(s.store.CommitSnapshot(ctx, cairnv1.ToSnapshot(req)))
}

func (s *Service) GetSnapshot(ctx context.Context, req *cairnv1.GetSnapshotRequest) (*cairnv1.GetSnapshotResponse, error) {
	snap, ok, err := s.store.GetSnapshot(ctx, req.GetStream(), req.GetMin(), req.GetMax())
	if err != nil || !ok {
		return &cairnv1.GetSnapshotResponse{}, cairnv1.Status(err)
	}
	return &cairnv1.GetSnapshotResponse{Found: true, Snapshot: cairnv1.FromSnapshot(snap)}, nil
}

func (s *Service) ReadModelGet(ctx context.Context, req *cairnv1.ReadModelGetRequest) (*cairnv1.ReadModelGetResponse, error) {
	v, ok, err := s.store.ReadModelGet(ctx, req.GetTable(), req.GetKey())
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.ReadModelGetResponse{Found: ok, Value: v}, nil
}

func (s *Service) ReadModelScan(ctx context.Context, req *cairnv1.ReadModelScanRequest) (*cairnv1.ReadModelScanResponse, error) {
	r, ok := s.store.Backend().(cairn.ReadModelReader)
	if !ok {
		return nil, cairnv1.Status(cairn.ErrNotSupported)
	}
	limit := readCount(req.GetLimit())
	if limit <= 0 {
		return nil, cairnv1.Status(&cairn.InvalidArgumentError{Field: "limit", Reason: "must be positive"})
	}
	entries, err := r.ReadModelScan(ctx, req.GetTable(), req.GetPrefix(), req.GetAfter(), limit)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	out := &cairnv1.ReadModelScanResponse{Entries: make([]*cairnv1.Entry, len(entries))}
	for i, e := range entries {
		out.Entries[i] = &cairnv1.Entry{Key: e.Key, Value: e.Value}
	}
	return out, nil
}

func (s *Service) Compact(ctx context.Context, _ *cairnv1.Empty) (*cairnv1.Empty, error) {
	return empty, cairnv1.Status(s.store.Compact(ctx))
}

func (s *Service) Stats(ctx context.Context, _ *cairnv1.Empty) (*cairnv1.StatsResponse, error) {
	out := &cairnv1.StatsResponse{}
	head, ok, err := s.head(ctx)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	out.HasEvents, out.HeadPosition = ok, head
	if n, err := s.store.DiskBytes(ctx); err == nil {
		out.DiskBytesKnown, out.DiskBytes = true, n
	} else if !errors.Is(err, cairn.ErrNotSupported) {
		return nil, cairnv1.Status(err)
	}
	if err := s.store.Health(ctx); err != nil {
		out.Health = err.Error()
	}
	return out, nil
}

// head returns the position of the last event in the store.
func (s *Service) head(ctx context.Context) (uint64, bool, error) {
	last, err := s.store.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
	if err != nil || len(last) == 0 {
		return 0, false, err
	}
	return last[0].Position, true, nil
}

// Watch sends the head now, then each time it moves.
func (s *Service) Watch(_ *cairnv1.Empty, stream grpc.ServerStreamingServer[cairnv1.Head]) error {
	ctx := stream.Context()
	sent, sentAny := uint64(0), false
	for {
		changed := s.store.Changes()
		head, ok, err := s.head(ctx)
		if err != nil {
			return cairnv1.Status(err)
		}
		if ok && (!sentAny || head > sent) {
			if err := stream.Send(&cairnv1.Head{Position: head}); err != nil {
				return err
			}
			sent, sentAny = head, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}
