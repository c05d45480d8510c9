package diskstore

import (
	"context"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
)

type opKind uint8

const (
	opAppend opKind = iota
	opBatch
	opCommitAll
	opDelete
	opTombstone
	opTruncate
	opSnapshot
	opPurge
	opHealth
	opFlush
)

// request is one write handed to the committer.
type request struct {
	ctx         context.Context
	kind        opKind
	reqs        []cairn.AppendRequest // opAppend (one), opBatch, opCommitAll (one)
	projections []cairn.Projection
	stream      string                // opDelete, opTombstone, opTruncate; opPurge: resume after
	expected    cairn.ExpectedVersion // opDelete, opTombstone
	before      int64
	snap        cairn.Snapshot

	size    int    // bytes(), once computed
	flushed marker // opFlush: the marker of the index flushed

	results []cairn.AppendResult
	next    string // opPurge: where the next step resumes; "" when done
	err     error
	done    chan struct{}
}

// exclusive requests are committed in a group of their own.
func (r *request) exclusive() bool {
	return r.kind == opCommitAll || r.kind == opPurge || r.kind == opFlush
}

func (r *request) events() int {
	n := 1
	for _, a := range r.reqs {
		n += len(a.Events)
	}
	return n
}

// bytes returns about the bytes r adds to a frame.
func (r *request) bytes() int {
	if r.size == 0 {
		_, r.size = groupSize([]*request{r})
	}
	return r.size
}

// maxGroupBytes bounds the bytes of the requests committed in one group;
// a larger request is committed in a group of its own.
const maxGroupBytes = 64 << 20

// maxWriteBytes bounds one write (a frame's lengths are 32-bit).
const maxWriteBytes = 1 << 30

func (r *request) finish(err error) {
	r.err = err
	close(r.done)
}

// groupSize returns about the size of the index batch and of the frame
// that reqs write, so that both are allocated once rather than grown (and
// copied) again and again.
func groupSize(reqs []*request) (index, frame int) {
	index, frame = 12+markerLen+16, seglog.HeaderLen
	for _, r := range reqs {
		for _, a := range r.reqs {
			// The run, locator, retry and stream records.
			index += 3*len(a.Stream) + 160
			for i := range a.Events {
				frame += 5 + eventSize(a.Stream, &a.Events[i])
			}
		}
	}
	return index, frame + index
}
