package kurrentdbsvc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/acl"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// BatchAppend is the bidirectional batch append: requests with the same
// correlation id accumulate proposed messages until one is final; then the
// events are appended and one response answers the correlation id. The
// options travel in the first request of a correlation id.
//
// Appends run concurrently, as KurrentDB runs them: a client (the .NET
// client appends everything over one such call) may have many in flight,
// and the engine commits those that meet in one group. Appends to the
// same stream run in the order their final requests arrived; answers come
// as appends finish, each naming its correlation id.
//
// MaxAppendBytes bounds what one call holds: the events of all its
// correlation ids still open and of its appends in flight. A correlation
// id that passes it once the appends in flight are done is answered with
// the maximum-append-size error and nothing of it is written.
func (ss *streamsService) BatchAppend(stream grpc.BidiStreamingServer[api.BatchAppendReq, api.BatchAppendResp]) error {
	ctx := stream.Context()
	type pending struct {
		opts     *api.BatchAppendReq_Options
		deadline time.Time // zero: none
		events   []cairn.EventData
		size     int  // what it adds to held
		failed   bool // answered with an error: the rest of it is dropped
	}
	open := map[string]*pending{}
	held := appendSize{limit: ss.s.opts.MaxAppendBytes}
	w := newBatchWriter(ctx, ss, stream)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// The client sends no more: answer every append in flight.
			return w.wait()
		}
		if err != nil {
			return errors.Join(err, w.wait())
		}
		key := correlationKey(req.GetCorrelationId())
		p := open[key]
		if p == nil {
			p = &pending{}
			open[key] = p
		}
		if req.Options != nil {
			p.opts = req.Options
			p.deadline = batchDeadline(req.Options, time.Now())
		}
		for _, pm := range req.ProposedMessages {
			if p.failed {
				break
			}
			size := proposedSize(pm.Id, pm.Metadata, pm.CustomMetadata, pm.Data)
			w.makeRoom(held.n + size + AppendEventOverhead)
			n := held.n
			fits := held.add(size, 1) && held.n+w.inFlight() <= held.limit
			p.size += held.n - n
			var resp *api.BatchAppendResp
			if !fits {
				// One detail, as KurrentDB sends: the clients read the
				// status's details as a single message.
				resp = batchError(req.CorrelationId, p.opts, codes.InvalidArgument, held.status().Message(),
					&shared.MaximumAppendSizeExceeded{MaxAppendSize: uint32(min(held.limit, math.MaxUint32))})
			} else if e, err := eventFromProposed(len(p.events), pm.Id, pm.Metadata, pm.CustomMetadata, pm.Data); err != nil {
				resp = batchError(req.CorrelationId, p.opts, codes.InvalidArgument, err.Error(), nil)
			} else {
				p.events = append(p.events, e)
				continue
			}
			// Refuse the whole correlation id, once: nothing of it is
			// written, and its later requests are read and dropped.
			held.n -= p.size
			p.failed, p.events, p.size = true, nil, 0
			if err := w.send(resp); err != nil {
				return errors.Join(err, w.wait())
			}
			break
		}
		if !req.IsFinal {
			continue
		}
		delete(open, key)
		held.n -= p.size
		if p.failed {
			continue
		}
		if err := w.start(&batchAppend{corr: req.CorrelationId, opts: p.opts, deadline: p.deadline, events: p.events, size: p.size}); err != nil {
			return errors.Join(err, w.wait())
		}
	}
}

// correlationKey tells correlation ids apart: a string id by its text, a
// structured one by its two halves (without the cost of the message's
// String, which formats it as text).
func correlationKey(id *shared.UUID) string {
	switch v := id.GetValue().(type) {
	case *shared.UUID_String_:
		return "s" + v.String_
	case *shared.UUID_Structured_:
		var b [17]byte
		b[0] = 'b'
		binary.BigEndian.PutUint64(b[1:], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(b[9:], uint64(v.Structured.GetLeastSignificantBits()))
		return string(b[:])
	}
	return ""
}

// batchDeadline returns when the append of opts, whose options arrived at
// now, must be done: the client's deadline, an absolute time
// (deadline_21_10_0, which the clients of 21.10 send) or a duration from
// the arrival of the options (deadline); zero when it gives none.
func batchDeadline(opts *api.BatchAppendReq_Options, now time.Time) time.Time {
	switch {
	case opts.GetDeadline_21_10_0() != nil:
		return opts.GetDeadline_21_10_0().AsTime()
	case opts.GetDeadline() != nil:
		return now.Add(opts.GetDeadline().AsDuration())
	}
	return time.Time{}
}

// timeoutMessage is the message of KurrentDB's Timeout status.
const timeoutMessage = "Timeout"

func (ss *streamsService) batch(ctx context.Context, corr *shared.UUID, opts *api.BatchAppendReq_Options, deadline time.Time, events []cairn.EventData) *api.BatchAppendResp {
	if opts == nil {
		return batchError(corr, nil, codes.InvalidArgument, "a batch append needs options in its first request", nil)
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	exp, err := expected(opts.ExpectedStreamPosition)
	if err != nil {
		return batchError(corr, opts, codes.InvalidArgument, err.Error(), nil)
	}
	if ss.s.access != nil {
		// The refusal answers this correlation id only: no trailer, the
		// call goes on.
		if err := ss.s.access.Check(ctx, acl.Write, name); errors.Is(err, acl.ErrAccessDenied) {
			return batchError(corr, opts, codes.PermissionDenied, err.Error(), nil)
		} else if err != nil {
			return batchError(corr, opts, status.Code(rpcError(ctx, name, err)), err.Error(), nil)
		}
	}
	if !deadline.IsZero() {
		// As KurrentDB does: past its deadline, an append is answered
		// with the Timeout status and not written.
		if !time.Now().Before(deadline) {
			return batchError(corr, opts, codes.DeadlineExceeded, timeoutMessage, &shared.Timeout{})
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	res, err := ss.s.appendEvents(ctx, name, exp, events)
	var wev *cairn.WrongExpectedVersionError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return batchError(corr, opts, codes.DeadlineExceeded, timeoutMessage, &shared.Timeout{})
	case errors.As(err, &wev):
		detail := &shared.WrongExpectedVersion{}
		if wev.Actual < 0 {
			detail.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &emptypb.Empty{}}
		} else {
			detail.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentStreamRevision{CurrentStreamRevision: uint64(wev.Actual)}
		}
		switch e := wev.Expected; {
		case e.IsAny():
			detail.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedAny{ExpectedAny: &emptypb.Empty{}}
		case e.IsNoStream():
			detail.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &emptypb.Empty{}}
		case e.IsStreamExists():
			detail.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &emptypb.Empty{}}
		default:
			v, _ := e.Version()
			detail.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamPosition{ExpectedStreamPosition: uint64(v)}
		}
		return batchError(corr, opts, codes.FailedPrecondition, err.Error(), detail)
	case errors.Is(err, cairn.ErrStreamDeleted):
		return batchError(corr, opts, codes.FailedPrecondition, err.Error(),
			&shared.StreamDeleted{StreamIdentifier: opts.GetStreamIdentifier()})
	case errors.Is(err, cairn.ErrInvalidArgument):
		return batchError(corr, opts, codes.InvalidArgument, err.Error(), &shared.BadRequest{Message: err.Error()})
	case err != nil:
		return batchError(corr, opts, status.Code(rpcError(ctx, name, err)), err.Error(), nil)
	}
	return batchSuccess(corr, opts, res)
}

// batchAnswer holds the messages of a batch append's success answer, so
// that they take one allocation rather than eight.
type batchAnswer struct {
	resp         api.BatchAppendResp
	result       api.BatchAppendResp_Success_
	ok           api.BatchAppendResp_Success
	position     api.BatchAppendResp_Success_Position
	at           shared.AllStreamPosition
	revision     api.BatchAppendResp_Success_CurrentRevision
	noStream     api.BatchAppendResp_Success_NoStream
	expectedAt   api.BatchAppendResp_StreamPosition
	expectedNone api.BatchAppendResp_NoStream
	expectedAny  api.BatchAppendResp_Any
	expectedSome api.BatchAppendResp_StreamExists
	empty        emptypb.Empty
}

// batchSuccess answers corr, whose append with opts wrote res.
func batchSuccess(corr *shared.UUID, opts *api.BatchAppendReq_Options, res cairn.AppendResult) *api.BatchAppendResp {
	a := new(batchAnswer)
	a.resp.CorrelationId = corr
	a.resp.StreamIdentifier = opts.StreamIdentifier
	switch v := opts.ExpectedStreamPosition.(type) {
	case *api.BatchAppendReq_Options_StreamPosition:
		a.expectedAt.StreamPosition = v.StreamPosition
		a.resp.ExpectedStreamPosition = &a.expectedAt
	case *api.BatchAppendReq_Options_NoStream:
		a.expectedNone.NoStream = &a.empty
		a.resp.ExpectedStreamPosition = &a.expectedNone
	case *api.BatchAppendReq_Options_StreamExists:
		a.expectedSome.StreamExists = &a.empty
		a.resp.ExpectedStreamPosition = &a.expectedSome
	default:
		a.expectedAny.Any = &a.empty
		a.resp.ExpectedStreamPosition = &a.expectedAny
	}
	a.at.CommitPosition, a.at.PreparePosition = res.Position, res.Position
	a.position.Position = &a.at
	a.ok.PositionOption = &a.position
	if res.Version < 0 {
		a.noStream.NoStream = &a.empty
		a.ok.CurrentRevisionOption = &a.noStream
	} else {
		a.revision.CurrentRevision = uint64(res.Version)
		a.ok.CurrentRevisionOption = &a.revision
	}
	a.result.Success = &a.ok
	a.resp.Result = &a.result
	return &a.resp
}

func batchResp(corr *shared.UUID, opts *api.BatchAppendReq_Options) *api.BatchAppendResp {
	resp := &api.BatchAppendResp{CorrelationId: corr}
	if opts == nil {
		return resp
	}
	resp.StreamIdentifier = opts.StreamIdentifier
	switch v := opts.ExpectedStreamPosition.(type) {
	case *api.BatchAppendReq_Options_StreamPosition:
		resp.ExpectedStreamPosition = &api.BatchAppendResp_StreamPosition{StreamPosition: v.StreamPosition}
	case *api.BatchAppendReq_Options_NoStream:
		resp.ExpectedStreamPosition = &api.BatchAppendResp_NoStream{NoStream: &emptypb.Empty{}}
	case *api.BatchAppendReq_Options_StreamExists:
		resp.ExpectedStreamPosition = &api.BatchAppendResp_StreamExists{StreamExists: &emptypb.Empty{}}
	default:
		resp.ExpectedStreamPosition = &api.BatchAppendResp_Any{Any: &emptypb.Empty{}}
	}
	return resp
}

func batchError(corr *shared.UUID, opts *api.BatchAppendReq_Options, c codes.Code, msg string, detail proto.Message) *api.BatchAppendResp {
	st := &rpcstatus.Status{Code: int32(c), Message: msg}
	if detail == nil {
		// Every error carries a detail, as KurrentDB's do: the Node.js
		// client reads the detail's type without checking that there is
		// one, and fails with a TypeError when there is none.
		switch c {
		case codes.PermissionDenied:
			detail = &shared.AccessDenied{}
		case codes.InvalidArgument:
			detail = &shared.BadRequest{Message: msg}
		default:
			detail = &shared.Unknown{}
		}
	}
	if detail != nil {
		if a, err := anypb.New(detail); err == nil {
			st.Details = []*anypb.Any{a}
		}
	}
	resp := batchResp(corr, opts)
	resp.Result = &api.BatchAppendResp_Error{Error: st}
	return resp
}
