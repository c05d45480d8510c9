package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
)

// The gRPC floor: a server of the one call K1 and K2 make, the v1 Append,
// that answers every append at once with success and keeps nothing. Run
// against it with the same client, the same TLS and the same load, K1 and
// K2 show what the protocol alone (gRPC-Go, HTTP/2, TLS and the official
// client) costs on the machine, so that a wire figure can be read against
// what no server speaking the protocol through gRPC-Go could pass there.

// NewFloor returns a gRPC server, made with opts (its transport
// credentials, say), that serves the floor. It authenticates nobody: the
// credentials the clients send are not read.
func NewFloor(opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(opts...)
	api.RegisterStreamsServer(s, floor{})
	return s
}

// floor is the Streams service of the floor: Append only.
type floor struct {
	api.UnimplementedStreamsServer
}

// Append reads the call's messages and answers success, the stream at the
// revision after the one expected (0 when no revision is expected), as if
// every event had been appended.
func (floor) Append(call grpc.ClientStreamingServer[api.AppendReq, api.AppendResp]) error {
	next := uint64(0)
	events := uint64(0)
	for {
		m, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if o := m.GetOptions(); o != nil {
			if r, ok := o.ExpectedStreamRevision.(*api.AppendReq_Options_Revision); ok {
				next = r.Revision + 1
			}
		} else if m.GetProposedMessage() != nil {
			events++
		}
	}
	if events == 0 {
		return fmt.Errorf("bench: an append of no events")
	}
	rev := next + events - 1
	return call.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: rev},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: rev, PreparePosition: rev}},
	}}})
}

// floorLoad runs l against the floor of the run's server, if it has one,
// and reports the floor's throughput beside the run's in process (local,
// in events/s): what no server could pass here; the run's throughput over
// the wire (wire) beside the floor's; and the floor's CPU per event.
func (r *runner) floorLoad(ctx context.Context, workload, metric string, l appendLoad, wire, local float64, shared bool) error {
	f := r.cfg.Wire.Floor
	if f == nil {
		return nil
	}
	app, closeAll, err := r.connect(ctx, f, l.appenders, shared)
	if err != nil {
		return fmt.Errorf("the gRPC floor: %w", err)
	}
	defer closeAll()
	fl := l
	fl.label, fl.stream = workload+" gRPC floor", l.stream+"-floor"
	cpu0 := serverCPU(f)
	events, thr, _, err := r.runLoad(ctx, fl, app)
	if err != nil {
		return fmt.Errorf("the gRPC floor: %w", err)
	}
	cpu1 := serverCPU(f)
	r.report(Result{Workload: workload, Metric: metric + ": gRPC floor", Unit: "events/s", Value: thr, Raw: local, HasRaw: true})
	r.report(Result{Workload: workload, Metric: metric + ": wire vs gRPC floor", Unit: "events/s", Value: wire, Raw: thr, HasRaw: true})
	if cpu0 >= 0 && cpu1 >= 0 {
		r.report(Result{Workload: workload, Metric: metric + ": gRPC floor CPU/event", Unit: "us", Value: float64(cpu1-cpu0) / float64(time.Microsecond) / float64(events)})
	}
	return nil
}

// serverCPU returns the CPU time w's server has used, or -1 when it is not
// known.
func serverCPU(w *Wire) time.Duration {
	if w.ServerCPU == nil {
		return -1
	}
	return w.ServerCPU()
}

// connect returns the appenders of a load of n appenders over w: sharing
// one connection, or each with its own; and a function that closes them.
func (r *runner) connect(ctx context.Context, w *Wire, n int, shared bool) (func(int) appender, func(), error) {
	conns := n
	if shared {
		conns = 1
	}
	apps := make([]appender, 0, conns)
	closers := make([]func(), 0, conns)
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for range conns {
		a, closeConn, err := r.wireAppender(ctx, w)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		apps, closers = append(apps, a), append(closers, closeConn)
	}
	return func(i int) appender { return apps[i%len(apps)] }, closeAll, nil
}
