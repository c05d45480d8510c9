package diskstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
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

	results []cairn.AppendResult
	next    string // opPurge: where the next step resumes; "" when done
	err     error
	done    chan struct{}
}

// exclusive requests are committed in a group of their own.
func (r *request) exclusive() bool { return r.kind == opCommitAll || r.kind == opPurge }

func (r *request) events() int {
	n := 1
	for _, a := range r.reqs {
		n += len(a.Events)
	}
	return n
}

func (r *request) finish(err error) {
	r.err = err
	close(r.done)
}

// submit hands r to the committer and waits until it is durable or failed.
func (d *DB) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.ctx = ctx
	r.done = make(chan struct{})
	d.subMu.RLock()
	if d.closed {
		d.subMu.RUnlock()
		return cairn.ErrClosed
	}
	if err := d.failed(); err != nil {
		d.subMu.RUnlock()
		return err
	}
	d.reqs <- r
	d.subMu.RUnlock()
	<-r.done
	return r.err
}

const maxQueue = 4096

// yieldBelow is the queue length below which the committer yields once
// before it forms a group (see commitLoop).
const yieldBelow = 8

// yieldBelowEvents is the number of events below which it yields.
const yieldBelowEvents = 64

func queuedEvents(queue []*request) int {
	n := 0
	for _, r := range queue {
		n += r.events()
	}
	return n
}

// commitLoop is the committer goroutine: it takes the requests waiting and
// commits them in groups. It exits when Close closes the request channel and
// every request has been handed to the syncer.
func (d *DB) commitLoop() {
	defer close(d.syncq)
	var queue []*request
	open := true
	for {
		if len(queue) == 0 {
			if !open {
				return
			}
			r, ok := <-d.reqs
			if !ok {
				return
			}
			queue = append(queue, r)
		}
		yielded := false
	drain:
		for open && len(queue) < maxQueue {
			select {
			case r, ok := <-d.reqs:
				if !ok {
					open = false
					break drain
				}
				queue = append(queue, r)
			default:
				// Few requests waiting: let the writers that were
				// just answered (and are runnable) submit their next
				// write first, so that they join this group rather
				// than wait for the next fsync. Without it, under 64
				// writers most groups held one or two requests, each
				// with its own batch, log record and snapshot.
				// A large append is worth a group of its own.
				if !yielded && len(queue) < yieldBelow && queuedEvents(queue) < yieldBelowEvents {
					yielded = true
					runtime.Gosched()
					continue
				}
				break drain
			}
		}
		n := 1
		if !queue[0].exclusive() {
			events := queue[0].events()
			for n < len(queue) && !queue[n].exclusive() && events+queue[n].events() <= d.opts.MaxGroupEvents {
				events += queue[n].events()
				n++
			}
		}
		deferred := d.commit(queue[:n])
		queue = append(deferred, queue[n:]...)
	}
}

// group is the state of one group commit.
type group struct {
	d       *DB
	b       *pebble.Batch
	next    uint64 // next position
	now     int64  // commit time, Unix µs
	ids     map[uuid.UUID]bool
	snaps   map[string]int64
	key     []byte // reused for encoding keys
	scratch []byte // reused for encoding values
}

func (d *DB) newGroup(indexed bool, size int) *group {
	g := &group{d: d, next: d.next, now: cairn.Now().UnixMicro(), ids: map[uuid.UUID]bool{}}
	if indexed {
		g.b = d.pdb.NewIndexedBatch()
	} else {
		g.b = d.pdb.NewBatchWithSize(size)
	}
	return g
}

// batchSize returns about the size of the batch that reqs write, so that
// the batch is allocated once rather than grown (and copied) again and
// again.
func batchSize(reqs []*request) int {
	n := 12 // the batch header
	for _, r := range reqs {
		for _, a := range r.reqs {
			// The run, retry and stream records.
			n += 3*len(a.Stream) + 96
			for i := range a.Events {
				n += 9 + 10 + eventSize(a.Stream, &a.Events[i])
			}
		}
	}
	return n
}

// commit prepares one group of requests and hands it to the syncer. It
// returns the requests that must wait for the next group.
func (d *DB) commit(reqs []*request) (deferred []*request) {
	if err := d.failed(); err != nil {
		for _, r := range reqs {
			r.finish(err)
		}
		return nil
	}
	d.evictHeads()
	switch reqs[0].kind {
	case opCommitAll:
		d.commitAll(reqs[0])
		return nil
	case opPurge:
		d.purgeStep(reqs[0])
		return nil
	}
	g := d.newGroup(false, batchSize(reqs))
	answered := make([]*request, 0, len(reqs))
	wrote := false
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			answered = append(answered, r)
			continue
		}
		w, later, err := g.do(r)
		if later {
			deferred = append(deferred, r)
			continue
		}
		r.err = err
		wrote = wrote || w
		answered = append(answered, r)
	}
	d.handoff(g, wrote, answered)
	return deferred
}

// pending is a group on its way to disk, in the syncer's queue.
type pending struct {
	b    *pebble.Batch    // nil when the group wrote nothing or failed
	wait bool             // wait for the batch's fsync
	snap *pebble.Snapshot // the state after the group, for readers
	next uint64
	reqs []*request // answered in order once the group is durable
}

// handoff writes the group's batch to the log (when it wrote anything) and
// queues its requests, whose results are set, for the syncer. The committer
// goes on with the next group while this one's fsync runs: the log is
// sequential, so groups become durable in order, and the syncer answers
// them and publishes their state to readers in that order.
//
// The snapshot is taken here, right after the batch is applied and before
// the next group is: it holds exactly the groups up to this one.
func (d *DB) handoff(g *group, wrote bool, reqs []*request) {
	p := &pending{reqs: reqs}
	switch {
	case wrote:
		var err error
		if d.opts.NoSync {
			err = d.pdb.Apply(g.b, pebble.NoSync)
		} else {
			err = d.pdb.ApplyNoSyncWait(g.b, pebble.Sync)
		}
		if err == nil {
			// Pebble reports a failed log write through Fatalf, which
			// records the failure; Apply then returns nil.
			err = d.failed()
		}
		if err != nil {
			// The batch is abandoned; the stream heads in memory may be
			// ahead of the disk now, and the store refuses writes.
			err = d.fail(err)
			for _, r := range reqs {
				if r.err == nil {
					r.err = err
				}
			}
			break
		}
		d.next = g.next
		p.b, p.wait, p.snap, p.next = g.b, !d.opts.NoSync, d.pdb.NewSnapshot(), g.next
		if d.groups++; d.groups%anchorGroups == 0 {
			d.renewAnchor()
		}
	case g != nil:
		_ = g.b.Close()
	}
	d.syncq <- p
}

// syncLoop is the syncer goroutine: it waits for each group's fsync, in
// order, publishes the group's state to readers and answers its requests.
func (d *DB) syncLoop() {
	defer close(d.done)
	for p := range d.syncq {
		var err error
		if p.b != nil {
			if p.wait {
				err = p.b.SyncWait()
			}
			if err == nil {
				err = d.failed()
			}
			_ = p.b.Close()
			if err != nil {
				err = d.fail(err)
				_ = p.snap.Close()
			} else {
				d.publish(p.snap, p.next)
			}
		} else {
			// A group that wrote nothing (say, retries answered from the
			// records of earlier groups) is only as good as the groups
			// before it: if one of them failed, so does this one.
			err = d.failed()
		}
		if err != nil {
			for _, r := range p.reqs {
				if r.err == nil {
					r.err = err
				}
			}
		}
		for _, r := range p.reqs {
			close(r.done)
		}
	}
}

// do performs r's checks and adds its writes to the batch. wrote reports
// whether r wrote anything; later asks to retry r in the next group.
func (g *group) do(r *request) (wrote, later bool, err error) {
	switch r.kind {
	case opAppend:
		a := r.reqs[0]
		h, res, retry, later, err := g.check(a.Stream, a.Expected, a.Events)
		if err != nil || later {
			return false, later, err
		}
		if retry {
			r.results = []cairn.AppendResult{res}
			return false, false, nil
		}
		r.results = []cairn.AppendResult{g.write(a.Stream, h, a.Events)}
		return true, false, nil

	case opBatch:
		heads := make([]*head, len(r.reqs))
		r.results = make([]cairn.AppendResult, len(r.reqs))
		retried := make([]bool, len(r.reqs))
		errs := make([]error, len(r.reqs))
		failed := false
		for i, a := range r.reqs {
			var later bool
			heads[i], r.results[i], retried[i], later, errs[i] = g.check(a.Stream, a.Expected, a.Events)
			if later {
				return false, true, nil
			}
			failed = failed || errs[i] != nil
		}
		if failed {
			return false, false, &cairn.BatchError{Errs: errs}
		}
		for i, a := range r.reqs {
			if !retried[i] {
				r.results[i] = g.write(a.Stream, heads[i], a.Events)
				wrote = true
			}
		}
		return wrote, false, nil

	case opDelete, opTombstone, opTruncate:
		return g.streamOp(r)

	case opSnapshot:
		return g.snapshot(r.snap)
	}
	return false, false, fmt.Errorf("diskstore: unknown request kind %d", r.kind)
}

// check performs the checks of an append to stream. retry reports a repeat
// of an earlier append, whose result res is. later asks to retry the append
// in the next group, once an append of this group with the same first event
// ID is durable.
func (g *group) check(stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (h *head, res cairn.AppendResult, retry, later bool, err error) {
	h, err = g.d.head(stream)
	if err != nil {
		return nil, res, false, false, err
	}
	if h.meta.flags&flagTombstoned != 0 {
		return nil, res, false, false, cairn.Deleted("append to", stream)
	}
	id := events[0].ID
	if g.ids[id] {
		return nil, res, false, true, nil
	}
	if bytes.Compare(id[:], g.d.maxID[:]) > 0 {
		return h, res, false, false, expected.Check(stream, h.current())
	}
	v, closer, err := g.d.pdb.Get(idKey(id))
	switch {
	case err == nil:
		pos, err := decodeUint(idKey(id), v)
		_ = closer.Close()
		if err != nil {
			return nil, res, false, false, err
		}
		recorded, err := recordedFrom(g.d.pdb, pos, len(events))
		if err != nil {
			return nil, res, false, false, err
		}
		res, err = cairn.RetryResult(stream, expected, events, recorded)
		return nil, res, true, false, err
	case !errors.Is(err, pebble.ErrNotFound):
		return nil, res, false, false, wrapErr(err)
	}
	return h, res, false, false, expected.Check(stream, h.current())
}

// write adds an append that passed its checks to the batch.
func (g *group) write(stream string, h *head, events []cairn.EventData) cairn.AppendResult {
	first := h.last + 1
	pos := g.next
	for i := range events {
		// Encoded in place in the batch.
		e := &events[i]
		op := g.b.SetDeferred(9, eventLen(stream, first+int64(i), g.now, e))
		putEventKey(op.Key, pos+uint64(i))
		if v := appendEvent(op.Value[:0], stream, first+int64(i), g.now, e); len(v) != len(op.Value) {
			panic(fmt.Sprintf("diskstore: event encoded in %d bytes, %d reserved", len(v), len(op.Value)))
		}
		sealInPlace(op.Key, op.Value)
		_ = op.Finish()
	}
	// The run and retry records, encoded in reused buffers (the batch
	// copies them).
	g.key = appendRunKey(g.key[:0], stream, first)
	g.scratch = appendRun(g.scratch[:0], g.key, pos, int64(len(events)))
	_ = g.b.Set(g.key, g.scratch, nil)
	g.key = append(append(g.key[:0], prefixID), events[0].ID[:]...)
	g.scratch = appendUint(g.scratch[:0], g.key, pos)
	_ = g.b.Set(g.key, g.scratch, nil)
	g.ids[events[0].ID] = true
	if id := events[0].ID; bytes.Compare(id[:], g.d.maxID[:]) > 0 {
		g.d.maxID = id
	}
	if !h.stored || h.meta.flags&flagDeleted != 0 {
		h.meta.flags &^= flagDeleted
		g.putMeta(stream, h)
	}
	h.last += int64(len(events))
	g.next += uint64(len(events))
	return cairn.AppendResult{Version: h.last, Position: g.next - 1}
}

func (g *group) putMeta(stream string, h *head) {
	k := metaKey(stream)
	_ = g.b.Set(k, encodeMeta(k, h.meta), nil)
	h.stored = true
}

func (g *group) streamOp(r *request) (wrote, later bool, err error) {
	h, err := g.d.head(r.stream)
	if err != nil {
		return false, false, err
	}
	op := map[opKind]string{opDelete: "delete", opTombstone: "tombstone", opTruncate: "truncate"}[r.kind]
	if h.meta.flags&flagTombstoned != 0 {
		return false, false, cairn.Deleted(op, r.stream)
	}
	if r.kind != opTruncate {
		if err := r.expected.Check(r.stream, h.current()); err != nil {
			return false, false, err
		}
	}
	switch r.kind {
	case opDelete, opTruncate:
		if h.current() < 0 {
			return false, false, cairn.NotFound(op, r.stream)
		}
		if r.kind == opDelete {
			h.meta.flags |= flagDeleted
			h.meta.before = max(h.meta.before, h.last+1)
		} else {
			if r.before <= h.meta.before {
				return false, false, nil
			}
			h.meta.before = r.before
		}
	case opTombstone:
		h.meta.flags |= flagTombstoned
		h.meta.before = max(h.meta.before, h.last+1)
	}
	if r.kind != opTruncate {
		// The stream's snapshot goes with it.
		_ = g.b.Delete(snapshotKey(r.stream), nil)
		if g.snaps == nil {
			g.snaps = map[string]int64{}
		}
		g.snaps[r.stream] = -1
	}
	g.putMeta(r.stream, h)
	return true, false, nil
}

func (g *group) snapshot(s cairn.Snapshot) (wrote, later bool, err error) {
	h, err := g.d.head(s.StreamID)
	if err != nil {
		return false, false, err
	}
	if h.meta.flags&(flagDeleted|flagTombstoned) != 0 {
		return false, false, nil // a deleted stream has no snapshot
	}
	k := snapshotKey(s.StreamID)
	stored, ok := g.snaps[s.StreamID]
	if !ok {
		v, closer, err := g.d.pdb.Get(k)
		switch {
		case err == nil:
			old, err := decodeSnapshot(k, v, s.StreamID)
			_ = closer.Close()
			if err != nil {
				return false, false, err
			}
			stored, ok = old.Version, true
		case !errors.Is(err, pebble.ErrNotFound):
			return false, false, wrapErr(err)
		}
	}
	if ok && stored >= s.Version {
		return false, false, nil
	}
	s.Created = timeMicro(g.now)
	_ = g.b.Set(k, encodeSnapshot(k, s), nil)
	if g.snaps == nil {
		g.snaps = map[string]int64{}
	}
	g.snaps[s.StreamID] = s.Version
	return true, false, nil
}

// commitAll commits an append with projections, in a group of its own: the
// projections write into the same indexed batch as the events, and read
// their own writes through it.
func (d *DB) commitAll(r *request) {
	if err := r.ctx.Err(); err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	a := r.reqs[0]
	g := d.newGroup(true, 0)
	h, res, retry, _, err := g.check(a.Stream, a.Expected, a.Events)
	if err != nil || retry {
		r.results, r.err = []cairn.AppendResult{res}, err
		d.handoff(g, false, []*request{r})
		return
	}
	created := timeMicro(g.now)
	recorded := make([]cairn.Event, len(a.Events))
	for i, e := range a.Events {
		recorded[i] = cairn.Event{EventData: e, StreamID: a.Stream, Version: h.last + 1 + int64(i), Position: g.next + uint64(i), Created: created}
	}
	t := &tx{b: g.b}
	for _, p := range r.projections {
		if err := runProjection(r.ctx, p, t, recorded); err != nil {
			t.closed = true
			r.err = err
			d.handoff(g, false, []*request{r})
			return
		}
	}
	t.closed = true
	r.results = []cairn.AppendResult{g.write(a.Stream, h, a.Events)}
	d.handoff(g, true, []*request{r})
}

func runProjection(ctx context.Context, p cairn.Projection, t *tx, events []cairn.Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("diskstore: projection panicked: %v", v)
		}
	}()
	return p(ctx, t, events)
}

// Append implements [cairn.Backend].
func (d *DB) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	r := &request{kind: opAppend, reqs: []cairn.AppendRequest{{Stream: stream, Expected: expected, Events: events}}}
	if err := d.submit(ctx, r); err != nil {
		return cairn.AppendResult{}, err
	}
	return r.results[0], nil
}

// AppendBatch implements [cairn.BatchAppender]: all requests are committed
// in one pebble batch, or none.
func (d *DB) AppendBatch(ctx context.Context, requests []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	r := &request{kind: opBatch, reqs: requests}
	if err := d.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.results, nil
}

// CommitAll implements [cairn.TxCommitter]. The projections run on the
// committer goroutine, one commit at a time, while other writes wait: they
// must be quick and must not call back into the store.
func (d *DB) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	r := &request{kind: opCommitAll, reqs: []cairn.AppendRequest{req}, projections: projections}
	if err := d.submit(ctx, r); err != nil {
		return cairn.AppendResult{}, err
	}
	return r.results[0], nil
}

// DeleteStream implements [cairn.Backend].
func (d *DB) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &request{kind: opDelete, stream: stream, expected: expected})
}

// TombstoneStream implements [cairn.Tombstoner].
func (d *DB) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &request{kind: opTombstone, stream: stream, expected: expected})
}

// TruncateStream implements [cairn.Truncater]. The events below before
// disappear from reads at once and from the disk at the next [DB.Compact].
func (d *DB) TruncateStream(ctx context.Context, stream string, before int64) error {
	return d.submit(ctx, &request{kind: opTruncate, stream: stream, before: before})
}

// CommitSnapshot implements [cairn.Snapshotter].
func (d *DB) CommitSnapshot(ctx context.Context, s cairn.Snapshot) error {
	return d.submit(ctx, &request{kind: opSnapshot, snap: s})
}

// tx is the [cairn.Tx] a projection writes through: an indexed pebble batch
// that also holds the commit's events.
type tx struct {
	b      *pebble.Batch
	closed bool
}

var errTxDone = errors.New("diskstore: transaction used after its projection returned")

func (t *tx) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if t.closed {
		return nil, false, errTxDone
	}
	if err := checkTable(table); err != nil {
		return nil, false, err
	}
	k := tableKey(table, key)
	v, closer, err := t.b.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrapErr(err)
	}
	defer closer.Close()
	p, err := unseal(k, v)
	if err != nil {
		return nil, false, err
	}
	return append([]byte{}, p...), true, nil
}

func (t *tx) Put(ctx context.Context, table, key string, value []byte) error {
	if t.closed {
		return errTxDone
	}
	if err := checkTable(table); err != nil {
		return err
	}
	k := tableKey(table, key)
	return t.b.Set(k, seal(k, value), nil)
}

func (t *tx) Delete(ctx context.Context, table, key string) error {
	if t.closed {
		return errTxDone
	}
	if err := checkTable(table); err != nil {
		return err
	}
	return t.b.Delete(tableKey(table, key), nil)
}

// checkTable rejects table names the key layout cannot hold.
func checkTable(table string) error {
	if table == "" {
		return &cairn.InvalidArgumentError{Field: "table", Reason: "must not be empty"}
	}
	if len(table) > cairn.MaxStreamIDBytes {
		return &cairn.InvalidArgumentError{Field: "table", Reason: fmt.Sprintf("is %d bytes long, the limit is %d", len(table), cairn.MaxStreamIDBytes)}
	}
	for i := 0; i < len(table); i++ {
		if table[i] < 0x20 || table[i] == 0x7f {
			return &cairn.InvalidArgumentError{Field: "table", Reason: fmt.Sprintf("%q has a control character at byte %d", table, i)}
		}
	}
	return nil
}
