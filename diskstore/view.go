package diskstore

import (
	"context"
	"sync/atomic"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/invariants"
	"github.com/cockroachdb/pebble/v2"
)

const anchorGroups = 1024

// renewAnchor replaces the anchor with a snapshot of the current state.
func (d *DB) renewAnchor() {
	old := d.anchor
	d.anchor = d.pdb.NewSnapshot()
	_ = old.Close()
}

// view is a durable, consistent state of the store that readers share.
type view struct {
	snap *pebble.Snapshot
	runs []*runGen // the runs in memory snap may lack (runs.go)
	next uint64    // positions below are committed
	refs atomic.Int32
	gone chan struct{} // closed when the last reference is released
	d    *DB
}

func (v *view) release() {
	if v.refs.Add(-1) == 0 {
		_ = v.snap.Close()
		v.d.viewMu.Lock()
		delete(v.d.live, v)
		v.d.viewMu.Unlock()
		close(v.gone)
	}
}

// index returns what v's readers read.
func (v *view) index() index {
	return index{Reader: v.snap, mem: memRuns{gens: v.runs, next: v.next}}
}

// publish makes snap and the runs in memory it may lack, whose positions
// below next are committed, the read view. Only the syncer (or Open, before it starts) calls it, after the
// writes in snap are durable (before, with Options.VisibleBeforeSync).
// Positions published only rise.
func (d *DB) publish(snap *pebble.Snapshot, runs []*runGen, next uint64) {
	v := &view{snap: snap, runs: runs, next: next, gone: make(chan struct{}), d: d}
	v.refs.Store(1)
	d.viewMu.Lock()
	old := d.view
	if invariants.Enabled && old != nil && next < old.next {
		d.viewMu.Unlock()
		invariants.Failf("diskstore: positions below %d published after positions below %d", next, old.next)
	}
	d.view = v
	d.live[v] = struct{}{}
	d.viewMu.Unlock()
	if old != nil {
		old.release()
	}
}

// waitOldViews waits until every view older than the current one is
// released: no reader still reads through an index that points at log
// bytes that compaction is about to free.
func (d *DB) waitOldViews(ctx context.Context) error {
	d.viewMu.RLock()
	var old []*view
	for v := range d.live {
		if v != d.view {
			old = append(old, v)
		}
	}
	d.viewMu.RUnlock()
	for _, v := range old {
		select {
		case <-v.gone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// acquire returns the current read view; the caller must call d.releaseView.
func (d *DB) acquire(ctx context.Context) (*view, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.viewMu.RLock()
	defer d.viewMu.RUnlock()
	v := d.view
	if v == nil {
		return nil, cairn.ErrClosed
	}
	v.refs.Add(1)
	d.readers.Add(1)
	return v, nil
}

// enterReader counts a reader that holds no view (but a snapshot of its
// own), so that Close waits for it to call d.readers.Done; ErrClosed once
// the store is closing.
func (d *DB) enterReader() error {
	d.viewMu.RLock()
	defer d.viewMu.RUnlock()
	if d.view == nil {
		return cairn.ErrClosed
	}
	d.readers.Add(1)
	return nil
}

func (d *DB) releaseView(v *view) {
	v.release()
	d.readers.Done()
}
