package kurrentdbsvc

import (
	"context"
	"sync"

	"github.com/cairndb/cairn/server/kurrentdbsvc/operationspb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// operationsService serves the scavenge calls of the Operations service: a
// scavenge runs the engine's compaction in the background, one at a time.
// A scavenge started while one runs reports the running one as in progress.
// Stopping cancels the compaction's context; an engine may finish the step
// it is in first.
type operationsService struct {
	operationspb.UnimplementedOperationsServer
	s *Services

	// mu guards id, cancel and last; it is a leaf, and the scavenge's
	// goroutine takes it only after the compaction returned.
	mu     sync.Mutex
	id     string             // the running scavenge, "" when none
	cancel context.CancelFunc // stops it
	last   string             // the last scavenge that ended
	wg     sync.WaitGroup     // the running scavenge, for shutdown
}

// wait waits for a running scavenge to end; the server's quit channel has
// cancelled it.
func (o *operationsService) wait() { o.wg.Wait() }

func (o *operationsService) StartScavenge(ctx context.Context, _ *operationspb.StartScavengeReq) (*operationspb.ScavengeResp, error) {
	if err := o.s.allowOperator(ctx, "start a scavenge"); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.id != "" {
		return &operationspb.ScavengeResp{ScavengeId: o.id, ScavengeResult: operationspb.ScavengeResp_InProgress}, nil
	}
	id := uuid.NewString()
	// The scavenge outlives the call that started it, not the server.
	sctx, cancel := context.WithCancel(context.Background())
	o.id, o.cancel = id, cancel
	go func() {
		defer cancel()
		select { // end with the server
		case <-o.s.quit:
			cancel()
		case <-sctx.Done():
		}
	}()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		err := o.s.store.Compact(sctx)
		if err != nil && sctx.Err() == nil {
			o.s.log.Error("scavenge failed", "id", id, "err", err)
		} else {
			o.s.log.Info("scavenge ended", "id", id, "stopped", sctx.Err() != nil)
		}
		cancel()
		o.mu.Lock()
		defer o.mu.Unlock()
		o.last = id
		if o.id == id {
			o.id, o.cancel = "", nil
		}
	}()
	o.s.log.Info("scavenge started", "id", id)
	return &operationspb.ScavengeResp{ScavengeId: id, ScavengeResult: operationspb.ScavengeResp_Started}, nil
}

func (o *operationsService) StopScavenge(ctx context.Context, req *operationspb.StopScavengeReq) (*operationspb.ScavengeResp, error) {
	if err := o.s.allowOperator(ctx, "stop a scavenge"); err != nil {
		return nil, err
	}
	id := req.GetOptions().GetScavengeId()
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case id != "" && id == o.id:
		o.cancel()
	case id != "" && id == o.last:
	default:
		return nil, status.Errorf(codes.NotFound, "no scavenge with id %q", id)
	}
	return &operationspb.ScavengeResp{ScavengeId: id, ScavengeResult: operationspb.ScavengeResp_Stopped}, nil
}
