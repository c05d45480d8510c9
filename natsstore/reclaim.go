package natsstore

import (
	"context"
	"math"
	"sync"

	"github.com/cairndb/cairn"
)

// reclaims gives the log's space back on this node after each compaction:
// the applier asks for it when it applied a compaction's last purge step,
// and one goroutine reclaims (diskstore.DB.Reclaim) while the applier
// goes on. Asks that come while it reclaims are served by one more
// reclaim.
type reclaims struct {
	mu      sync.Mutex
	asked   uint64        // counts the asks
	served  uint64        // the asks served by the last reclaim finished
	err     error         // that reclaim's error
	wake    chan struct{} // holds a token while an ask waits
	changed chan struct{} // closed, and replaced, when a reclaim finishes
}

func newReclaims() *reclaims {
	return &reclaims{wake: make(chan struct{}, 1), changed: make(chan struct{})}
}

// ask asks for a reclaim after every purge step applied so far.
func (r *reclaims) ask() {
	r.mu.Lock()
	r.asked++
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// wait waits until a reclaim asked for before it was called has finished,
// and returns that reclaim's error.
func (r *reclaims) wait(ctx context.Context) error {
	r.mu.Lock()
	want := r.asked
	for r.served < want {
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
	err := r.err
	r.mu.Unlock()
	return err
}

// loop reclaims, with reclaim, whenever asked, until ctx ends; it then
// answers the waiting with ctx's end.
func (r *reclaims) loop(ctx context.Context, reclaim func(context.Context) error) {
	for {
		select {
		case <-r.wake:
		case <-ctx.Done():
			r.finish(math.MaxUint64, cairn.ErrClosed)
			return
		}
		r.mu.Lock()
		asked := r.asked
		r.mu.Unlock()
		r.finish(asked, reclaim(ctx))
	}
}

func (r *reclaims) finish(served uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.served, r.err = max(r.served, served), err
	close(r.changed)
	r.changed = make(chan struct{})
}
