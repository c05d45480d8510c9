package kurrentdbsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairndb/cairn/projections"
	projpb "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/projections"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// projectionsServiceName is the Projections service as server features
// names it.
const projectionsServiceName = "event_store.client.projections.projections"

// projectionMethods are the Projections calls served, as server features
// lists them.
var projectionMethods = []string{
	"create", "update", "delete", "statistics", "disable", "enable",
	"reset", "state", "result", "restartsubsystem",
}

// projectionsService serves KurrentDB's Projections service on a
// [projections.Manager].
//
// Managing projections (create, update, delete, enable, disable, reset,
// restart) takes an administrator or an operator, as a projection reads
// every stream it names whatever their ACLs; reading their statistics,
// state and result takes an authenticated user.
type projectionsService struct {
	projpb.UnimplementedProjectionsServer
	s *Services
	m *projections.Manager
}

// projectionError converts an error of the Manager to the status KurrentDB
// uses: NOT_FOUND for an unknown projection, as the clients expect.
func projectionError(ctx context.Context, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, projections.ErrNotFound):
		return status.Errorf(codes.NotFound, "Projection '%s' not found", name)
	case errors.Is(err, projections.ErrExists):
		return status.Errorf(codes.AlreadyExists, "Conflict: projection '%s' already exists", name)
	case errors.Is(err, projections.ErrRunning):
		return status.Errorf(codes.FailedPrecondition, "Cannot delete a projection that hasn't been stopped or faulted: %v", err)
	case errors.Is(err, projections.ErrBuiltin):
		return status.Errorf(codes.InvalidArgument, "%v", err)
	case errors.Is(err, projections.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	}
	return rpcError(ctx, "", err)
}

func (p *projectionsService) Create(ctx context.Context, req *projpb.CreateReq) (*projpb.CreateResp, error) {
	if err := p.s.allowOperator(ctx, "create a projection"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	var name string
	var opts projections.CreateOptions
	switch mode := o.GetMode().(type) {
	case *projpb.CreateReq_Options_OneTime:
		opts.Mode = projections.OneTime
	case *projpb.CreateReq_Options_Transient_:
		opts.Mode = projections.Transient
		name = mode.Transient.GetName()
	case *projpb.CreateReq_Options_Continuous_:
		name = mode.Continuous.GetName()
		opts.Emit = mode.Continuous.GetEmitEnabled()
		opts.TrackEmittedStreams = mode.Continuous.GetTrackEmittedStreams()
	default:
		return nil, invalid("create: the mode is missing: one_time, transient or continuous")
	}
	if _, err := p.m.Create(ctx, name, o.GetQuery(), opts); err != nil {
		return nil, projectionError(ctx, name, err)
	}
	return &projpb.CreateResp{}, nil
}

func (p *projectionsService) Update(ctx context.Context, req *projpb.UpdateReq) (*projpb.UpdateResp, error) {
	if err := p.s.allowOperator(ctx, "update a projection"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	var opts projections.UpdateOptions
	if e, ok := o.GetEmitOption().(*projpb.UpdateReq_Options_EmitEnabled); ok {
		opts.Emit = &e.EmitEnabled
	}
	if err := p.m.Update(ctx, o.GetName(), o.GetQuery(), opts); err != nil {
		return nil, projectionError(ctx, o.GetName(), err)
	}
	return &projpb.UpdateResp{}, nil
}

func (p *projectionsService) Delete(ctx context.Context, req *projpb.DeleteReq) (*projpb.DeleteResp, error) {
	if err := p.s.allowOperator(ctx, "delete a projection"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	err := p.m.Delete(ctx, o.GetName(), projections.DeleteOptions{
		DeleteEmittedStreams:   o.GetDeleteEmittedStreams(),
		DeleteStateStream:      o.GetDeleteStateStream(),
		DeleteCheckpointStream: o.GetDeleteCheckpointStream(),
	})
	if err != nil {
		return nil, projectionError(ctx, o.GetName(), err)
	}
	return &projpb.DeleteResp{}, nil
}

func (p *projectionsService) Statistics(req *projpb.StatisticsReq, stream grpc.ServerStreamingServer[projpb.StatisticsResp]) error {
	ctx := stream.Context()
	if err := p.s.allowUser(ctx, "read the statistics of projections"); err != nil {
		return err
	}
	var list []projections.Statistics
	switch mode := req.GetOptions().GetMode().(type) {
	case *projpb.StatisticsReq_Options_Name:
		st, err := p.m.Statistics(ctx, mode.Name)
		if err != nil {
			return projectionError(ctx, mode.Name, err)
		}
		list = []projections.Statistics{st}
	case *projpb.StatisticsReq_Options_Continuous:
		list = p.m.List(ctx, projections.Continuous)
	case *projpb.StatisticsReq_Options_OneTime:
		list = p.m.List(ctx, projections.OneTime)
	case *projpb.StatisticsReq_Options_Transient:
		list = p.m.List(ctx, projections.Transient)
	default:
		list = p.m.List(ctx)
	}
	for _, st := range list {
		if err := stream.Send(&projpb.StatisticsResp{Details: statisticsDetails(st)}); err != nil {
			return err
		}
	}
	return nil
}

func statisticsDetails(st projections.Statistics) *projpb.StatisticsResp_Details {
	return &projpb.StatisticsResp_Details{
		CoreProcessingTime:                 st.CoreProcessingTime,
		Version:                            st.Version,
		Epoch:                              st.Epoch,
		EffectiveName:                      st.EffectiveName,
		WritesInProgress:                   st.WritesInProgress,
		ReadsInProgress:                    st.ReadsInProgress,
		PartitionsCached:                   st.PartitionsCached,
		Status:                             st.Status,
		StateReason:                        st.StateReason,
		Name:                               st.Name,
		Mode:                               st.Mode.String(),
		Position:                           st.Position,
		Progress:                           st.Progress,
		LastCheckpoint:                     st.LastCheckpoint,
		EventsProcessedAfterRestart:        st.EventsProcessedAfterRestart,
		CheckpointStatus:                   st.CheckpointStatus,
		BufferedEvents:                     st.BufferedEvents,
		WritePendingEventsBeforeCheckpoint: st.WritePendingEventsBeforeCheckpoint,
		WritePendingEventsAfterCheckpoint:  st.WritePendingEventsAfterCheckpoint,
	}
}

func (p *projectionsService) Disable(ctx context.Context, req *projpb.DisableReq) (*projpb.DisableResp, error) {
	if err := p.s.allowOperator(ctx, "disable a projection"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	var err error
	if o.GetWriteCheckpoint() {
		err = p.m.Disable(ctx, o.GetName())
	} else {
		err = p.m.Abort(ctx, o.GetName())
	}
	if err != nil {
		return nil, projectionError(ctx, o.GetName(), err)
	}
	return &projpb.DisableResp{}, nil
}

func (p *projectionsService) Enable(ctx context.Context, req *projpb.EnableReq) (*projpb.EnableResp, error) {
	if err := p.s.allowOperator(ctx, "enable a projection"); err != nil {
		return nil, err
	}
	name := req.GetOptions().GetName()
	if err := p.m.Enable(ctx, name); err != nil {
		return nil, projectionError(ctx, name, err)
	}
	return &projpb.EnableResp{}, nil
}

// Reset starts the projection again from the beginning. KurrentDB accepts
// write_checkpoint and does not use it; neither does cairn.
func (p *projectionsService) Reset(ctx context.Context, req *projpb.ResetReq) (*projpb.ResetResp, error) {
	if err := p.s.allowOperator(ctx, "reset a projection"); err != nil {
		return nil, err
	}
	name := req.GetOptions().GetName()
	if err := p.m.Reset(ctx, name); err != nil {
		return nil, projectionError(ctx, name, err)
	}
	return &projpb.ResetResp{}, nil
}

func (p *projectionsService) State(ctx context.Context, req *projpb.StateReq) (*projpb.StateResp, error) {
	if err := p.s.allowUser(ctx, "read the state of a projection"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	b, err := p.m.State(ctx, o.GetName(), o.GetPartition())
	if err != nil {
		return nil, projectionError(ctx, o.GetName(), err)
	}
	v, err := jsonValue(b)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "state of projection %q: %v", o.GetName(), err)
	}
	return &projpb.StateResp{State: v}, nil
}

func (p *projectionsService) Result(ctx context.Context, req *projpb.ResultReq) (*projpb.ResultResp, error) {
	if err := p.s.allowUser(ctx, "read the result of a projection"); err != nil {
		return nil, err
	}
	o := req.GetOptions()
	b, err := p.m.Result(ctx, o.GetName(), o.GetPartition())
	if err != nil {
		return nil, projectionError(ctx, o.GetName(), err)
	}
	v, err := jsonValue(b)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "result of projection %q: %v", o.GetName(), err)
	}
	return &projpb.ResultResp{Result: v}, nil
}

func (p *projectionsService) RestartSubsystem(ctx context.Context, _ *shared.Empty) (*shared.Empty, error) {
	if err := p.s.allowOperator(ctx, "restart the projections"); err != nil {
		return nil, err
	}
	if err := p.m.RestartSubsystem(ctx); err != nil {
		return nil, projectionError(ctx, "", err)
	}
	return &shared.Empty{}, nil
}

// jsonValue converts a state or result to the protocol's Value; no state
// is an empty object, as KurrentDB answers.
func jsonValue(b []byte) (*structpb.Value, error) {
	if len(b) == 0 {
		return structpb.NewStructValue(&structpb.Struct{}), nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	pv, err := structpb.NewValue(v)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	return pv, nil
}
