package kurrentdbsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/server/acl"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamsService implements the KurrentDB v1 Streams service.
type streamsService struct {
	api.UnimplementedStreamsServer
	s *Services
}

// expected converts the protocol's expected_stream_revision oneof, whatever
// message it belongs to.
func expected(opt any) (cairn.ExpectedVersion, error) {
	var rev uint64
	switch v := opt.(type) {
	case nil:
		return cairn.Any, nil
	case *api.AppendReq_Options_Any, *api.DeleteReq_Options_Any, *api.TombstoneReq_Options_Any, *api.BatchAppendReq_Options_Any:
		return cairn.Any, nil
	case *api.AppendReq_Options_NoStream, *api.DeleteReq_Options_NoStream, *api.TombstoneReq_Options_NoStream, *api.BatchAppendReq_Options_NoStream:
		return cairn.NoStream, nil
	case *api.AppendReq_Options_StreamExists, *api.DeleteReq_Options_StreamExists, *api.TombstoneReq_Options_StreamExists, *api.BatchAppendReq_Options_StreamExists:
		return cairn.StreamExists, nil
	case *api.AppendReq_Options_Revision:
		rev = v.Revision
	case *api.DeleteReq_Options_Revision:
		rev = v.Revision
	case *api.TombstoneReq_Options_Revision:
		rev = v.Revision
	case *api.BatchAppendReq_Options_StreamPosition:
		rev = v.StreamPosition
	default:
		return cairn.Any, invalid("unknown expected stream revision %T", opt)
	}
	if rev > math.MaxInt64 {
		return cairn.Any, invalid("expected revision %d is out of range", rev)
	}
	return cairn.Exact(int64(rev)), nil
}

// appendEvents appends events to stream. An append without events writes
// nothing and checks the expectation, as KurrentDB does; its result has
// version -1 when the stream does not exist.
func (s *Services) appendEvents(ctx context.Context, stream string, exp cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	start := time.Now()
	var res cairn.AppendResult
	var err error
	if err := checkWrite(stream, events); err != nil {
		s.observeAppend(start, "error")
		return cairn.AppendResult{}, err
	}
	if _, ok := metaStream(stream); ok {
		res, err = s.appendMeta(ctx, stream, exp, events)
	} else if len(events) == 0 {
		res, err = s.checkOnly(ctx, stream, exp)
	} else {
		res, err = s.writer(stream).Append(ctx, stream, exp, events...)
		if errors.Is(err, cairn.ErrDuplicateEvent) {
			// An event id reused outside a retry: the stream is not
			// where the writer thought it was.
			res, err = s.checkOnly(ctx, stream, exp)
			if err == nil {
				err = fmt.Errorf("append to %q: %w", stream, cairn.ErrDuplicateEvent)
			}
		}
	}
	switch {
	case err == nil:
		s.observeAppend(start, "ok")
	case errors.Is(err, cairn.ErrWrongExpectedVersion):
		s.observeAppend(start, "wrong_expected_version")
	default:
		s.observeAppend(start, "error")
	}
	return res, err
}

// writer returns the Store view that writes stream: the system view for
// a system stream (its name starts with '$') when the host checks ACLs,
// which let only administrators write one unless its ACL says otherwise,
// as in KurrentDB. Without ACL checks, system streams are not written.
func (s *Services) writer(stream string) *cairn.Store {
	if s.writesSystem(stream) {
		return s.store.System()
	}
	return s.store
}

// writesSystem reports whether writes to stream go through the system
// view.
func (s *Services) writesSystem(stream string) bool {
	return s.access != nil && strings.HasPrefix(stream, "$")
}

// batchWriter returns the Store view that writes every stream of reqs
// (see writer).
func (s *Services) batchWriter(reqs []cairn.AppendRequest) *cairn.Store {
	for _, r := range reqs {
		if s.writesSystem(r.Stream) {
			return s.store.System()
		}
	}
	return s.store
}

// checkWrite refuses, whatever the protocol, an append that stream cannot
// take: to one of the standard projections' streams, which are read from
// the index and never written, or of events that the ACLs could not read
// (a metadata stream's must be JSON objects whose $acl reads, $settings'
// default ACLs: see acl.CheckData), which would grant nothing to anyone
// but administrators.
func checkWrite(stream string, events []cairn.EventData) error {
	if err := links.CheckWrite(stream); err != nil {
		return err
	}
	for i, e := range events {
		if err := acl.CheckData(stream, e.Data); err != nil {
			return &cairn.InvalidArgumentError{Field: fmt.Sprintf("events[%d].data", i), Reason: err.Error()}
		}
	}
	return nil
}

// checkOnly checks exp against the stream's current version.
func (s *Services) checkOnly(ctx context.Context, stream string, exp cairn.ExpectedVersion) (cairn.AppendResult, error) {
	validate := cairn.ValidateStreamID
	if s.writesSystem(stream) {
		validate = cairn.ValidateSystemStreamID
	}
	if err := validate(stream); err != nil {
		return cairn.AppendResult{}, err
	}
	cur, err := s.currentVersion(ctx, stream)
	if err != nil {
		return cairn.AppendResult{}, err
	}
	if err := exp.Check(stream, cur); err != nil {
		return cairn.AppendResult{}, err
	}
	head, _ := s.head(ctx)
	return cairn.AppendResult{Version: cur, Position: head}, nil
}

// currentVersion is the stream's version, -1 when it does not exist.
func (s *Services) currentVersion(ctx context.Context, stream string) (int64, error) {
	v, err := s.links.StreamVersion(ctx, stream)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		return -1, nil
	}
	return v, err
}

// head returns the position of the last event in the global log, and false
// when the log is empty.
func (s *Services) head(ctx context.Context) (uint64, bool) {
	last, err := s.store.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
	if err != nil || len(last) == 0 {
		return 0, false
	}
	return last[0].Position, true
}

// Append is the client-streaming append: options, then proposed messages.
func (ss *streamsService) Append(stream grpc.ClientStreamingServer[api.AppendReq, api.AppendResp]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return invalid("an append starts with its options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	exp, err := expected(opts.ExpectedStreamRevision)
	if err != nil {
		return err
	}
	size := appendSize{limit: ss.s.opts.MaxAppendBytes}
	if err := ss.s.allow(ctx, acl.Write, name); err != nil {
		drainAppend(stream, drainFactor*size.limit) // so that the client reads the status, not EOF
		return err
	}
	var events []cairn.EventData
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return invalid("append to %q: message %d is not a proposed message", name, len(events)+1)
		}
		if !size.add(appendReqSize(proposedSize(pm.Id, pm.Metadata, pm.CustomMetadata, pm.Data)), 1) {
			err := size.tooLarge(ctx)
			drainAppend(stream, drainFactor*size.limit) // so that the client reads the status, not EOF
			return err
		}
		e, err := eventFromProposed(len(events), pm.Id, pm.Metadata, pm.CustomMetadata, pm.Data)
		if err != nil {
			return invalid("append to %q: %v", name, err)
		}
		events = append(events, e)
	}
	res, err := ss.s.appendEvents(ctx, name, exp, events)
	if err != nil {
		var wev *cairn.WrongExpectedVersionError
		if errors.As(err, &wev) {
			return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrongExpectedVersion(wev)}})
		}
		if errors.Is(err, cairn.ErrDuplicateEvent) {
			return status.Error(codes.AlreadyExists, err.Error())
		}
		return rpcError(ctx, name, err)
	}
	return stream.SendAndClose(appendSuccess(res))
}

// successAnswer holds the messages of an append's success answer, so that
// they take one allocation rather than six.
type successAnswer struct {
	resp     api.AppendResp
	result   api.AppendResp_Success_
	ok       api.AppendResp_Success
	position api.AppendResp_Success_Position
	at       api.AppendResp_Position
	revision api.AppendResp_Success_CurrentRevision
	noStream api.AppendResp_Success_NoStream
	empty    shared.Empty
}

// appendSuccess is the answer of an append that wrote (or, for one without
// events, checked) res.
func appendSuccess(res cairn.AppendResult) *api.AppendResp {
	a := new(successAnswer)
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

// wrongExpectedVersion fills both the current fields and those of servers
// before 20.6, which older clients read.
func wrongExpectedVersion(w *cairn.WrongExpectedVersionError) *api.AppendResp_WrongExpectedVersion {
	r := &api.AppendResp_WrongExpectedVersion{}
	if w.Actual < 0 {
		r.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		r.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		r.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(w.Actual)}
		r.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(w.Actual)}
	}
	e := w.Expected
	switch {
	case e.IsAny():
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		r.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	case e.IsNoStream():
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case e.IsStreamExists():
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		r.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	default:
		v, _ := e.Version()
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(v)}
		r.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(v)}
	}
	return r
}

// remove soft-deletes or tombstones stream if exp holds; the engine checks
// exp atomically with the delete. As in KurrentDB, soft-deleting a stream
// that does not exist (never written, or deleted and not written since)
// fails with wrong-expected-version whatever exp says, its actual version
// -1, while a tombstone of a stream never written succeeds when exp allows
// a missing stream (Any, NoStream).
func (s *Services) remove(ctx context.Context, stream string, exp cairn.ExpectedVersion, hard bool) (uint64, error) {
	var err error
	if hard {
		err = s.writer(stream).TombstoneStream(ctx, stream, exp)
	} else {
		err = s.writer(stream).DeleteStream(ctx, stream, exp)
		if errors.Is(err, cairn.ErrStreamNotFound) {
			err = &cairn.WrongExpectedVersionError{Op: "delete", Stream: stream, Expected: exp, Actual: -1}
		}
	}
	if err != nil {
		return 0, err
	}
	s.local.fire()
	head, _ := s.head(ctx)
	return head, nil
}

// Delete soft-deletes a stream.
func (ss *streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	opts := req.GetOptions()
	name := string(opts.GetStreamIdentifier().GetStreamName())
	exp, err := expected(opts.GetExpectedStreamRevision())
	if err != nil {
		return nil, err
	}
	if err := ss.s.allow(ctx, acl.Delete, name); err != nil {
		return nil, err
	}
	pos, err := ss.s.remove(ctx, name, exp, false)
	if err != nil {
		return nil, rpcError(ctx, name, err)
	}
	ss.s.log.Info("stream deleted", "stream", name)
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// Tombstone hard-deletes a stream: it can never be written or read again.
func (ss *streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	opts := req.GetOptions()
	name := string(opts.GetStreamIdentifier().GetStreamName())
	exp, err := expected(opts.GetExpectedStreamRevision())
	if err != nil {
		return nil, err
	}
	if err := ss.s.allow(ctx, acl.Delete, name); err != nil {
		return nil, err
	}
	pos, err := ss.s.remove(ctx, name, exp, true)
	if err != nil {
		return nil, rpcError(ctx, name, err)
	}
	ss.s.log.Info("stream tombstoned", "stream", name)
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}
