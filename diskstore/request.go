package diskstore

import (
	"context"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// request is what every write handed to the committer carries, whatever
// its operation: its context, and its answer. Each operation below embeds
// one and adds its own arguments and results; the committer tells them
// apart by their type (see group.do).
type request struct {
	ctx  context.Context
	size int // frameBytes(op), once computed
	err  error
	done chan struct{} // closed once the write is answered
	// visible, when set (an applied group), is closed once the write is
	// published to readers, before it is durable, with
	// Options.VisibleBeforeSync; it may stay open when done is closed.
	visible chan struct{}
}

// operation is one write: a pointer to one of the types below.
type operation interface {
	// base returns the request the operation embeds.
	base() *request
	// appends returns the appends the operation writes (none for most
	// operations), by which a group's events and bytes are bounded.
	appends() []cairn.AppendRequest
	// exclusive reports whether the operation is committed in a group of
	// its own.
	exclusive() bool
}

func (r *request) base() *request                 { return r }
func (r *request) appends() []cairn.AppendRequest { return nil }
func (r *request) exclusive() bool                { return false }

// finish answers r at once, without waiting for the syncer: only for a
// request that writes nothing and follows no group in flight.
func (r *request) finish(err error) {
	r.err = err
	close(r.done)
}

// appendOp appends events to one stream.
type appendOp struct {
	request
	req    [1]cairn.AppendRequest // an array, so that appends returns it without allocating
	result cairn.AppendResult
}

func (o *appendOp) appends() []cairn.AppendRequest { return o.req[:] }

// batchOp appends to several streams, all or none.
type batchOp struct {
	request
	reqs    []cairn.AppendRequest
	results []cairn.AppendResult
}

func (o *batchOp) appends() []cairn.AppendRequest { return o.reqs }

// commitAllOp appends to one stream and runs projections that write into
// the same batch, in a group of its own.
type commitAllOp struct {
	request
	req         [1]cairn.AppendRequest
	projections []cairn.Projection
	result      cairn.AppendResult
	// plan, when set, makes the commit a plan (see DB.PlanCommit): the
	// projections' writes and the positions they were given are recorded
	// there, planned is set, and nothing is written.
	plan    *Plan
	planned bool
	at      int64 // a plan's commit time, Unix µs
}

func (o *commitAllOp) appends() []cairn.AppendRequest { return o.req[:] }
func (o *commitAllOp) exclusive() bool                { return true }

// deleteOp soft-deletes a stream.
type deleteOp struct {
	request
	stream   string
	expected cairn.ExpectedVersion
}

// tombstoneOp deletes a stream for good.
type tombstoneOp struct {
	request
	stream   string
	expected cairn.ExpectedVersion
}

// truncateOp hides the versions of a stream below before.
type truncateOp struct {
	request
	stream string
	before int64
}

// snapshotOp stores a stream's snapshot, unless a later one is stored.
type snapshotOp struct {
	request
	snap cairn.Snapshot
}

// healthOp commits a frame that changes no data: proof that the log can
// be written and synced.
type healthOp struct{ request }

// purgeOp is one step of compaction's purge, in a group of its own.
type purgeOp struct {
	request
	step PurgeWrite
	next *PurgeWrite // the step after; nil when this was the last
}

func (o *purgeOp) exclusive() bool { return true }

// flushOp has the index flushed once every group before it is durable,
// in a group of its own.
type flushOp struct {
	request
	flushed marker           // the marker of the index flushed
	snap    *pebble.Snapshot // the index as flushed; the caller closes it
}

func (o *flushOp) exclusive() bool { return true }

// events returns the events op writes, plus one: what a group's size is
// bounded by (Options.MaxGroupEvents).
func events(op operation) int {
	n := 1
	for _, a := range op.appends() {
		n += len(a.Events)
	}
	return n
}

// frameBytes returns about the bytes op adds to a frame.
func frameBytes(op operation) int {
	r := op.base()
	if r.size == 0 {
		_, r.size = groupSize([]operation{op})
	}
	return r.size
}

// maxGroupBytes bounds the bytes of the requests committed in one group;
// a larger request is committed in a group of its own.
const maxGroupBytes = 64 << 20

// maxWriteBytes bounds one write (a frame's lengths are 32-bit).
const maxWriteBytes = 1 << 30

// groupSize returns about the size of the index batch and of the frame
// that ops write, so that both are allocated once rather than grown (and
// copied) again and again.
func groupSize(ops []operation) (index, frame int) {
	index, frame = 12+markerLen+16, seglog.HeaderLen
	for _, op := range ops {
		for _, a := range op.appends() {
			// The run, locator, retry and stream records, and the
			// blocks of the index lists (filing.go).
			index += 3*len(a.Stream) + 160 + blockBytes(len(a.Events))
			for i := range a.Events {
				frame += 5 + eventSize(a.Stream, &a.Events[i])
			}
		}
	}
	return index, frame + index
}
