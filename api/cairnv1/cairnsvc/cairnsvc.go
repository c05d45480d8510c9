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
//
// # Access
//
// With an ACL checker ([Options.Access]) every call is decided, for the
// principal in its context (package auth), by the stream ACLs that the
// KurrentDB protocol enforces (package acl), and a refused call fails with
// PERMISSION_DENIED:
//
//   - Append, AppendBatch and CommitSnapshot need the right to write each
//     stream; ReadStream, StreamVersion, StreamExists and GetSnapshot to
//     read it; DeleteStream, TombstoneStream and TruncateStream to delete
//     it (truncating removes events).
//   - ReadAll, ReadQuery, ReadIndex, ListStreams, ReadModelGet and
//     ReadModelScan need the right to read $all: they show what every
//     stream holds; so does an append with a condition, which tells
//     whether matching events exist in any stream.
//   - Compact needs an administrator or an operator, as a scavenge does;
//     so does Backup, which streams every file of the store.
//   - System streams (whose names start with '$') are written, deleted
//     and truncated as the ACLs allow, administrators only by default, as
//     in KurrentDB; so a server can keep its users, stream metadata and
//     subscriptions in another server's store ([cairn.Store.System]). An
//     event of a metadata stream must be a JSON object whose $acl reads,
//     one of $settings default ACLs that read ([acl.CheckData]). The
//     standard projections' streams ($ce-, $et-, $streams, $category-,
//     $bc-), which the KurrentDB protocol presents as link streams read
//     from the index, are never appended to, whoever asks: the append is
//     refused as that protocol refuses it ([links.CheckWrite]).
//   - HasEvents, GetHead, Stats and Watch, which tell no event's content,
//     need an authenticated user.
//
// Without one every call is served: the host has nothing to protect, or
// protects it itself; system streams are read but not written, as the
// Store does.
package cairnsvc

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Service implements cairnv1.CairnServer.
type Service struct {
	cairnv1.UnimplementedCairnServer
	store  *cairn.Store
	limit  int // the largest response, in bytes
	access *acl.Checker
	backup BackupFunc
}

// Options configure a [Service]. The zero value serves every call.
type Options struct {
	// Access decides each call against the stream ACLs, for the principal
	// the host put in the call's context (see the package documentation).
	// Nil serves every call.
	Access *acl.Checker
	// Backup streams a backup of the store's engine for the Backup call;
	// nil answers it UNIMPLEMENTED. The host sets it for an engine that
	// takes backups (the embedded one, through package diskstore/backup).
	Backup BackupFunc
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
func New(store *cairn.Store, opts Options) *Service {
	return &Service{store: store, limit: MessageLimit(store), access: opts.Access, backup: opts.Backup}
}

// Register registers the service over store on srv.
func Register(srv grpc.ServiceRegistrar, store *cairn.Store, opts Options) {
	cairnv1.RegisterCairnServer(srv, New(store, opts))
}

// allow returns nil when the call's principal may perform op on stream,
// PERMISSION_DENIED when the ACLs refuse it.
func (s *Service) allow(ctx context.Context, op acl.Operation, stream string) error {
	if s.access == nil {
		return nil
	}
	err := s.access.Check(ctx, op, stream)
	if errors.Is(err, acl.ErrAccessDenied) {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return cairnv1.Status(err)
}

// allowUser returns nil when the call has a principal.
func (s *Service) allowUser(ctx context.Context) error {
	if s.access == nil {
		return nil
	}
	if _, ok := auth.FromContext(ctx); !ok {
		return status.Error(codes.PermissionDenied, "access denied: this call takes an authenticated user")
	}
	return nil
}

// allowOperator returns nil when the call is an administrator's or an
// operator's.
func (s *Service) allowOperator(ctx context.Context, what string) error {
	if s.access == nil {
		return nil
	}
	p, _ := auth.FromContext(ctx)
	if p.IsAdmin() || p.IsOps() {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "access denied: user %q may not %s: it takes an administrator or an operator", p.Name, what)
}

var empty = &cairnv1.Empty{}

func (s *Service) Append(ctx context.Context, req *cairnv1.AppendRequest) (*cairnv1.AppendResponse, error) {
	r, err := cairnv1.ToAppendRequest(req)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	if err := s.allow(ctx, acl.Write, r.Stream); err != nil {
		return nil, err
	}
	if err := checkData(r.Stream, r.Events); err != nil {
		return nil, err
	}
	var res cairn.AppendResult
	if r.Condition != nil {
		// A condition tells whether matching events exist in any stream.
		if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
			return nil, err
		}
		res, err = s.writer(r.Stream).AppendIf(ctx, r.Stream, r.Expected, *r.Condition, r.Events...)
	} else {
		res, err = s.writer(r.Stream).Append(ctx, r.Stream, r.Expected, r.Events...)
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
		if err := s.allow(ctx, acl.Write, reqs[i].Stream); err != nil {
			return nil, err
		}
		if err := checkData(reqs[i].Stream, reqs[i].Events); err != nil {
			return nil, err
		}
		if reqs[i].Condition != nil {
			if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
				return nil, err
			}
		}
	}
	results, err := s.batchWriter(reqs).AppendBatch(ctx, reqs...)
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
	if err := s.allow(ctx, acl.Read, req.GetStream()); err != nil {
		return nil, err
	}
	count, maxBytes := readCount(req.GetCount()), s.readBytes(req.GetMaxBytes())
	events, err := s.store.ReadStreamSized(ctx, req.GetStream(), req.GetFrom(), count, maxBytes, cairn.Direction(req.GetDirection()))
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return s.response(events, count, maxBytes)
}

func (s *Service) ReadAll(ctx context.Context, req *cairnv1.ReadAllRequest) (*cairnv1.ReadResponse, error) {
	if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
		return nil, err
	}
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
	if err := s.allow(ctx, acl.Read, req.GetStream()); err != nil {
		return nil, err
	}
	v, err := s.store.StreamVersion(ctx, req.GetStream())
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.StreamVersionResponse{Version: v}, nil
}

func (s *Service) StreamExists(ctx context.Context, req *cairnv1.StreamRequest) (*cairnv1.StreamExistsResponse, error) {
	if err := s.allow(ctx, acl.Read, req.GetStream()); err != nil {
		return nil, err
	}
	ok, err := s.store.StreamExists(ctx, req.GetStream())
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.StreamExistsResponse{Exists: ok}, nil
}

func (s *Service) HasEvents(ctx context.Context, _ *cairnv1.Empty) (*cairnv1.HasEventsResponse, error) {
	if err := s.allowUser(ctx); err != nil {
		return nil, err
	}
	ok, err := s.store.HasEvents(ctx)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.HasEventsResponse{HasEvents: ok}, nil
}

func (s *Service) ListStreams(ctx context.Context, req *cairnv1.ListStreamsRequest) (*cairnv1.ListStreamsResponse, error) {
	if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
		return nil, err
	}
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
	if err := s.allow(ctx, acl.Delete, req.GetStream()); err != nil {
		return nil, err
	}
	return empty, cairnv1.Status(s.writer(req.GetStream()).DeleteStream(ctx, req.GetStream(), exp))
}

func (s *Service) TombstoneStream(ctx context.Context, req *cairnv1.DeleteStreamRequest) (*cairnv1.Empty, error) {
	exp, err := deleteExpected(req)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	if err := s.allow(ctx, acl.Delete, req.GetStream()); err != nil {
		return nil, err
	}
	return empty, cairnv1.Status(s.writer(req.GetStream()).TombstoneStream(ctx, req.GetStream(), exp))
}

func (s *Service) TruncateStream(ctx context.Context, req *cairnv1.TruncateStreamRequest) (*cairnv1.Empty, error) {
	if err := s.allow(ctx, acl.Delete, req.GetStream()); err != nil {
		return nil, err
	}
	return empty, cairnv1.Status(s.writer(req.GetStream()).TruncateStream(ctx, req.GetStream(), req.GetBefore()))
}

func (s *Service) CommitSnapshot(ctx context.Context, req *cairnv1.Snapshot) (*cairnv1.Empty, error) {
	if err := s.allow(ctx, acl.Write, req.GetStreamId()); err != nil {
		return nil, err
	}
	return empty, cairnv1.Status(s.writer(req.GetStreamId()).CommitSnapshot(ctx, cairnv1.ToSnapshot(req)))
}

func (s *Service) GetSnapshot(ctx context.Context, req *cairnv1.GetSnapshotRequest) (*cairnv1.GetSnapshotResponse, error) {
	if err := s.allow(ctx, acl.Read, req.GetStream()); err != nil {
		return nil, err
	}
	snap, ok, err := s.store.GetSnapshot(ctx, req.GetStream(), req.GetMin(), req.GetMax())
	if err != nil || !ok {
		return &cairnv1.GetSnapshotResponse{}, cairnv1.Status(err)
	}
	return &cairnv1.GetSnapshotResponse{Found: true, Snapshot: cairnv1.FromSnapshot(snap)}, nil
}

func (s *Service) ReadModelGet(ctx context.Context, req *cairnv1.ReadModelGetRequest) (*cairnv1.ReadModelGetResponse, error) {
	if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
		return nil, err
	}
	v, ok, err := s.store.ReadModelGet(ctx, req.GetTable(), req.GetKey())
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.ReadModelGetResponse{Found: ok, Value: v}, nil
}

func (s *Service) ReadModelScan(ctx context.Context, req *cairnv1.ReadModelScanRequest) (*cairnv1.ReadModelScanResponse, error) {
	if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
		return nil, err
	}
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
	if err := s.allowOperator(ctx, "compact the store"); err != nil {
		return nil, err
	}
	return empty, cairnv1.Status(s.store.Compact(ctx))
}

func (s *Service) Stats(ctx context.Context, _ *cairnv1.Empty) (*cairnv1.StatsResponse, error) {
	if err := s.allowUser(ctx); err != nil {
		return nil, err
	}
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
	if err := s.allowUser(ctx); err != nil {
		return err
	}
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

// writer returns the view of the Store that writes stream: with ACLs, the
// system view for a system stream (its name starts with '$'), which the
// ACLs let administrators write, by default, as in KurrentDB; otherwise
// the Store itself, which refuses system streams.
func (s *Service) writer(stream string) *cairn.Store {
	if s.access != nil && acl.IsSystemStream(stream) {
		return s.store.System()
	}
	return s.store
}

// batchWriter returns the view that writes every stream of reqs.
func (s *Service) batchWriter(reqs []cairn.AppendRequest) *cairn.Store {
	for _, r := range reqs {
		if s.access != nil && acl.IsSystemStream(r.Stream) {
			return s.store.System()
		}
	}
	return s.store
}

// checkData refuses an append to one of the standard projections' streams,
// which the KurrentDB protocol presents as link streams read from the
// index, as that protocol refuses it ([links.CheckWrite]); and events that
// the ACLs could not read: a metadata stream's and $settings'
// ([acl.CheckData]).
func checkData(stream string, events []cairn.EventData) error {
	if err := links.CheckWrite(stream); err != nil {
		return cairnv1.Status(err)
	}
	for i, e := range events {
		if err := acl.CheckData(stream, e.Data); err != nil {
			return status.Errorf(codes.InvalidArgument, "invalid events[%d].data of %q: %v", i, stream, err)
		}
	}
	return nil
}
