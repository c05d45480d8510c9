package natsstore

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairndb/cairn"
)

// reclaims gives the log's space back on this node after each compaction:
// the applier asks for it when it applied a compaction's last purge step,
// and one goroutine reclaims (diskstore.DB.Reclaim) while the applier
// goes on. Asks that come while it reclaims are served by one more
// reclaim. An ask not served yet is kept in a file of the node's
// directory, so that a node that stops first reclaims when it opens again.
type reclaims struct {
	path    string // the file that says an ask waits
	lg      *slog.Logger
	mu      sync.Mutex
	asked   uint64        // counts the asks
	served  uint64        // the asks served by the last reclaim finished
	err     error         // that reclaim's error
	wake    chan struct{} // holds a token while an ask waits
	changed chan struct{} // closed, and replaced, when a reclaim finishes
}

// reclaimFails, when set (by tests), is what every reclaim of the nodes
// opened meanwhile returns, instead of reclaiming: as if each stopped
// before it gave the space back.
var reclaimFails error

// reclaimFile names the file, in the node's directory, that says the node
// has a reclaim to do.
const reclaimFile = "reclaim-pending"

func newReclaims(dir string, lg *slog.Logger) *reclaims {
	return &reclaims{path: filepath.Join(dir, reclaimFile), lg: lg, wake: make(chan struct{}, 1), changed: make(chan struct{})}
}

// pending reports whether an ask of an earlier opening of the node was
// not served.
func (r *reclaims) pending() bool {
	_, err := os.Stat(r.path)
	return err == nil
}

// ask asks for a reclaim after every purge step applied so far.
func (r *reclaims) ask() {
	r.mu.Lock()
	r.asked++
	if r.asked == r.served+1 {
		if err := os.WriteFile(r.path, nil, 0o644); err != nil {
			r.lg.Warn("natsstore: noting a reclaim to do", "err", err)
		}
	}
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
	if err == nil && served >= r.asked {
		if rerr := os.Remove(r.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			r.lg.Warn("natsstore: removing the note of a reclaim done", "err", rerr)
		}
	}
	r.served, r.err = max(r.served, served), err
	close(r.changed)
	r.changed = make(chan struct{})
}
