package kurrentdbsvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairndb/cairn/server/kurrentdbsvc/operationspb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Scavenge describes a scavenge: the engine's compaction, run in the
// background, one at a time (see [Services.StartScavenge]).
type Scavenge struct {
	// ID names the scavenge, as the Operations service reports it.
	ID string
	// Running says it has not ended.
	Running bool
	// Started is when it began; Ended when it ended, zero while it runs.
	Started, Ended time.Time
	// Stopped says it was stopped before it finished: by
	// [Services.StopScavenge], or by the server's shutdown.
	Stopped bool
	// Err is why it failed, nil when it did not.
	Err error
	// BytesBefore is the store's size on disk when it began, -1 when the
	// engine does not say; BytesAfter its size when it ended.
	BytesBefore, BytesAfter int64
}

// ErrNoScavenge is returned by [Services.StopScavenge] for an id that names
// neither the running scavenge nor the last one.
var ErrNoScavenge = errors.New("no such scavenge")

// operationsService serves the scavenge calls of the Operations service: a
// scavenge runs the engine's compaction in the background, one at a time.
// A scavenge started while one runs reports the running one as in progress.
// Stopping cancels the compaction's context; an engine may finish the step
// it is in first.
type operationsService struct {
	operationspb.UnimplementedOperationsServer
	s *Services

	// mu guards cur, cancel and last; it is a leaf, and the scavenge's
	// goroutine takes it only after the compaction returned.
	mu     sync.Mutex
	cur    *Scavenge          // the running scavenge, nil when none
	cancel context.CancelFunc // stops it
	last   *Scavenge          // the last scavenge that ended
	wg     sync.WaitGroup     // the running scavenge, for shutdown
}

// wait waits for a running scavenge to end; the server's quit channel has
// cancelled it.
func (o *operationsService) wait() { o.wg.Wait() }

// StartScavenge starts a scavenge, which runs the Store's compaction in the
// background until it ends, [Services.StopScavenge] stops it, or the host
// shuts down. While one runs it starts none, and returns the running one
// with started false. It checks no permission: the caller has (KurrentDB
// lets administrators and operators scavenge).
func (s *Services) StartScavenge() (sc Scavenge, started bool) {
	return s.ops.start()
}

// StopScavenge stops the running scavenge when id names it; an id that
// names the last one, which has ended, does nothing. Any other id is
// [ErrNoScavenge]. The compaction ends at its next step. It checks no
// permission.
func (s *Services) StopScavenge(id string) error { return s.ops.stop(id) }

// LastScavenge returns the running scavenge, or else the last one that
// ended since the services started, and false when there has been none.
func (s *Services) LastScavenge() (Scavenge, bool) {
	o := s.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.cur != nil:
		return *o.cur, true
	case o.last != nil:
		return *o.last, true
	}
	return Scavenge{}, false
}

func (o *operationsService) start() (Scavenge, bool) {
	store := o.s.store
	// Measured outside the lock: it may ask a database.
	before, err := store.DiskBytes(context.Background())
	if err != nil {
		before = -1
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur != nil {
		return *o.cur, false
	}
	sc := &Scavenge{ID: uuid.NewString(), Running: true, Started: time.Now(), BytesBefore: before, BytesAfter: -1}
	// The scavenge outlives the call that started it, not the server.
	sctx, cancel := context.WithCancel(context.Background())
	o.cur, o.cancel = sc, cancel
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
		err := store.Compact(sctx)
		stopped := sctx.Err() != nil
		if err != nil && !stopped {
			o.s.log.Error("scavenge failed", "id", sc.ID, "err", err)
		} else {
			o.s.log.Info("scavenge ended", "id", sc.ID, "stopped", stopped)
		}
		cancel()
		after, serr := store.DiskBytes(context.Background())
		if serr != nil {
			after = -1
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		done := *sc
		done.Running, done.Ended, done.Stopped, done.BytesAfter = false, time.Now(), stopped, after
		if err != nil && !stopped {
			done.Err = fmt.Errorf("scavenge: %w", err)
		}
		o.last = &done
		if o.cur == sc {
			o.cur, o.cancel = nil, nil
		}
	}()
	o.s.log.Info("scavenge started", "id", sc.ID)
	return *sc, true
}

func (o *operationsService) stop(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case id != "" && o.cur != nil && id == o.cur.ID:
		o.cancel()
	case id != "" && o.last != nil && id == o.last.ID:
	default:
		return fmt.Errorf("%w with id %q", ErrNoScavenge, id)
	}
	return nil
}

func (o *operationsService) StartScavenge(ctx context.Context, _ *operationspb.StartScavengeReq) (*operationspb.ScavengeResp, error) {
	if err := o.s.allowOperator(ctx, "start a scavenge"); err != nil {
		return nil, err
	}
	sc, started := o.start()
	result := operationspb.ScavengeResp_Started
	if !started {
		result = operationspb.ScavengeResp_InProgress
	}
	return &operationspb.ScavengeResp{ScavengeId: sc.ID, ScavengeResult: result}, nil
}

func (o *operationsService) StopScavenge(ctx context.Context, req *operationspb.StopScavengeReq) (*operationspb.ScavengeResp, error) {
	if err := o.s.allowOperator(ctx, "stop a scavenge"); err != nil {
		return nil, err
	}
	id := req.GetOptions().GetScavengeId()
	if err := o.stop(id); err != nil {
		return nil, status.Errorf(codes.NotFound, "no scavenge with id %q", id)
	}
	return &operationspb.ScavengeResp{ScavengeId: id, ScavengeResult: operationspb.ScavengeResp_Stopped}, nil
}
