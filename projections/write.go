package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cairndb/cairn"
)

// checkpointDue reports whether the runner must checkpoint before its next
// event: it handled CheckpointHandledThreshold events, or holds too many
// events to emit.
func (r *runner) checkpointDue() bool {
	if !r.mode.checkpoints() {
		return false
	}
	o := &r.m.opts
	return r.handled >= o.CheckpointHandledThreshold ||
		len(r.emits) >= o.MaxPendingEvents || r.emitBytes >= o.MaxPendingBytes
}

// checkpointWait reports whether there is something to checkpoint, and how
// long until CheckpointAfter has passed since the last checkpoint.
func (r *runner) checkpointWait() (time.Duration, bool) {
	if !r.mode.checkpoints() || !r.loaded || r.loadErr != nil {
		return 0, false
	}
	if r.handled == 0 && len(r.emits) == 0 && r.scanned < r.m.opts.CheckpointUnhandledThreshold {
		return 0, false
	}
	return max(time.Until(r.lastCPTime.Add(r.m.opts.CheckpointAfter)), 0), true
}

func (r *runner) checkpointElapsed() bool {
	return time.Since(r.lastCPTime) >= r.m.opts.CheckpointAfter
}

// batch gathers the requests of one checkpoint, one per stream.
type batch struct {
	reqs  []cairn.AppendRequest
	index map[string]int
}

func (b *batch) add(stream string, e cairn.EventData) {
	if b.index == nil {
		b.index = map[string]int{}
	}
	i, ok := b.index[stream]
	if !ok {
		i = len(b.reqs)
		b.index[stream] = i
		b.reqs = append(b.reqs, cairn.AppendRequest{Stream: stream, Expected: cairn.Any})
	}
	b.reqs[i].Events = append(b.reqs[i].Events, e)
}

// checkpoint writes, in one batch, everything the projection produced since
// its last checkpoint (the events its handlers emitted, the states and
// results of the partitions that changed, the new partitions and emitted
// streams) and the checkpoint itself: the position to read next and the
// root and shared states. See the package documentation for why this
// emits each event exactly once.
func (r *runner) checkpoint() error {
	if !r.mode.checkpoints() || !r.loaded || r.loadErr != nil {
		return nil
	}
	if r.pos == r.lastCP.next && r.handled == 0 && len(r.emits) == 0 {
		r.lastCPTime = time.Now()
		return nil
	}
	at := r.lastCP
	at.next, at.version = r.pos, r.def.Version
	at.stream = r.src.stream()
	meta := at.metadata(nil)
	id := func(kind string, parts ...string) cairn.EventData {
		return cairn.EventData{ID: eventID(r.name, r.def.ProjectionID, r.def.Epoch, append([]string{kind, strconv.FormatUint(at.next, 10)}, parts...)...)}
	}

	var b batch
	for _, pe := range r.emits {
		b.add(pe.stream, pe.event)
	}
	for _, s := range r.newTracked {
		e := cairn.EventData{ID: eventID(r.name, r.def.ProjectionID, r.def.Epoch, "tracked", s), Type: typeStreamTracked, ContentType: cairn.ContentBinary, Data: []byte(s)}
		b.add(r.names.emitted(), e)
	}
	for _, p := range r.newParts {
		e := cairn.EventData{ID: eventID(r.name, r.def.ProjectionID, r.def.Epoch, "partition", p), Type: typePartition, ContentType: cairn.ContentBinary, Data: []byte(p)}
		b.add(r.names.partitions(), e)
	}
	dirty := map[string][]byte{}
	r.cache.each(func(ps *partState) {
		if ps.dirty {
			dirty[ps.key] = ps.json
		}
	})
	for k, v := range r.evicted {
		dirty[k] = v
	}
	for k, st := range dirty {
		e := id("state", k)
		e.Type, e.Data, e.Metadata = typePartitionState, jsonOrNull(st), meta
		b.add(r.names.partitionState(k), e)
	}
	if r.spec.OutputState {
		results := dirty
		if r.root != nil && r.root.dirty {
			results = map[string][]byte{"": r.root.json}
		}
		for k, st := range results {
			res, err := r.transform(st)
			if err != nil {
				return err
			}
			if res == nil {
				continue
			}
			e := id("result", k)
			e.Type, e.Data, e.Metadata = typeResult, res, meta
			b.add(r.names.resultOf(k), e)
		}
	}
	var shared []byte
	if r.shared != nil {
		shared = jsonOrNull(r.shared.json)
	}
	cp := id("checkpoint", strconv.FormatInt(r.def.Version, 10))
	cp.Type, cp.Metadata = typeCheckpoint, at.metadata(shared)
	if r.root != nil {
		cp.Data = jsonOrNull(r.root.json)
	}
	expected := cairn.NoStream
	if r.cpVersion >= 0 {
		expected = cairn.Exact(r.cpVersion)
	}
	if _, dup := b.index[r.names.checkpoint()]; dup {
		return fmt.Errorf("the query writes to its own checkpoint stream %q", r.names.checkpoint())
	}
	b.reqs = append(b.reqs, cairn.AppendRequest{Stream: r.names.checkpoint(), Expected: expected, Events: []cairn.EventData{cp}})

	r.mu.Lock()
	r.stats.writing = true
	r.mu.Unlock()
	version, err := r.write(b.reqs)
	r.mu.Lock()
	r.stats.writing = false
	r.mu.Unlock()
	if err != nil {
		return err
	}

	// Written: forget it.
	r.cpVersion, r.lastCP, r.lastCPTime = version, at, time.Now()
	r.emits, r.emitBytes, r.newTracked, r.newParts = r.emits[:0], 0, nil, nil
	r.cache.each(func(ps *partState) { ps.dirty = false })
	clear(r.evicted)
	if r.root != nil {
		r.root.dirty = false
	}
	if r.shared != nil {
		r.shared.dirty = false
	}
	r.handled, r.scanned = 0, 0
	r.cpCount++
	r.trimCheckpoints()
	r.mu.Lock()
	r.stats.lastCheckpoint = at.String()
	r.stats.pendingWrites = 0
	r.mu.Unlock()
	return nil
}

func jsonOrNull(b []byte) []byte {
	if b == nil {
		return []byte("null")
	}
	return b
}

// errCheckpointConflict is KurrentDB's reason for a checkpoint stream that
// another writer (another Manager running the same projection) appended to.
func errCheckpointConflict(stream string) error {
	return fmt.Errorf("checkpoint stream `%s` has been written to from the outside", stream)
}

// write appends a checkpoint's requests and returns the checkpoint
// stream's new version. The checkpoint is the last request.
//
// With an engine that appends batches atomically it is one AppendBatch:
// all or nothing. Without, each event is appended on its own, in order,
// the checkpoint last: a crash may leave some of them written, but every
// event has a deterministic id, so after the restart the same events,
// written again, are recognised by their id and not written twice.
//
// A failure that may be transient (an I/O error, a timeout) is retried with
// the same requests, which the ids make safe even when the failed attempt
// was in fact committed.
func (r *runner) write(reqs []cairn.AppendRequest) (int64, error) {
	cpStream := reqs[len(reqs)-1].Stream
	_, atomic := r.store.Backend().(cairn.BatchAppender)
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var v int64
		var err error
		if atomic {
			var res []cairn.AppendResult
			res, err = r.store.AppendBatch(r.ctx, reqs...)
			if err == nil {
				v = res[len(res)-1].Version
			}
		} else {
			v, err = r.writeEach(reqs)
		}
		switch {
		case err == nil:
			return v, nil
		case r.ctx.Err() != nil:
			return 0, r.ctx.Err()
		case errors.Is(err, cairn.ErrWrongExpectedVersion):
			return 0, errCheckpointConflict(cpStream)
		case errors.Is(err, cairn.ErrInvalidArgument), errors.Is(err, cairn.ErrDuplicateEvent),
			errors.Is(err, cairn.ErrStreamDeleted), errors.Is(err, cairn.ErrClosed), attempt >= 5:
			return 0, fmt.Errorf("write the checkpoint: %w", err)
		}
		r.log.Warn("writing the checkpoint failed; trying again", "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		backoff *= 2
	}
}

func (r *runner) writeEach(reqs []cairn.AppendRequest) (int64, error) {
	var v int64
	for _, req := range reqs {
		for _, e := range req.Events {
			res, err := r.store.Append(r.ctx, req.Stream, req.Expected, e)
			if err != nil {
				return 0, err
			}
			v = res.Version
		}
	}
	return v, nil
}

// trimCheckpoints hides all but the last two checkpoints, as KurrentDB's
// $maxCount of 2 on the checkpoint stream does, every 64 checkpoints, on
// engines that truncate streams.
func (r *runner) trimCheckpoints() {
	if r.cpCount%64 != 0 || r.cpVersion < 2 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	err := r.store.TruncateStream(ctx, r.names.checkpoint(), r.cpVersion-1)
	if err != nil && !errors.Is(err, cairn.ErrNotSupported) && r.ctx.Err() == nil {
		r.log.Warn("could not trim the checkpoint stream", "err", err)
	}
}
