package kurrentdbsvc

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/google/uuid"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
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
	r.sub = id
	if err := r.out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: id}}}); err != nil {
		return err
	}
	var err error
	switch so := opts.StreamOption.(type) {
	case *api.ReadReq_Options_Stream:
		err = r.followStream(ctx, so.Stream)
	case *api.ReadReq_Options_All:
		if r.filter != nil && r.filter.index != nil {
			err = r.followIndex(ctx, so.All)
		} else {
			err = r.followAll(ctx, so.All)
		}
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
		page, err := r.s.links.ReadStream(ctx, name, next, readPage, readPageBytes, cairn.Forward, r.resolve)
		if errors.Is(err, cairn.ErrStreamNotFound) {
			page, err = links.Page{}, nil
		}
		if err != nil {
			return rpcError(ctx, name, err)
		}
		for i := range page.Events {
			e := &page.Events[i]
			next = e.Event.Version + 1
			if e.Event.Created.Before(oldest) {
				continue
			}
			if err := r.send(ctx, e); err != nil {
				return err
			}
			r.s.metrics.SubscriptionEvents(1)
		}
		if page.More {
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
			e = deletionAsKurrent(e)
			if r.filter.match(e.StreamID, e.Type) {
				if err := r.sendEvent(ctx, e); err != nil {
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
