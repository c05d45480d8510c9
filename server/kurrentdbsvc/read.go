package kurrentdbsvc

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/server/acl"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Read serves reads of a stream or of $all, and subscriptions (a Read whose
// count option is "subscription").
func (ss *streamsService) Read(req *api.ReadReq, out grpc.ServerStreamingServer[api.ReadResp]) error {
	opts := req.GetOptions()
	if opts == nil {
		return invalid("a read needs options")
	}
	r := &reader{
		s:          ss.s,
		out:        out,
		uuidString: opts.GetUuidOption().GetString_() != nil,
		resolve:    opts.GetResolveLinks(),
	}
	f, err := newFilter(opts.GetFilter())
	if err != nil {
		return err
	}
	r.filter = f
	// A read or subscription of $all needs the right to read $all, as in
	// KurrentDB, filtered or not.
	target := acl.AllStream
	if so, ok := opts.StreamOption.(*api.ReadReq_Options_Stream); ok {
		target = string(so.Stream.GetStreamIdentifier().GetStreamName())
	}
	if err := ss.s.allow(out.Context(), acl.Read, target); err != nil {
		return err
	}
	if err := ss.s.syncIfLeaderRequired(out.Context()); err != nil {
		return err
	}
	if opts.GetSubscription() != nil {
		return r.subscribe(out.Context(), opts)
	}
	if opts.ReadDirection != api.ReadReq_Options_Forwards && opts.ReadDirection != api.ReadReq_Options_Backwards {
		return invalid("unknown read direction %d", opts.ReadDirection)
	}
	dir := cairn.Forward
	if opts.ReadDirection == api.ReadReq_Options_Backwards {
		dir = cairn.Backward
	}
	switch so := opts.StreamOption.(type) {
	case *api.ReadReq_Options_Stream:
		return r.readStream(out.Context(), so.Stream, dir, opts.GetCount())
	case *api.ReadReq_Options_All:
		return r.readAll(out.Context(), so.All, dir, opts.GetCount())
	}
	return invalid("a read names a stream or $all")
}

// reader sends the events of one Read.
type reader struct {
	s          *Services
	out        grpc.ServerStreamingServer[api.ReadResp]
	uuidString bool
	resolve    bool // resolveLinkTos
	filter     *filter
	// sub is the id of the subscription the reader serves; empty for a
	// read.
	sub string
	buf []byte // the encoding of the last event sent, reused
}

func (r *reader) send(ctx context.Context, e *links.Resolved) error {
	if r.sub == "" || r.s.deliveries == nil {
		return r.out.Send(readEvent(e, r.uuidString, &r.buf))
	}
	ev := &e.Event
	if e.Link && e.Target != nil {
		ev = e.Target
	}
	done := r.s.deliveries.Deliver(ctx, r.sub, ev)
	err := r.out.Send(readEvent(e, r.uuidString, &r.buf))
	if done != nil {
		done(err)
	}
	return err
}

// sendEvent sends an event of the log, its link resolved when the read
// resolves links.
func (r *reader) sendEvent(ctx context.Context, e cairn.Event) error {
	res := []links.Resolved{{Event: e}}
	if r.resolve && links.IsLink(&e) {
		var err error
		if res, err = r.s.links.Resolve(ctx, []cairn.Event{e}); err != nil {
			return rpcError(ctx, e.StreamID, err)
		}
	}
	return r.send(ctx, &res[0])
}

func (r *reader) notFound(stream string) error {
	return r.out.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
	}}})
}

// readStream reads at most count events of a stream. Start is revision 0;
// End is past the last event forwards and the last event backwards.
func (r *reader) readStream(ctx context.Context, so *api.ReadReq_Options_StreamOptions, dir cairn.Direction, count uint64) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	var from int64
	switch v := so.RevisionOption.(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		from = 0
	case *api.ReadReq_Options_StreamOptions_End:
		from = math.MaxInt64
		if dir == cairn.Backward {
			from = cairn.StreamEnd
		}
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = int64(min(v.Revision, math.MaxInt64))
	default:
		return invalid("read %q: no revision to read from", name)
	}
	meta, err := r.s.metadataOf(ctx, name)
	if err != nil {
		return rpcError(ctx, name, err)
	}
	last, err := r.s.links.StreamVersion(ctx, name)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		if _, ok := metaStream(name); ok {
			return nil // no metadata: an empty read, which clients take as none
		}
		return r.notFound(name)
	}
	if err != nil {
		return rpcError(ctx, name, err)
	}
	lowest, oldest := meta.visibility(last, time.Now())
	if dir == cairn.Forward {
		from = max(from, lowest)
	}
	var sent uint64
	for {
		page, err := r.s.links.ReadStream(ctx, name, from, readPage, readPageBytes, dir, r.resolve)
		if errors.Is(err, cairn.ErrStreamNotFound) {
			return r.notFound(name)
		}
		if err != nil {
			return rpcError(ctx, name, err)
		}
		for i := range page.Events {
			e := &page.Events[i]
			if sent >= count || e.Event.Version < lowest {
				return nil
			}
			if e.Event.Created.Before(oldest) {
				continue
			}
			if err := r.send(ctx, e); err != nil {
				return err
			}
			sent++
		}
		if !page.More || len(page.Events) == 0 {
			return nil
		}
		v := page.Events[len(page.Events)-1].Event.Version
		if dir == cairn.Forward {
			from = v + 1
		} else if from = v - 1; from < 0 {
			return nil
		}
	}
}

// readAll reads at most count events of the global log that pass the
// filter. A position is inclusive in both directions: forwards from p
// starts at p, backwards from p starts at p.
//
// A filter's search window (its max) bounds the events the read examines:
// when it has examined that many without finding count matches, it sends a
// checkpoint with the position of the last event examined and ends, so that
// the client can read on from after it. A filter without a max searches
// until count matches or the end of the log, as long as the caller's
// deadline allows.
func (r *reader) readAll(ctx context.Context, ao *api.ReadReq_Options_AllOptions, dir cairn.Direction, count uint64) error {
	var from uint64
	switch v := ao.AllOption.(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		if dir == cairn.Backward {
			return nil
		}
		from = 0
	case *api.ReadReq_Options_AllOptions_End:
		if dir == cairn.Forward {
			return nil
		}
		from = cairn.LogEnd
	case *api.ReadReq_Options_AllOptions_Position:
		from = v.Position.GetCommitPosition()
	default:
		return invalid("read $all: no position to read from")
	}
	if r.filter != nil && r.filter.index != nil {
		return r.readIndex(ctx, from, dir, count)
	}
	var sent, searched uint64
	var window uint64
	if r.filter != nil {
		window = r.filter.window
	}
	for e, err := range r.s.store.All(ctx, from, dir) {
		if err != nil {
			return rpcError(ctx, "$all", err)
		}
		if sent >= count {
			return nil
		}
		searched++
		e = deletionAsKurrent(e)
		if r.filter.match(e.StreamID, e.Type) {
			if err := r.sendEvent(ctx, e); err != nil {
				return err
			}
			sent++
		}
		if window > 0 && searched >= window {
			if sent >= count {
				return nil
			}
			return r.checkpoint(e.Position)
		}
	}
	return nil
}

// checkpoint tells a filtered read or subscription that the events up to
// position have been examined.
func (r *reader) checkpoint(position uint64) error {
	return r.out.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
		CommitPosition: position, PreparePosition: position, Timestamp: timestamppb.Now(),
	}}})
}
