package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cairndb/cairn/subscription"
	"github.com/google/uuid"
	ps "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// persistentService serves KurrentDB's persistent subscriptions on the
// groups of a [subscription.Manager]: the groups, their checkpoints and
// their parked events live in the Store, so they survive a restart.
type persistentService struct {
	ps.UnimplementedPersistentSubscriptionsServer
	s *Server
	m *subscription.Manager
}

// groupError converts an error of the Manager to the status KurrentDB uses.
func groupError(ctx context.Context, stream string, err error) error {
	switch {
	case errors.Is(err, subscription.ErrGroupExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, subscription.ErrGroupNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, subscription.ErrTooManyConsumers):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, subscription.ErrGroupDeleted), errors.Is(err, subscription.ErrClosed):
		return status.Error(codes.Aborted, err.Error())
	}
	return rpcError(ctx, stream, err)
}

func streamName(id *shared.StreamIdentifier) string { return string(id.GetStreamName()) }

// settingsFrom maps the protocol's settings onto the Manager's. KurrentDB's
// minimum checkpoint count is the Manager's CheckpointAfter; its history
// buffer size bounds the group's buffer. Zero values take the Manager's
// defaults.
func settingsFrom(retries, minCheckpoint, maxSubscribers, buffer int32, timeoutMs int64) subscription.Settings {
	s := subscription.Settings{
		MaxRetryCount:      int(max(retries, 0)),
		CheckpointAfter:    int(max(minCheckpoint, 0)),
		MaxSubscriberCount: int(max(maxSubscribers, 0)),
		BufferSize:         int(max(buffer, 0)),
	}
	if timeoutMs > 0 {
		s.MessageTimeout = time.Duration(timeoutMs) * time.Millisecond
	}
	return s
}

func createTimeout(st *ps.CreateReq_Settings) int64 {
	switch v := st.GetMessageTimeout().(type) {
	case *ps.CreateReq_Settings_MessageTimeoutMs:
		return int64(v.MessageTimeoutMs)
	case *ps.CreateReq_Settings_MessageTimeoutTicks:
		return v.MessageTimeoutTicks / 10_000
	}
	return 0
}

func updateTimeout(st *ps.UpdateReq_Settings) int64 {
	switch v := st.GetMessageTimeout().(type) {
	case *ps.UpdateReq_Settings_MessageTimeoutMs:
		return int64(v.MessageTimeoutMs)
	case *ps.UpdateReq_Settings_MessageTimeoutTicks:
		return v.MessageTimeoutTicks / 10_000
	}
	return 0
}

func groupFilter(fo *ps.CreateReq_AllOptions_FilterOptions) (subscription.Filter, error) {
	var f subscription.Filter
	if fo == nil {
		return f, nil
	}
	switch v := fo.GetFilter().(type) {
	case *ps.CreateReq_AllOptions_FilterOptions_StreamIdentifier:
		f.StreamPrefixes, f.StreamRegexp = v.StreamIdentifier.GetPrefix(), v.StreamIdentifier.GetRegex()
	case *ps.CreateReq_AllOptions_FilterOptions_EventType:
		f.EventTypePrefixes, f.EventTypeRegexp = v.EventType.GetPrefix(), v.EventType.GetRegex()
	default:
		return f, invalid("filter: neither a stream-name nor an event-type expression")
	}
	if f.IsZero() {
		return f, invalid("filter: give a regular expression or prefixes")
	}
	return f, nil
}

func (p *persistentService) Create(ctx context.Context, req *ps.CreateReq) (*ps.CreateResp, error) {
	o := req.GetOptions()
	st := o.GetSettings()
	settings := settingsFrom(st.GetMaxRetryCount(), st.GetMinCheckpointCount(), st.GetMaxSubscriberCount(), st.GetHistoryBufferSize(), createTimeout(st))
	stream := subscription.AllStream
	switch v := o.GetStreamOption().(type) {
	case *ps.CreateReq_Options_Stream:
		stream = streamName(v.Stream.GetStreamIdentifier())
		switch r := v.Stream.GetRevisionOption().(type) {
		case *ps.CreateReq_StreamOptions_End:
			settings.Start = subscription.End
		case *ps.CreateReq_StreamOptions_Revision:
			settings.Start = subscription.At(r.Revision)
		}
	case *ps.CreateReq_Options_All:
		switch a := v.All.GetAllOption().(type) {
		case *ps.CreateReq_AllOptions_End:
			settings.Start = subscription.End
		case *ps.CreateReq_AllOptions_Position:
			settings.Start = subscription.At(a.Position.GetCommitPosition())
		}
		f, err := groupFilter(v.All.GetFilter())
		if err != nil {
			return nil, err
		}
		settings.Filter = f
	case nil:
		// Servers before 21.10 took the stream and the start here.
		stream = streamName(o.GetStreamIdentifier())
		switch rev := st.GetRevision(); rev {
		case 0:
		case math.MaxUint64:
			settings.Start = subscription.End
		default:
			settings.Start = subscription.At(rev)
		}
	}
	if err := p.m.Create(ctx, stream, o.GetGroupName(), settings); err != nil {
		return nil, groupError(ctx, stream, err)
	}
	return &ps.CreateResp{}, nil
}

func (p *persistentService) Update(ctx context.Context, req *ps.UpdateReq) (*ps.UpdateResp, error) {
	o := req.GetOptions()
	st := o.GetSettings()
	stream := subscription.AllStream
	switch v := o.GetStreamOption().(type) {
	case *ps.UpdateReq_Options_Stream:
		stream = streamName(v.Stream.GetStreamIdentifier())
	case nil:
		stream = streamName(o.GetStreamIdentifier())
	}
	info, err := p.m.Info(ctx, stream, o.GetGroupName())
	if err != nil {
		return nil, groupError(ctx, stream, err)
	}
	settings := settingsFrom(st.GetMaxRetryCount(), st.GetMinCheckpointCount(), st.GetMaxSubscriberCount(), st.GetHistoryBufferSize(), updateTimeout(st))
	settings.Filter = info.Settings.Filter // the protocol cannot change it
	if err := p.m.Update(ctx, stream, o.GetGroupName(), settings); err != nil {
		return nil, groupError(ctx, stream, err)
	}
	return &ps.UpdateResp{}, nil
}

func (p *persistentService) Delete(ctx context.Context, req *ps.DeleteReq) (*ps.DeleteResp, error) {
	o := req.GetOptions()
	stream := subscription.AllStream
	if v, ok := o.GetStreamOption().(*ps.DeleteReq_Options_StreamIdentifier); ok {
		stream = streamName(v.StreamIdentifier)
	}
	if err := p.m.Delete(ctx, stream, o.GetGroupName()); err != nil {
		return nil, groupError(ctx, stream, err)
	}
	return &ps.DeleteResp{}, nil
}

// Read connects a consumer: options first, then acks and nacks from the
// client while events flow to it. At most buffer_size events are in flight
// with the consumer at once.
func (p *persistentService) Read(stream grpc.BidiStreamingServer[ps.ReadReq, ps.ReadResp]) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	go func() {
		select {
		case <-p.s.quit:
			cancel(status.Error(codes.Unavailable, "the server is shutting down"))
		case <-ctx.Done():
		}
	}()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	o := first.GetOptions()
	if o == nil {
		return invalid("a persistent subscription read starts with its options")
	}
	name := subscription.AllStream
	if v, ok := o.GetStreamOption().(*ps.ReadReq_Options_StreamIdentifier); ok {
		name = streamName(v.StreamIdentifier)
	}
	uuidString := o.GetUuidOption().GetString_() != nil
	consumer, err := p.m.Connect(ctx, name, o.GetGroupName(), subscription.ConsumerOptions{InFlight: int(max(o.GetBufferSize(), 0))})
	if err != nil {
		return groupError(ctx, name, err)
	}
	defer consumer.Close(context.WithoutCancel(ctx))
	p.s.metrics.subscriptions.Inc()
	defer p.s.metrics.subscriptions.Dec()
	if err := stream.Send(&ps.ReadResp{Content: &ps.ReadResp_SubscriptionConfirmation_{
		SubscriptionConfirmation: &ps.ReadResp_SubscriptionConfirmation{SubscriptionId: name + "::" + o.GetGroupName()},
	}}); err != nil {
		return err
	}

	// Acks and nacks arrive on their own goroutine; it ends with the
	// stream, and its failure ends the read.
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				cancel(err)
				return
			}
			if err := p.answer(ctx, consumer, msg); err != nil {
				cancel(err)
				return
			}
		}
	}()
	for {
		d, err := consumer.Next(ctx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				if _, ok := status.FromError(cause); ok {
					return cause
				}
				return status.FromContextError(ctx.Err()).Err()
			}
			return groupError(ctx, name, err)
		}
		if err := stream.Send(persistentEvent(d, uuidString)); err != nil {
			return err
		}
		p.s.metrics.subEvents.Inc()
	}
}

// errStopped ends a read whose client nacked with the action "stop".
var errStopped = status.Error(codes.Canceled, "the consumer asked to stop")

func (p *persistentService) answer(ctx context.Context, c *subscription.Consumer, msg *ps.ReadReq) error {
	switch v := msg.Content.(type) {
	case *ps.ReadReq_Ack_:
		ids, err := uuids(v.Ack.GetIds())
		if err != nil {
			return err
		}
		return c.Ack(ctx, ids...)
	case *ps.ReadReq_Nack_:
		ids, err := uuids(v.Nack.GetIds())
		if err != nil {
			return err
		}
		var action subscription.Action
		switch v.Nack.GetAction() {
		case ps.ReadReq_Nack_Park:
			action = subscription.Park
		case ps.ReadReq_Nack_Skip:
			action = subscription.Skip
		case ps.ReadReq_Nack_Stop:
			if err := c.Nack(ctx, subscription.Retry, v.Nack.GetReason(), ids...); err != nil {
				return err
			}
			return errStopped
		default: // retry, or unknown: the server decides, and retries
			action = subscription.Retry
		}
		return c.Nack(ctx, action, v.Nack.GetReason(), ids...)
	}
	return invalid("a persistent subscription read takes acks and nacks after its options")
}

func uuids(ids []*shared.UUID) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		u, err := uuidFromProto(id)
		if err != nil {
			return nil, invalid("ids[%d]: %v", i, err)
		}
		out[i] = u
	}
	return out, nil
}

func persistentEvent(d subscription.Delivery, uuidString bool) *ps.ReadResp {
	e := d.Event
	return &ps.ReadResp{Content: &ps.ReadResp_Event{Event: &ps.ReadResp_ReadEvent{
		Event: &ps.ReadResp_ReadEvent_RecordedEvent{
			Id:               uuidToProto(e.ID, uuidString),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.StreamID)},
			StreamRevision:   uint64(e.Version),
			PreparePosition:  e.Position,
			CommitPosition:   e.Position,
			Metadata: map[string]string{
				metaType:        e.Type,
				metaContentType: e.ContentType.String(),
				metaCreated:     ticks(e),
			},
			CustomMetadata: nonNil(e.Metadata),
			Data:           nonNil(e.Data),
		},
		Position: &ps.ReadResp_ReadEvent_CommitPosition{CommitPosition: e.Position},
		Count:    &ps.ReadResp_ReadEvent_RetryCount{RetryCount: int32(min(d.RetryCount, math.MaxInt32))},
	}}}
}

func (p *persistentService) GetInfo(ctx context.Context, req *ps.GetInfoReq) (*ps.GetInfoResp, error) {
	o := req.GetOptions()
	stream := subscription.AllStream
	if v, ok := o.GetStreamOption().(*ps.GetInfoReq_Options_StreamIdentifier); ok {
		stream = streamName(v.StreamIdentifier)
	}
	info, err := p.m.Info(ctx, stream, o.GetGroupName())
	if err != nil {
		return nil, groupError(ctx, stream, err)
	}
	return &ps.GetInfoResp{SubscriptionInfo: subscriptionInfo(info)}, nil
}

func (p *persistentService) List(ctx context.Context, req *ps.ListReq) (*ps.ListResp, error) {
	stream := ""
	if v, ok := req.GetOptions().GetListOption().(*ps.ListReq_Options_ListForStream); ok {
		stream = subscription.AllStream
		if s, ok := v.ListForStream.GetStreamOption().(*ps.ListReq_StreamOption_Stream); ok {
			stream = streamName(s.Stream)
		}
	}
	infos, err := p.m.List(ctx, stream)
	if err != nil {
		return nil, groupError(ctx, stream, err)
	}
	resp := &ps.ListResp{}
	for _, info := range infos {
		resp.Subscriptions = append(resp.Subscriptions, subscriptionInfo(info))
	}
	return resp, nil
}

func (p *persistentService) ReplayParked(ctx context.Context, req *ps.ReplayParkedReq) (*ps.ReplayParkedResp, error) {
	o := req.GetOptions()
	stream := subscription.AllStream
	if v, ok := o.GetStreamOption().(*ps.ReplayParkedReq_Options_StreamIdentifier); ok {
		stream = streamName(v.StreamIdentifier)
	}
	limit := 0
	if v, ok := o.GetStopAtOption().(*ps.ReplayParkedReq_Options_StopAt); ok {
		limit = int(min(max(v.StopAt, 0), math.MaxInt32))
	}
	if _, err := p.m.ReplayParked(ctx, stream, o.GetGroupName(), limit); err != nil {
		return nil, groupError(ctx, stream, err)
	}
	return &ps.ReplayParkedResp{}, nil
}

// RestartSubsystem has nothing to restart: groups load on demand.
func (p *persistentService) RestartSubsystem(context.Context, *shared.Empty) (*shared.Empty, error) {
	return &shared.Empty{}, nil
}

// subscriptionInfo describes a group as KurrentDB does. Positions on $all
// are written "C:n/P:n", versions as numbers. The start the group was
// created with is not kept apart from its checkpoint and is reported as the
// start of the stream.
func subscriptionInfo(info subscription.Info) *ps.SubscriptionInfo {
	all := info.Stream == subscription.AllStream
	pos := func(n uint64) string {
		if all {
			return fmt.Sprintf("C:%d/P:%d", n, n)
		}
		return strconv.FormatUint(n, 10)
	}
	s := info.Settings
	out := &ps.SubscriptionInfo{
		EventSource:                info.Stream,
		GroupName:                  info.Group,
		Status:                     "Live",
		StartFrom:                  pos(0),
		MessageTimeoutMilliseconds: int32(min(s.MessageTimeout.Milliseconds(), math.MaxInt32)),
		MaxRetryCount:              int32(s.MaxRetryCount),
		BufferSize:                 int32(s.BufferSize),
		MinCheckPointCount:         int32(s.CheckpointAfter),
		MaxCheckPointCount:         int32(s.CheckpointAfter),
		MaxSubscriberCount:         int32(s.MaxSubscriberCount),
		NamedConsumerStrategy:      "RoundRobin",
		TotalItems:                 int64(min(info.Delivered, math.MaxInt64)),
		ReadBufferCount:            int32(info.Buffered),
		TotalInFlightMessages:      int32(info.InFlight),
		OutstandingMessagesCount:   int32(info.InFlight),
		ParkedMessageCount:         int64(info.Parked),
	}
	if s.MessageTimeout < 0 {
		out.MessageTimeoutMilliseconds = 0
	}
	if info.Checkpoint > 0 {
		out.LastCheckpointedEventPosition = pos(info.Checkpoint - 1)
	}
	if info.ReadUpTo > 0 {
		out.LastKnownEventPosition = pos(info.ReadUpTo - 1)
	}
	for _, c := range info.Consumers {
		out.Connections = append(out.Connections, &ps.SubscriptionInfo_ConnectionInfo{
			ConnectionName:   c.Name,
			InFlightMessages: int32(c.InFlight),
		})
	}
	return out
}
