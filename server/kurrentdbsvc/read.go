package kurrentdbsvc

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// readPage is how many events a subscription reads from the Store at once,
// and readPageBytes how many bytes of data and metadata: a page ends after
// the event that reaches either.
const (
	readPage      = 256
	readPageBytes = cairn.DefaultReadBatchBytes
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
	}
	f, err := newFilter(opts.GetFilter())
	if err != nil {
		return err
	}
	r.filter = f
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
	filter     *filter
}

func (r *reader) send(e cairn.Event) error {
	return r.out.Send(readEvent(e, e.StreamID, r.uuidString))
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
	last, err := r.s.store.StreamVersion(ctx, name)
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
	for e, err := range r.s.store.Stream(ctx, name, from, dir) {
		if errors.Is(err, cairn.ErrStreamNotFound) {
			return r.notFound(name)
		}
		if err != nil {
			return rpcError(ctx, name, err)
		}
		if sent >= count || e.Version < lowest {
			return nil
		}
		if e.Created.Before(oldest) {
			continue
		}
		if err := r.send(e); err != nil {
			return err
		}
		sent++
	}
	return nil
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
		if r.filter.match(e.StreamID, e.Type) {
			if err := r.send(e); err != nil {
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

// subscribe serves a subscription: a confirmation, the events after the
// starting point (catch-up), a caught-up message, then new events as they
// become durable (live), until the client goes or the server shuts down.
func (r *reader) subscribe(ctx context.Context, opts *api.ReadReq_Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	r.s.metrics.Subscriptions(1)
	defer r.s.metrics.Subscriptions(-1)

	id := uuid.NewString()
	if err := r.out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: id}}}); err != nil {
		return err
	}
	var err error
	switch so := opts.StreamOption.(type) {
	case *api.ReadReq_Options_Stream:
		err = r.followStream(ctx, so.Stream)
	case *api.ReadReq_Options_All:
		err = r.followAll(ctx, so.All)
	default:
		return invalid("a subscription names a stream or $all")
	}
	select {
	case <-r.s.quit:
		return status.Error(codes.Unavailable, "the server is shutting down")
	default:
	}
	return err
}

// wait blocks until the Store signals new events (changed), the server
// signals a change the Store does not (local), or ctx is done.
func wait(ctx context.Context, changed, local <-chan struct{}) error {
	select {
	case <-changed:
		return nil
	case <-local:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (r *reader) caughtUp(revision *int64, position *uint64) error {
	cu := &api.ReadResp_CaughtUp{Timestamp: timestamppb.Now(), StreamRevision: revision}
	if position != nil {
		cu.Position = &api.ReadResp_Position{CommitPosition: *position, PreparePosition: *position}
	}
	return r.out.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: cu}})
}

// followStream subscribes to one stream. Start is revision 0; a revision n
// means "after n"; End means after the current last event. A stream that
// does not exist yet is waited for; a tombstoned one ends the subscription.
func (r *reader) followStream(ctx context.Context, so *api.ReadReq_Options_StreamOptions) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	var next int64
	switch v := so.RevisionOption.(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
	case *api.ReadReq_Options_StreamOptions_Revision:
		next = int64(min(v.Revision, math.MaxInt64-1)) + 1
	case *api.ReadReq_Options_StreamOptions_End:
		cur, err := r.s.currentVersion(ctx, name)
		if err != nil {
			return rpcError(ctx, name, err)
		}
		next = cur + 1
	default:
		return invalid("subscribe to %q: no revision to start from", name)
	}
	live := false
	for {
		changed, local := r.s.store.Changes(), r.s.local.wait()
		lowest, oldest, err := r.visible(ctx, name)
		if err != nil {
			return rpcError(ctx, name, err)
		}
		next = max(next, lowest)
		page, err := r.s.store.ReadStreamSized(ctx, name, next, readPage, readPageBytes, cairn.Forward)
		if errors.Is(err, cairn.ErrStreamNotFound) {
			page, err = nil, nil
		}
		if err != nil {
			return rpcError(ctx, name, err)
		}
		for _, e := range page {
			next = e.Version + 1
			if e.Created.Before(oldest) {
				continue
			}
			if err := r.send(e); err != nil {
				return err
			}
			r.s.metrics.SubscriptionEvents(1)
		}
		if cairn.PageFull(page, readPage, readPageBytes) {
			continue
		}
		if !live {
			live = true
			// The protocol leaves both checkpoints out for an empty
			// stream, but the official Go client then reads a nil
			// position: an empty stream reports position 0.
			var rev *int64
			var pos *uint64
			if next > 0 {
				v := next - 1
				rev = &v
			} else {
				pos = new(uint64)
			}
			if err := r.caughtUp(rev, pos); err != nil {
				return err
			}
		}
		if err := wait(ctx, changed, local); err != nil {
			return err
		}
	}
}

// visible returns the lowest version and oldest creation time of stream
// that its metadata lets readers see.
func (r *reader) visible(ctx context.Context, stream string) (int64, time.Time, error) {
	meta, err := r.s.metadataOf(ctx, stream)
	if err != nil {
		return 0, time.Time{}, err
	}
	last, err := r.s.currentVersion(ctx, stream)
	if err != nil {
		return 0, time.Time{}, err
	}
	lowest, oldest := meta.visibility(last, time.Now())
	return lowest, oldest, nil
}

// followAll subscribes to $all. Start is position 0; a position p means
// "after p"; End means after the current last event. With a filter, a
// checkpoint goes out every filter.every events examined, so that a client
// can resume a sparse subscription without rescanning.
func (r *reader) followAll(ctx context.Context, ao *api.ReadReq_Options_AllOptions) error {
	var next uint64
	switch v := ao.AllOption.(type) {
	case *api.ReadReq_Options_AllOptions_Start:
	case *api.ReadReq_Options_AllOptions_Position:
		next = v.Position.GetCommitPosition() + 1
	case *api.ReadReq_Options_AllOptions_End:
		if h, ok := r.s.head(ctx); ok {
			next = h + 1
		}
	default:
		return invalid("subscribe to $all: no position to start from")
	}
	live := false
	examined := 0
	for {
		changed, local := r.s.store.Changes(), r.s.local.wait()
		page, err := r.s.store.ReadAllSized(ctx, next, readPage, readPageBytes, cairn.Forward)
		if err != nil {
			return rpcError(ctx, "$all", err)
		}
		for _, e := range page {
			next = e.Position + 1
			if r.filter.match(e.StreamID, e.Type) {
				if err := r.send(e); err != nil {
					return err
				}
				r.s.metrics.SubscriptionEvents(1)
			}
			if r.filter == nil {
				continue
			}
			if examined++; examined >= r.filter.every {
				examined = 0
				if err := r.checkpoint(e.Position); err != nil {
					return err
				}
			}
		}
		if cairn.PageFull(page, readPage, readPageBytes) {
			continue
		}
		if !live {
			live = true
			// An empty log reports position 0 (see followStream).
			var pos uint64
			if next > 0 {
				pos = next - 1
			}
			if err := r.caughtUp(nil, &pos); err != nil {
				return err
			}
		}
		if err := wait(ctx, changed, local); err != nil {
			return err
		}
	}
}
