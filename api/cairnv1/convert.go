package cairnv1

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MaxReadCount is the most events one ReadStream or ReadAll response holds;
// a larger count is served in part, and the client reads on from there.
const MaxReadCount = 4096

// FromEventData converts an event as written to its wire form.
func FromEventData(e cairn.EventData) *EventData {
	out := &EventData{Type: e.Type, ContentType: ContentType(e.ContentType), Data: e.Data, Metadata: e.Metadata, Tags: e.Tags}
	if e.ID != uuid.Nil {
		out.Id = e.ID[:]
	}
	return out
}

// ToEventData converts the wire form of an event as written.
func ToEventData(e *EventData, field string) (cairn.EventData, error) {
	out := cairn.EventData{Type: e.GetType(), ContentType: cairn.ContentType(e.GetContentType()), Data: e.GetData(), Metadata: e.GetMetadata(), Tags: e.GetTags()}
	if id := e.GetId(); len(id) > 0 {
		u, err := uuid.FromBytes(id)
		if err != nil {
			return out, &cairn.InvalidArgumentError{Field: field + ".id", Reason: "an event id is 16 bytes, got " + strconv.Itoa(len(id))}
		}
		out.ID = u
	}
	return out, nil
}

// FromEvent converts a recorded event to its wire form.
func FromEvent(e cairn.Event) *Event {
	return &Event{
		Id: e.ID[:], Type: e.Type, ContentType: ContentType(e.ContentType), Data: e.Data, Metadata: e.Metadata, Tags: e.Tags,
		StreamId: e.StreamID, Version: e.Version, Position: e.Position, Created: timestamppb.New(e.Created),
	}
}

// ToEvent converts the wire form of a recorded event.
func ToEvent(e *Event) (cairn.Event, error) {
	id, err := uuid.FromBytes(e.GetId())
	if err != nil {
		return cairn.Event{}, fmt.Errorf("event at position %d has a malformed id: %v", e.GetPosition(), err)
	}
	return cairn.Event{
		EventData: cairn.EventData{ID: id, Type: e.GetType(), ContentType: cairn.ContentType(e.GetContentType()), Data: e.GetData(), Metadata: e.GetMetadata(), Tags: e.GetTags()},
		StreamID:  e.GetStreamId(), Version: e.GetVersion(), Position: e.GetPosition(), Created: e.GetCreated().AsTime(),
	}, nil
}

// FromEvents converts recorded events to their wire form.
func FromEvents(events []cairn.Event) []*Event {
	out := make([]*Event, len(events))
	for i, e := range events {
		out[i] = FromEvent(e)
	}
	return out
}

// ToEvents converts the wire form of recorded events.
func ToEvents(events []*Event) ([]cairn.Event, error) {
	out := make([]cairn.Event, len(events))
	for i, e := range events {
		var err error
		if out[i], err = ToEvent(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// FromAppendRequest converts one stream's append to its wire form.
func FromAppendRequest(r cairn.AppendRequest) *AppendRequest {
	out := &AppendRequest{Stream: r.Stream, ExpectedVersion: r.Expected.Int64(), Events: make([]*EventData, len(r.Events)), Condition: FromCondition(r.Condition)}
	for i, e := range r.Events {
		out.Events[i] = FromEventData(e)
	}
	return out
}

// ToAppendRequest converts the wire form of one stream's append.
func ToAppendRequest(r *AppendRequest) (cairn.AppendRequest, error) {
	exp, err := cairn.ParseExpectedVersion(r.GetExpectedVersion())
	if err != nil {
		return cairn.AppendRequest{}, err
	}
	out := cairn.AppendRequest{Stream: r.GetStream(), Expected: exp, Events: make([]cairn.EventData, len(r.GetEvents())), Condition: ToCondition(r.GetCondition())}
	for i, e := range r.GetEvents() {
		if out.Events[i], err = ToEventData(e, "events["+strconv.Itoa(i)+"]"); err != nil {
			return out, err
		}
	}
	return out, nil
}

// FromSnapshot converts a snapshot to its wire form.
func FromSnapshot(s cairn.Snapshot) *Snapshot {
	out := &Snapshot{StreamId: s.StreamID, Version: s.Version, Data: s.Data, Metadata: s.Metadata}
	if !s.Created.IsZero() {
		out.Created = timestamppb.New(s.Created)
	}
	return out
}

// ToSnapshot converts the wire form of a snapshot.
func ToSnapshot(s *Snapshot) cairn.Snapshot {
	out := cairn.Snapshot{StreamID: s.GetStreamId(), Version: s.GetVersion(), Data: s.GetData(), Metadata: s.GetMetadata()}
	if s.GetCreated() != nil {
		out.Created = s.GetCreated().AsTime()
	}
	return out
}

// ErrorDetail describes err as an [Error] message.
func ErrorDetail(err error) *Error {
	if err == nil {
		return &Error{}
	}
	out := &Error{Code: Code_CODE_UNKNOWN, Message: err.Error()}
	var (
		wev *cairn.WrongExpectedVersionError
		ce  *cairn.ConditionError
		iae *cairn.InvalidArgumentError
		se  *cairn.StreamError
	)
	switch {
	case errors.As(err, &wev):
		out.Code, out.Stream, out.ExpectedVersion, out.ActualVersion, out.Op = Code_CODE_WRONG_EXPECTED_VERSION, wev.Stream, wev.Expected.Int64(), wev.Actual, wev.Op
	case errors.As(err, &ce):
		out.Code, out.Position = Code_CODE_CONDITION_FAILED, ce.Position
	case errors.As(err, &iae):
		out.Code, out.Field, out.Message = Code_CODE_INVALID_ARGUMENT, iae.Field, iae.Reason
	case errors.As(err, &se):
		out.Stream, out.Op = se.Stream, se.Op
		out.Code = sentinelCode(se.Err)
	default:
		out.Code = sentinelCode(err)
	}
	return out
}

var sentinels = []struct {
	err  error
	code Code
	grpc codes.Code
}{
	{cairn.ErrWrongExpectedVersion, Code_CODE_WRONG_EXPECTED_VERSION, codes.FailedPrecondition},
	{cairn.ErrConditionFailed, Code_CODE_CONDITION_FAILED, codes.FailedPrecondition},
	{cairn.ErrStreamNotFound, Code_CODE_STREAM_NOT_FOUND, codes.NotFound},
	{cairn.ErrStreamDeleted, Code_CODE_STREAM_DELETED, codes.FailedPrecondition},
	{cairn.ErrInvalidArgument, Code_CODE_INVALID_ARGUMENT, codes.InvalidArgument},
	{cairn.ErrDuplicateEvent, Code_CODE_DUPLICATE_EVENT, codes.AlreadyExists},
	{cairn.ErrNotSupported, Code_CODE_NOT_SUPPORTED, codes.Unimplemented},
	{cairn.ErrClosed, Code_CODE_CLOSED, codes.Unavailable},
	{cairn.ErrCorrupt, Code_CODE_CORRUPT, codes.DataLoss},
}

func sentinelCode(err error) Code {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return Code_CODE_UNKNOWN
}

// ErrorFromDetail rebuilds the typed cairn error that d describes.
func ErrorFromDetail(d *Error) error {
	var sentinel error
	for _, s := range sentinels {
		if s.code == d.GetCode() {
			sentinel = s.err
		}
	}
	switch d.GetCode() {
	case Code_CODE_WRONG_EXPECTED_VERSION:
		exp, _ := cairn.ParseExpectedVersion(d.GetExpectedVersion())
		return &cairn.WrongExpectedVersionError{Op: d.GetOp(), Stream: d.GetStream(), Expected: exp, Actual: d.GetActualVersion()}
	case Code_CODE_CONDITION_FAILED:
		return &cairn.ConditionError{Position: d.GetPosition()}
	case Code_CODE_INVALID_ARGUMENT:
		return &cairn.InvalidArgumentError{Field: d.GetField(), Reason: d.GetMessage()}
	case Code_CODE_UNKNOWN:
		if d.GetMessage() == "" {
			return nil
		}
		return errors.New(d.GetMessage())
	}
	if d.GetOp() != "" || d.GetStream() != "" {
		return &cairn.StreamError{Op: d.GetOp(), Stream: d.GetStream(), Err: sentinel}
	}
	return &remoteError{msg: d.GetMessage(), err: sentinel}
}

// remoteError carries a server's message and the sentinel it matched.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }

// Status converts err, as returned by a Store, to a gRPC status error with an
// [Error] (or, for a batch, a [BatchFailure]) in its details.
func Status(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	code := codes.Internal
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			code = s.grpc
			break
		}
	}
	st := status.New(code, err.Error())
	var be *cairn.BatchError
	var detailed *status.Status
	if errors.As(err, &be) {
		bf := &BatchFailure{Outcomes: make([]*Error, len(be.Errs))}
		for i, e := range be.Errs {
			bf.Outcomes[i] = ErrorDetail(e)
		}
		detailed, err = st.WithDetails(bf)
	} else {
		detailed, err = st.WithDetails(ErrorDetail(err))
	}
	if err != nil {
		return st.Err()
	}
	return detailed.Err()
}

// FromStatus converts an error returned by a cairn.v1 call back to the typed
// cairn error the server reported; context errors come back as the context's.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Canceled:
		return errors.Join(context.Canceled, err)
	case codes.DeadlineExceeded:
		return errors.Join(context.DeadlineExceeded, err)
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *Error:
			return ErrorFromDetail(d)
		case *BatchFailure:
			be := &cairn.BatchError{Errs: make([]error, len(d.GetOutcomes()))}
			for i, o := range d.GetOutcomes() {
				be.Errs[i] = ErrorFromDetail(o)
			}
			return be
		}
	}
	return err
}
