package kurrentdbsvc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/subscription"
	"github.com/google/uuid"
	ps "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// persistentService serves KurrentDB's persistent subscriptions on the
// groups of a [subscription.Manager]: the groups, their checkpoints and
// their parked events live in the Store, so they survive a restart.
type persistentService struct {
	ps.UnimplementedPersistentSubscriptionsServer
	s *Services
	m *subscription.Manager
}

// groupError converts an error of the Manager to the status and trailers
// KurrentDB uses for it, from which the clients make their typed errors
// (the Node.js client's PersistentSubscriptionExistsError and
// PersistentSubscriptionDoesNotExistError read the trailers; the Go client
// reads the status code). stream is "$all" for a group on $all.
func groupError(ctx context.Context, stream, group string, err error) error {
	trailer := func(exception string) {
		setTrailer(ctx, trailerException, exception, trailerStreamName, stream, trailerGroupName, group)
	}
	switch {
	case errors.Is(err, subscription.ErrGroupExists):
		trailer(exceptionGroupExists)
		return status.Errorf(codes.AlreadyExists, "Subscription group %s on stream %s exists.", group, stream)
	case errors.Is(err, subscription.ErrGroupNotFound):
		trailer(exceptionGroupNotFound)
		return status.Errorf(codes.NotFound, "Subscription group %s on stream %s does not exist.", group, stream)
	case errors.Is(err, subscription.ErrTooManyConsumers):
		trailer(exceptionMaxSubscribers)
		return status.Errorf(codes.FailedPrecondition, "Maximum subscriptions reached for subscription group %s on stream %s.", group, stream)
	case errors.Is(err, subscription.ErrGroupDeleted):
		trailer(exceptionGroupDropped)
		return status.Errorf(codes.Canceled, "Subscription group %s on stream %s was dropped.", group, stream)
	case errors.Is(err, subscription.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	}
	return rpcError(ctx, stream, err)
}

func streamName(id *shared.StreamIdentifier) string { return string(id.GetStreamName()) }

func groupFilter(fo *ps.CreateReq_AllOptions_FilterOptions) (subscription.Filter, error) {
	var f subscription.Filter
	if fo == nil {
		return f, nil
	}
	var x *ps.CreateReq_AllOptions_FilterOptions_Expression
	switch v := fo.GetFilter().(type) {
	case *ps.CreateReq_AllOptions_FilterOptions_StreamIdentifier:
		x = v.StreamIdentifier
		f.StreamPrefixes, f.StreamRegexp = x.GetPrefix(), x.GetRegex()
		if _, _, err := secondaryIndex(x.GetPrefix()); err != nil {
			return f, err
		}
	case *ps.CreateReq_AllOptions_FilterOptions_EventType:
		x = v.EventType
		f.EventTypePrefixes, f.EventTypeRegexp = x.GetPrefix(), x.GetRegex()
	default:
		return f, invalid("filter: neither a stream-name nor an event-type expression")
	}
	if f.IsZero() {
		return f, invalid("filter: give a regular expression or prefixes")
	}
	if x.GetRegex() != "" && len(x.GetPrefix()) > 0 {
		// KurrentDB would use the expression and ignore the prefixes.
		return f, invalid("filter: give a regular expression or prefixes, not both")
	}
	return f, nil
}

func (p *persistentService) Create(ctx context.Context, req *ps.CreateReq) (*ps.CreateResp, error) {
	if err := p.s.allowOperator(ctx, "create persistent subscriptions"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	st := o.GetSettings()
	strategy, err := createStrategy(st)
	if err != nil {
		return nil, rpcError(ctx, "", err)
	}
	settings, err := groupSettings(st, createTimeout(st), createCheckpointAfter(st), strategy)
	if err != nil {
		return nil, err
	}
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
			if c, p := a.Position.GetCommitPosition(), a.Position.GetPreparePosition(); p > c {
				return nil, invalid("invalid position: the prepare position %d is beyond the commit position %d", p, c)
			}
			settings.Start = subscription.At(a.Position.GetCommitPosition())
		}
		f, err := groupFilter(v.All.GetFilter())
		if err != nil {
			return nil, err
		}
		settings.Filter = f
	case nil:
		// Servers before 21.10 took the stream and the start here.
		//lint:ignore SA1019 clients of servers before 21.10 still send these fields
		stream = streamName(o.GetStreamIdentifier())
		//lint:ignore SA1019 as above
		switch rev := st.GetRevision(); rev {
		case 0:
		case math.MaxUint64:
			settings.Start = subscription.End
		default:
			settings.Start = subscription.At(rev)
		}
	}
	if err := p.m.Create(ctx, stream, o.GetGroupName(), settings); err != nil {
		return nil, groupError(ctx, stream, o.GetGroupName(), err)
	}
	return &ps.CreateResp{}, nil
}

func (p *persistentService) Update(ctx context.Context, req *ps.UpdateReq) (*ps.UpdateResp, error) {
	if err := p.s.allowOperator(ctx, "update persistent subscriptions"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	st := o.GetSettings()
	stream := subscription.AllStream
	switch v := o.GetStreamOption().(type) {
	case *ps.UpdateReq_Options_Stream:
		stream = streamName(v.Stream.GetStreamIdentifier())
	case nil:
		//lint:ignore SA1019 clients of servers before 21.10 still send this field
		stream = streamName(o.GetStreamIdentifier())
	}
	strategy, err := updateStrategy(st)
	if err != nil {
		return nil, groupError(ctx, stream, o.GetGroupName(), err)
	}
	settings, err := groupSettings(st, updateTimeout(st), updateCheckpointAfter(st), strategy)
	if err != nil {
		return nil, err
	}
	info, err := p.m.Info(ctx, stream, o.GetGroupName())
	if err != nil {
		return nil, groupError(ctx, stream, o.GetGroupName(), err)
	}
	settings.Filter = info.Settings.Filter // the protocol cannot change it
	if err := p.m.Update(ctx, stream, o.GetGroupName(), settings); err != nil {
		return nil, groupError(ctx, stream, o.GetGroupName(), err)
	}
	return &ps.UpdateResp{}, nil
}

func (p *persistentService) Delete(ctx context.Context, req *ps.DeleteReq) (*ps.DeleteResp, error) {
	if err := p.s.allowOperator(ctx, "delete persistent subscriptions"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	stream := subscription.AllStream
	if v, ok := o.GetStreamOption().(*ps.DeleteReq_Options_StreamIdentifier); ok {
		stream = streamName(v.StreamIdentifier)
	}
	if err := p.m.Delete(ctx, stream, o.GetGroupName()); err != nil {
		return nil, groupError(ctx, stream, o.GetGroupName(), err)
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
	var name string
	switch v := o.GetStreamOption().(type) {
	case *ps.ReadReq_Options_StreamIdentifier:
		name = streamName(v.StreamIdentifier)
	case *ps.ReadReq_Options_All:
		name = subscription.AllStream
	default:
		return invalid("invalid options.stream_option: give a stream or all")
	}
	// A consumer needs the right to read the group's stream ($all for a
	// group on $all), as in KurrentDB.
	if err := p.s.allow(ctx, acl.Read, name); err != nil {
		return err
	}
	// The consumer's in-flight limit; KurrentDB refuses less than one too.
	if n := o.GetBufferSize(); n < 1 {
		return invalid("invalid options.buffer_size: must be at least 1, got %d", n)
	}
	uuidString := o.GetUuidOption().GetString_() != nil
	consumer, err := p.m.Connect(ctx, name, o.GetGroupName(), consumerOptions(ctx, int(o.GetBufferSize())))
	if err != nil {
		return groupError(ctx, name, o.GetGroupName(), err)
	}
	defer consumer.Close(context.WithoutCancel(ctx))
	p.s.metrics.Subscriptions(1)
	defer p.s.metrics.Subscriptions(-1)
	subID := name + "::" + o.GetGroupName()
	if err := stream.Send(&ps.ReadResp{Content: &ps.ReadResp_SubscriptionConfirmation_{
		SubscriptionConfirmation: &ps.ReadResp_SubscriptionConfirmation{SubscriptionId: subID},
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
			return groupError(ctx, name, o.GetGroupName(), err)
		}
		// The group resolves links for all its consumers; each sees
		// only the targets its user may read.
		if d.Link && d.Target != nil {
			ok, err := p.s.readable(ctx, d.Target.StreamID)
			if err != nil {
				return rpcError(ctx, name, err)
			}
			if !ok {
				d.Target = nil
			}
		}
		if err := p.deliver(ctx, stream, subID, d, uuidString); err != nil {
			return err
		}
		p.s.metrics.SubscriptionEvents(1)
	}
}

// deliver sends d to the consumer, within a delivery span when the host
// traces deliveries.
func (p *persistentService) deliver(ctx context.Context, stream grpc.BidiStreamingServer[ps.ReadReq, ps.ReadResp], sub string, d subscription.Delivery, uuidString bool) error {
	if p.s.deliveries == nil {
		return stream.Send(persistentEvent(d, uuidString))
	}
	ev := &d.Event
	if d.Link && d.Target != nil {
		ev = d.Target
	}
	done := p.s.deliveries.Deliver(ctx, sub, ev)
	err := stream.Send(persistentEvent(d, uuidString))
	if done != nil {
		done(err)
	}
	return err
}

// consumerOptions describes the consumer of a Read as KurrentDB's
// connection info does: its connection name from the client's
// connection-name header ("<unknown>" without one), its address and its
// user (empty for an anonymous request).
func consumerOptions(ctx context.Context, inFlight int) subscription.ConsumerOptions {
	o := subscription.ConsumerOptions{InFlight: inFlight, Name: "<unknown>"}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("connection-name"); len(v) > 0 && v[0] != "" {
			o.Name = v[0]
		}
	}
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		o.From = pr.Addr.String()
	}
	if pr, ok := auth.FromContext(ctx); ok {
		o.User = pr.Name
	}
	return o
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
		case ps.ReadReq_Nack_Retry, ps.ReadReq_Nack_Unknown: // unknown: the server decides, and retries
			action = subscription.Retry
		default:
			return invalid("invalid nack.action: unknown value %d; use 0 (unknown), 1 (park), 2 (retry), 3 (skip) or 4 (stop)", v.Nack.GetAction())
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

// persistentEvent renders a delivery as KurrentDB does: the event alone,
// or a resolved link (event and link), or a link whose target is gone
// (link alone). Acks name the original event: the link, for a link.
func persistentEvent(d subscription.Delivery, uuidString bool) *ps.ReadResp {
	event, link := d.Parts()
	re := &ps.ReadResp_ReadEvent{
		Position: &ps.ReadResp_ReadEvent_CommitPosition{CommitPosition: d.Event.Position},
		Count:    &ps.ReadResp_ReadEvent_RetryCount{RetryCount: int32(min(d.RetryCount, math.MaxInt32))},
	}
	if event != nil {
		re.Event = persistentRecorded(*event, uuidString)
	}
	if link != nil {
		re.Link = persistentRecorded(*link, uuidString)
	}
	return &ps.ReadResp{Content: &ps.ReadResp_Event{Event: re}}
}

func persistentRecorded(e cairn.Event, uuidString bool) *ps.ReadResp_ReadEvent_RecordedEvent {
	e = deletionAsKurrent(e)
	return &ps.ReadResp_ReadEvent_RecordedEvent{
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
	}
}

func (p *persistentService) GetInfo(ctx context.Context, req *ps.GetInfoReq) (*ps.GetInfoResp, error) {
	if err := p.s.allowUser(ctx, "reading a persistent subscription's info"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	stream := subscription.AllStream
	if v, ok := o.GetStreamOption().(*ps.GetInfoReq_Options_StreamIdentifier); ok {
		stream = streamName(v.StreamIdentifier)
	}
	info, err := p.m.Info(ctx, stream, o.GetGroupName())
	if err != nil {
		return nil, groupError(ctx, stream, o.GetGroupName(), err)
	}
	return &ps.GetInfoResp{SubscriptionInfo: subscriptionInfo(info)}, nil
}

func (p *persistentService) List(ctx context.Context, req *ps.ListReq) (*ps.ListResp, error) {
	if err := p.s.allowUser(ctx, "listing persistent subscriptions"); err != nil {
		return nil, err
	}
	stream := ""
	if v, ok := req.GetOptions().GetListOption().(*ps.ListReq_Options_ListForStream); ok {
		stream = subscription.AllStream
		if s, ok := v.ListForStream.GetStreamOption().(*ps.ListReq_StreamOption_Stream); ok {
			stream = streamName(s.Stream)
		}
	}
	infos, err := p.m.List(ctx, stream)
	if err != nil {
		return nil, groupError(ctx, stream, "", err)
	}
	resp := &ps.ListResp{}
	for _, info := range infos {
		resp.Subscriptions = append(resp.Subscriptions, subscriptionInfo(info))
	}
	return resp, nil
}

func (p *persistentService) ReplayParked(ctx context.Context, req *ps.ReplayParkedReq) (*ps.ReplayParkedResp, error) {
	if err := p.s.allowOperator(ctx, "replay parked events"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	stream := subscription.AllStream
	if v, ok := o.GetStreamOption().(*ps.ReplayParkedReq_Options_StreamIdentifier); ok {
		stream = streamName(v.StreamIdentifier)
	}
	limit := 0 // all
	if v, ok := o.GetStopAtOption().(*ps.ReplayParkedReq_Options_StopAt); ok {
		if v.StopAt < 1 {
			return nil, invalid("invalid options.stop_at: must be at least 1, got %d; send no_limit to replay every parked event", v.StopAt)
		}
		limit = int(min(v.StopAt, math.MaxInt32))
	}
	if _, err := p.m.ReplayParked(ctx, stream, o.GetGroupName(), limit); err != nil {
		return nil, groupError(ctx, stream, o.GetGroupName(), err)
	}
	return &ps.ReplayParkedResp{}, nil
}

// RestartSubsystem has nothing to restart: groups load on demand.
func (p *persistentService) RestartSubsystem(ctx context.Context, _ *shared.Empty) (*shared.Empty, error) {
	if err := p.s.allowOperator(ctx, "restart the persistent subscriptions"); err != nil {
		return nil, err
	}
	return &shared.Empty{}, nil
}

// subscriptionInfo describes a group as KurrentDB does: its settings as
// they were created or updated, its start as given (for $all positions
// "C:n/P:n", "C:-1/P:-1" for the end; for streams a revision, "-1" for the
// end), its statistics and its connections. Rates are measured between two
// calls of GetInfo or List, as KurrentDB measures them.
func subscriptionInfo(info subscription.Info) *ps.SubscriptionInfo {
	all := info.Stream == subscription.AllStream
	pos := func(n uint64) string {
		if all {
			return fmt.Sprintf("C:%d/P:%d", n, n)
		}
		return strconv.FormatUint(n, 10)
	}
	s := info.Settings
	start := "-1"
	if all {
		start = "C:-1/P:-1"
	}
	if n, ok := s.Start.First(); ok {
		start = pos(n)
	}
	out := &ps.SubscriptionInfo{
		EventSource:                 info.Stream,
		GroupName:                   info.Group,
		Status:                      "Live",
		StartFrom:                   start,
		ResolveLinkTos:              s.ResolveLinks,
		MessageTimeoutMilliseconds:  int32(min(s.MessageTimeout.Milliseconds(), math.MaxInt32)),
		ExtraStatistics:             s.ExtraStatistics,
		MaxRetryCount:               int32(max(s.MaxRetryCount, 0)),
		LiveBufferSize:              int32(min(s.LiveBufferSize, math.MaxInt32)),
		BufferSize:                  int32(min(s.BufferSize, math.MaxInt32)),
		ReadBatchSize:               int32(min(s.ReadBatchSize, math.MaxInt32)),
		CheckPointAfterMilliseconds: int32(min(s.CheckpointInterval.Milliseconds(), math.MaxInt32)),
		MinCheckPointCount:          int32(min(s.CheckpointAfter, math.MaxInt32)),
		MaxCheckPointCount:          int32(min(s.MaxCheckpointCount, math.MaxInt32)),
		MaxSubscriberCount:          int32(min(s.MaxSubscriberCount, math.MaxInt32)),
		NamedConsumerStrategy:       s.Strategy.String(),
		AveragePerSecond:            int32(min(info.Rate.PerSecond, math.MaxInt32)),
		TotalItems:                  int64(min(info.Delivered, math.MaxInt64)),
		CountSinceLastMeasurement:   int64(min(info.Rate.Count, math.MaxInt64)),
		ReadBufferCount:             int32(info.Buffered),
		RetryBufferCount:            int32(info.Retrying),
		TotalInFlightMessages:       int32(info.InFlight),
		OutstandingMessagesCount:    int32(info.InFlight),
		ParkedMessageCount:          int64(info.Parked),
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
			From:                      c.From,
			Username:                  c.User,
			AverageItemsPerSecond:     int32(min(c.Rate.PerSecond, math.MaxInt32)),
			TotalItems:                int64(min(c.Delivered, math.MaxInt64)),
			CountSinceLastMeasurement: int64(min(c.Rate.Count, math.MaxInt64)),
			AvailableSlots:            int32(min(c.Available, math.MaxInt32)),
			InFlightMessages:          int32(min(c.InFlight, math.MaxInt32)),
			ConnectionName:            c.Name,
		})
	}
	return out
}
