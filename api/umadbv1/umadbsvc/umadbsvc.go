// Package umadbsvc serves UmaDB's gRPC API (umadb.v1, the DCB service of
// package umadbv1) over a [cairn.Store], so that UmaDB's clients work
// against a cairn server unchanged: reads by query (from a start, backwards,
// with a limit, and subscriptions that catch up then follow new events),
// appends with a condition and idempotent by event id, and the head.
//
// # Streams
//
// UmaDB's events have no stream; cairn's do. Every event appended through
// this service goes to one stream, [Options.Stream] ("umadb" unless
// configured), with no expected version: the append condition, not the
// stream, is UmaDB's consistency boundary. One stream keeps a retried
// append recognisable by its first event's id (cairn recognises a retry in
// the stream that recorded it), keeps the events' types in the index (the
// stream is not a system stream), and lets cairn's and KurrentDB's clients
// read UmaDB's events as that stream. Reads cover the whole log, so UmaDB's
// clients also see, and are conditioned by, the events other clients
// append to other streams.
//
// # Mapping
//
//   - Positions: UmaDB's start at 1, cairn's at 0; an UmaDB position is the
//     cairn position plus one. A condition's after 0 is no After.
//   - Events: event_type is the type, tags the tags, uuid the event id (a
//     cairn event id, generated when empty), data the data, recorded as
//     JSON when it is valid JSON and as binary otherwise; metadata, which
//     UmaDB has not, is neither written nor read.
//   - Errors: a failed condition is FAILED_PRECONDITION (UmaDB's integrity
//     error, with the conflicting UmaDB position in the message), bad input
//     INVALID_ARGUMENT; each status carries an ErrorResponse detail.
//     Tracking information (GetTrackingInfo, AppendRequest.tracking_info)
//     is not supported: UNIMPLEMENTED, and nothing is written.
//
// # Access
//
// With an ACL checker ([Options.Access]), the calls are decided by the
// stream ACLs of the KurrentDB protocol (package acl), for the principal
// in the call's context (package auth): an append needs the right to write
// the service's stream, and, with a condition, the right to read $all (a
// condition tells whether matching events exist in any stream); a read,
// which covers the whole log, the right to read $all; Head an
// authenticated user. A refusal is PERMISSION_DENIED with an
// AUTHENTICATION ErrorResponse.
package umadbsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/umadbv1"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultStream is the stream of [Options.Stream] when none is given.
const DefaultStream = "umadb"

// DefaultBatchSize is the number of events in one ReadResponse when the
// request does not say; MaxBatchSize bounds what it may ask.
const (
	DefaultBatchSize = 100
	MaxBatchSize     = 1000
)

// Options configure the service. The zero value is ready to use.
type Options struct {
	// Stream is the stream UmaDB's appends go to. Empty means
	// DefaultStream. It must be a stream id a caller may write (not a
	// system stream, whose events the index files by tag only).
	Stream string
	// Done, when closed, ends the subscriptions (reads with subscribe)
	// that are waiting for new events, as a server's shutdown does.
	Done <-chan struct{}
	// Access decides each call against the stream ACLs, for the
	// principal the host put in the call's context (see the package
	// documentation). Nil serves every call.
	Access *acl.Checker
}

// Service implements umadbv1.DCBServer.
type Service struct {
	umadbv1.UnimplementedDCBServer
	store  *cairn.Store
	stream string
	done   <-chan struct{}
	access *acl.Checker
}

// New returns the service over store, or an error when opts.Stream is not
// a stream a caller may write.
func New(store *cairn.Store, opts Options) (*Service, error) {
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if err := cairn.ValidateStreamID(opts.Stream); err != nil {
		return nil, fmt.Errorf("umadb stream: %w", err)
	}
	return &Service{store: store, stream: opts.Stream, done: opts.Done, access: opts.Access}, nil
}

// allow returns nil when the call's principal may perform op on stream,
// PERMISSION_DENIED when the ACLs refuse it.
func (s *Service) allow(ctx context.Context, op acl.Operation, stream string) error {
	if s.access == nil {
		return nil
	}
	err := s.access.Check(ctx, op, stream)
	if errors.Is(err, acl.ErrAccessDenied) {
		return errorStatus(codes.PermissionDenied, umadbv1.ErrorResponse_AUTHENTICATION, err.Error())
	}
	if err != nil {
		return statusOf(err)
	}
	return nil
}

// Register registers the service on srv.
func Register(srv grpc.ServiceRegistrar, store *cairn.Store, opts Options) error {
	s, err := New(store, opts)
	if err != nil {
		return err
	}
	umadbv1.RegisterDCBServer(srv, s)
	return nil
}

// Head returns the UmaDB position of the last event, none when the store
// is empty.
func (s *Service) Head(ctx context.Context, _ *umadbv1.HeadRequest) (*umadbv1.HeadResponse, error) {
	if s.access != nil {
		if _, ok := auth.FromContext(ctx); !ok {
			return nil, errorStatus(codes.PermissionDenied, umadbv1.ErrorResponse_AUTHENTICATION, "access denied: Head takes an authenticated user")
		}
	}
	head, ok, err := s.store.LastPosition(ctx)
	if err != nil {
		return nil, statusOf(err)
	}
	if !ok {
		return &umadbv1.HeadResponse{}, nil
	}
	return &umadbv1.HeadResponse{Position: new(head + 1)}, nil
}

// GetTrackingInfo is not supported.
func (s *Service) GetTrackingInfo(context.Context, *umadbv1.TrackingRequest) (*umadbv1.TrackingResponse, error) {
	return nil, errorStatus(codes.Unimplemented, umadbv1.ErrorResponse_INTERNAL, "tracking information is not supported by cairn")
}

// Append appends the events to the service's stream, on the request's
// condition.
func (s *Service) Append(ctx context.Context, req *umadbv1.AppendRequest) (*umadbv1.AppendResponse, error) {
	if req.TrackingInfo != nil {
		return nil, errorStatus(codes.Unimplemented, umadbv1.ErrorResponse_INTERNAL, "tracking information is not supported by cairn; nothing was written")
	}
	if err := s.allow(ctx, acl.Write, s.stream); err != nil {
		return nil, err
	}
	if req.Condition != nil {
		if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
			return nil, err
		}
	}
	events := make([]cairn.EventData, len(req.GetEvents()))
	for i, e := range req.GetEvents() {
		events[i] = cairn.EventData{Type: e.GetEventType(), Tags: e.GetTags(), Data: e.GetData(), ContentType: cairn.ContentBinary}
		if json.Valid(e.GetData()) {
			events[i].ContentType = cairn.ContentJSON
		}
		if id := e.GetUuid(); id != "" {
			u, err := uuid.Parse(id)
			if err != nil {
				return nil, errorStatus(codes.InvalidArgument, umadbv1.ErrorResponse_SERIALIZATION, fmt.Sprintf("events[%d].uuid %q is not a UUID", i, id))
			}
			events[i].ID = u
		}
	}
	var res cairn.AppendResult
	var err error
	if c := req.Condition; c != nil {
		cond := cairn.AppendCondition{FailIfEventsMatch: toQuery(c.GetFailIfEventsMatch())}
		if c.After != nil && c.GetAfter() > 0 {
			cond.After = new(c.GetAfter() - 1)
		}
		res, err = s.store.AppendIf(ctx, s.stream, cairn.Any, cond, events...)
	} else {
		res, err = s.store.Append(ctx, s.stream, cairn.Any, events...)
	}
	if err != nil {
		return nil, statusOf(err)
	}
	return &umadbv1.AppendResponse{Position: res.Position + 1}, nil
}

// toQuery converts UmaDB's query; none is the empty query, which matches
// every event, as in UmaDB.
func toQuery(q *umadbv1.Query) cairn.Query {
	var out cairn.Query
	for _, it := range q.GetItems() {
		out.Items = append(out.Items, cairn.QueryItem{Types: it.GetTypes(), Tags: it.GetTags()})
	}
	return out
}

func fromEvent(e cairn.Event) *umadbv1.SequencedEvent {
	return &umadbv1.SequencedEvent{
		Position: e.Position + 1,
		Event:    &umadbv1.Event{EventType: e.Type, Tags: e.Tags, Data: e.Data, Uuid: e.ID.String()},
	}
}

// statusOf converts a Store's error to UmaDB's status and detail.
func statusOf(err error) error {
	var ce *cairn.ConditionError
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.As(err, &ce):
		return errorStatus(codes.FailedPrecondition, umadbv1.ErrorResponse_INTEGRITY,
			fmt.Sprintf("append condition failed: the event at position %d matches its query", ce.Position+1))
	case errors.Is(err, cairn.ErrDuplicateEvent):
		return errorStatus(codes.FailedPrecondition, umadbv1.ErrorResponse_INTEGRITY, err.Error())
	case errors.Is(err, cairn.ErrInvalidArgument):
		return errorStatus(codes.InvalidArgument, umadbv1.ErrorResponse_INVALID_ARGUMENT, err.Error())
	case errors.Is(err, cairn.ErrCorrupt):
		return errorStatus(codes.DataLoss, umadbv1.ErrorResponse_CORRUPTION, err.Error())
	case errors.Is(err, cairn.ErrNotSupported):
		return errorStatus(codes.Unimplemented, umadbv1.ErrorResponse_INTERNAL, err.Error())
	case errors.Is(err, cairn.ErrClosed):
		return errorStatus(codes.Unavailable, umadbv1.ErrorResponse_IO, err.Error())
	}
	return errorStatus(codes.Internal, umadbv1.ErrorResponse_INTERNAL, err.Error())
}

func errorStatus(code codes.Code, kind umadbv1.ErrorResponse_ErrorType, msg string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&umadbv1.ErrorResponse{Message: msg, ErrorType: kind}); err == nil {
		st = d
	}
	return st.Err()
}
