package natsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The writer: callers queue their writes; the writer goroutine forms a
// record of the writes waiting, publishes it, and the completer answers
// each write with its outcome once the node applied the record.

// op is one caller's write on its way through the log.
type op struct {
	w         diskstore.Write // nil for a barrier and a whole compaction
	barrier   bool            // no write: returns once its record is applied (Sync)
	whole     bool            // a whole compaction, for nodes of earlier builds
	size      int             // about its bytes in a record
	ids       []uuid.UUID     // the first event IDs of its appends
	exclusive bool            // logged in a record of its own
	at        time.Time       // the record's time, for a planned commit
	done      chan struct{}
	out       diskstore.Outcome
}

// batch is the ops of one record.
type batch struct{ ops []*op }

func (b *batch) answer(res diskstore.Applied) {
	i := 0 // the outcome of the next op with a write
	for _, o := range b.ops {
		if o.w != nil {
			if i < len(res.Outcomes) {
				o.out = res.Outcomes[i]
			}
			i++
		}
		close(o.done)
	}
}

func (b *batch) fail(err error) {
	for _, o := range b.ops {
		o.out = diskstore.Outcome{Err: err}
		close(o.done)
	}
}

func newOp(w diskstore.Write) *op {
	o := &op{w: w, done: make(chan struct{}), size: 16}
	add := func(r *cairn.AppendRequest) {
		o.size += len(r.Stream) + 16
		for i := range r.Events {
			e := &r.Events[i]
			o.size += 32 + len(e.Type) + len(e.Data) + len(e.Metadata)
			for _, t := range e.Tags {
				o.size += 4 + len(t)
			}
		}
		if r.Condition != nil {
			for _, it := range r.Condition.FailIfEventsMatch.Items {
				for _, s := range append(append([]string{}, it.Types...), it.Tags...) {
					o.size += 4 + len(s)
				}
			}
		}
		if len(r.Events) > 0 { // a batch's check-only request has none
			o.ids = append(o.ids, r.Events[0].ID)
		}
	}
	switch w := w.(type) {
	case *diskstore.AppendWrite:
		for i := range w.Requests {
			add(&w.Requests[i])
		}
	case *diskstore.CommitWrite:
		add(&w.Request)
		for _, tw := range w.Plan.Writes {
			o.size += 16 + len(tw.Table) + len(tw.Key) + len(tw.Value)
		}
		o.exclusive = true
	case *diskstore.DeleteWrite:
		o.size += len(w.Stream)
	case *diskstore.TruncateWrite:
		o.size += len(w.Stream)
	case *diskstore.SnapshotWrite:
		o.size += len(w.Snapshot.StreamID) + len(w.Snapshot.Data) + len(w.Snapshot.Metadata)
	case *diskstore.PurgeWrite:
		o.size += len(w.After)
		o.exclusive = true
	}
	return o
}

// do queues o and waits for its outcome. A caller whose ctx ends first
// gets ctx's error; its write may still be applied.
func (d *DB) do(ctx context.Context, o *op) (diskstore.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return diskstore.Outcome{}, err
	}
	if err := d.haltedErr(); err != nil {
		return diskstore.Outcome{}, err
	}
	if o.size > d.max {
		return diskstore.Outcome{}, &cairn.InvalidArgumentError{Field: "events", Reason: fmt.Sprintf("take about %d bytes, more than the %d bytes one record of the cluster's log may hold (the NATS servers' max_payload)", o.size, d.max)}
	}
	d.closeMu.RLock()
	if d.closing.Load() {
		d.closeMu.RUnlock()
		return diskstore.Outcome{}, cairn.ErrClosed
	}
	select {
	case d.queue <- o:
	case <-ctx.Done():
		d.closeMu.RUnlock()
		return diskstore.Outcome{}, ctx.Err()
	}
	d.closeMu.RUnlock()
	select {
	case <-o.done:
		return o.out, nil
	case <-ctx.Done():
		return diskstore.Outcome{}, ctx.Err()
	}
}

// maxRecordOps bounds the writes of one record.
const maxRecordOps = 4096

// A record of fewer than lingerOps writes waits for more while at least
// lingerInflight records are in flight, or while the records in flight
// hold at least lingerCrowd writes (see writeLoop).
const (
	lingerOps      = 256
	lingerInflight = 2
	lingerCrowd    = 2
)

// writeLoop is the writer goroutine.
func (d *DB) writeLoop() {
	var carry []*op
	var inflightOps atomic.Int64 // the writes of the records in flight
	for {
		var first *op
		if len(carry) > 0 {
			first, carry = carry[0], carry[1:]
		} else {
			o, ok := <-d.queue
			if !ok {
				return
			}
			first = o
		}
		b := &batch{ops: []*op{first}}
		if !first.exclusive {
			size := first.size
			ids := map[uuid.UUID]bool{}
			for _, id := range first.ids {
				ids[id] = true
			}
			// The writes waiting join the record: those carried over
			// first, then the queue's, while they fit.
			take := func(o *op) bool {
				if o.exclusive || size+o.size > d.max-64 || len(b.ops) == maxRecordOps {
					return false
				}
				for _, id := range o.ids {
					// Two appends with one first event ID in one record
					// would be refused; the second waits for the next.
					if ids[id] {
						return false
					}
				}
				for _, id := range o.ids {
					ids[id] = true
				}
				size += o.size
				b.ops = append(b.ops, o)
				return true
			}
			var kept []*op
			for _, o := range carry {
				if !take(o) {
					kept = append(kept, o)
				}
			}
			carry = kept
		fill:
			for len(b.ops) < maxRecordOps {
				select {
				case o, ok := <-d.queue:
					if !ok {
						break fill
					}
					if !take(o) {
						carry = append(carry, o)
						break fill
					}
					continue
				default:
				}
				// Nothing waiting. With records in flight, a small record
				// lingers until one of them is acknowledged, gathering
				// the writes that the callers just answered make next:
				// a record costs a round of the log whatever it holds.
				// It lingers behind a single record in flight only when
				// that holds writes of several callers: one caller's
				// write ahead says the callers are too few for waiting
				// to gather any.
				if len(b.ops) >= lingerOps || (len(d.inflight) < lingerInflight && inflightOps.Load() < lingerCrowd) {
					break fill
				}
				select {
				case o, ok := <-d.queue:
					if !ok {
						break fill
					}
					if !take(o) {
						carry = append(carry, o)
						break fill
					}
				case <-d.released:
				case <-d.ctx.Done():
					break fill
				}
			}
		}
		if d.ctx.Err() != nil {
			b.fail(cairn.ErrClosed)
			continue
		}
		select {
		case d.inflight <- struct{}{}:
		case <-d.ctx.Done():
			b.fail(cairn.ErrClosed)
			continue
		}
		n := int64(len(b.ops))
		inflightOps.Add(n)
		d.wg.Go(func() {
			defer func() {
				inflightOps.Add(-n)
				<-d.inflight
				select {
				case d.released <- struct{}{}:
				default:
				}
			}()
			d.publish(b)
		})
	}
}

// A publish waits at most publishAttempt for the log's acknowledgement
// before it sends the record again, and at most publishBackoff between
// tries. A record sent as the stream's leader dies is never acknowledged;
// while no leader is elected a publish finds no responder at once; the
// record sent again reaches the new leader within publishBackoff of its
// election. The record's id, its message id, makes the log keep it once
// however often it is sent (a copy sent while the first is still being
// stored is answered "in process", and sent again later).
const (
	publishAttempt = time.Second
	publishBackoff = 100 * time.Millisecond
)

// isPending reports whether the record id of this node's writer is still
// waiting to be applied.
func (d *DB) isPending(id string) bool {
	d.appliedMu.Lock()
	defer d.appliedMu.Unlock()
	_, ok := d.pending[id]
	return ok
}

// publish logs b's writes as one record and leaves them to the completer
// to answer; it fails them if the log does not take the record.
func (d *DB) publish(b *batch) {
	rec := &record{id: uuid.Must(uuid.NewV7()), time: cairn.Now()}
	for _, o := range b.ops {
		switch {
		case o.whole:
			rec.compact = true
		case !o.barrier:
			rec.writes = append(rec.writes, o.w)
		}
		if !o.at.IsZero() {
			rec.time = o.at
		}
	}
	data, err := encodeRecord(rec)
	if err != nil {
		b.fail(err)
		return
	}
	if len(data) > d.max {
		b.fail(&cairn.InvalidArgumentError{Field: "events", Reason: fmt.Sprintf("take %d bytes, more than the %d bytes one record of the cluster's log may hold (the NATS servers' max_payload)", len(data), d.max)})
		return
	}
	id := rec.id.String()
	d.appliedMu.Lock()
	if d.halted != nil {
		err := d.halted
		d.appliedMu.Unlock()
		b.fail(err)
		return
	}
	d.pending[id] = b
	d.appliedMu.Unlock()
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.PublishTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: d.opts.subject(), Data: data}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(id), jetstream.WithExpectStream(d.opts.Stream), jetstream.WithRetryAttempts(0)}
	err = retryEvery(ctx, publishAttempt, publishBackoff, func(ctx context.Context) error {
		if !d.isPending(id) {
			return nil // applied already: the log holds it
		}
		ack, err := d.js.PublishMsg(ctx, msg, opts...)
		if err != nil {
			return err
		}
		d.noteLogged(ack.Sequence)
		return nil
	})
	if err == nil {
		return
	}
	d.appliedMu.Lock()
	_, waiting := d.pending[id]
	delete(d.pending, id)
	d.appliedMu.Unlock()
	if waiting {
		if d.ctx.Err() != nil {
			err = cairn.ErrClosed
		} else {
			err = fmt.Errorf("natsstore: the cluster's log did not acknowledge the write within %v; it may or may not be applied (retry with the same event IDs): %w", d.opts.PublishTimeout, err)
		}
		b.fail(err)
	}
}

// Append implements [cairn.Backend].
func (d *DB) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	out, err := d.do(ctx, newOp(&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: stream, Expected: expected, Events: events}}}))
	if err == nil {
		err = out.Err
	}
	if err != nil {
		return cairn.AppendResult{}, err
	}
	return out.Results[0], nil
}

// AppendBatch implements [cairn.BatchAppender]: the requests are applied
// all or none, on every node.
func (d *DB) AppendBatch(ctx context.Context, requests []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	out, err := d.do(ctx, newOp(&diskstore.AppendWrite{Requests: requests, Batch: true}))
	if err == nil {
		err = out.Err
	}
	if err != nil {
		return nil, err
	}
	return out.Results, nil
}

func (d *DB) write(ctx context.Context, w diskstore.Write) error {
	out, err := d.do(ctx, newOp(w))
	if err != nil {
		return err
	}
	return out.Err
}

// DeleteStream implements [cairn.Backend].
func (d *DB) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.write(ctx, &diskstore.DeleteWrite{Stream: stream, Expected: expected})
}

// TombstoneStream implements [cairn.Tombstoner].
func (d *DB) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.write(ctx, &diskstore.DeleteWrite{Stream: stream, Expected: expected, Tombstone: true})
}

// TruncateStream implements [cairn.Truncater].
func (d *DB) TruncateStream(ctx context.Context, stream string, before int64) error {
	return d.write(ctx, &diskstore.TruncateWrite{Stream: stream, Before: before})
}

// CommitSnapshot implements [cairn.Snapshotter].
func (d *DB) CommitSnapshot(ctx context.Context, s cairn.Snapshot) error {
	return d.write(ctx, &diskstore.SnapshotWrite{Snapshot: s})
}

// purgeRuns bounds the appends one step of a compaction purges: how long
// a step holds every node's applier. While 64,000 dead appends were
// compacted, writers on the other nodes waited at most 209 ms (median of
// nine runs) with steps of 4,096 appends (the embedded engine's own), and
// 136 ms with steps of 1,024, the compaction taking 1.42 s against 1.52 s;
// steps of 256 waited no less and took longer (docs/cluster.md). Tests
// set it.
var purgeRuns = 1024

// Compact implements [cairn.Compacter]. A compaction is a series of
// records of the log, each a step of its purge ([diskstore.PurgeWrite]):
// every node purges its copy at the same points of the log, so that the
// copies go on deciding alike (a purge forgets the retry records of the
// appends it removes), and applies the records between the steps
// meanwhile: a step holds the appliers for the purge of at most
// purgeRuns appends, not for the whole compaction. Once a node applied the
// last step it gives the log's space back ([diskstore.DB.Reclaim]), in
// the background; Compact returns once this node did. A compaction cut
// short (its caller's node closed, say) leaves the purge in part, which
// the next one finishes.
//
// While the registry holds a node of an earlier build, which would halt
// on a purge step, the compaction is logged as one record, as that build
// did, and every node applies it whole.
func (d *DB) Compact(ctx context.Context) error {
	nodes, err := d.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: compaction: reading the registry, for the builds of the nodes: %w", err)
	}
	for _, n := range nodes {
		if n.Records < RecordsPurgeSteps {
			d.lg.Warn("natsstore: node of an earlier build in the registry: the compaction is logged as one record, which holds every node's applier until it ends", "node", n.ID)
			out, err := d.do(ctx, &op{whole: true, exclusive: true, size: 32, done: make(chan struct{})})
			if err == nil {
				err = out.Err
			}
			return err
		}
	}
	step := &diskstore.PurgeWrite{Runs: purgeRuns}
	for step != nil {
		out, err := d.do(ctx, newOp(step))
		if err == nil {
			err = out.Err
		}
		if err != nil {
			return err
		}
		step = out.Resume
	}
	return d.reclaims.wait(ctx)
}

// maxPlans bounds how many times CommitAll plans a commit that other
// writes keep overtaking.
const maxPlans = 64

// CommitAll implements [cairn.TxCommitter]. The projections run on this
// node, against its copy once it holds every record logged before the
// call, at the position and versions the events would take; their writes
// go into the log with the events. When other writes reach the log first,
// the commit is refused at apply on every node, and this node runs the
// projections again, on a copy that now holds those writes, up to 64
// times, after a random wait that doubles with each try (up to 64
// ms); the commits of one node take turns. Under a steady stream of
// writes from other nodes a commit may fail after that many tries, with
// an error matching [diskstore.ErrPlanStale].
func (d *DB) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	if err := d.Sync(ctx); err != nil {
		return cairn.AppendResult{}, err
	}
	// The commits of one node take turns: they would otherwise make each
	// other's plans stale.
	select {
	case d.committing <- struct{}{}:
	case <-ctx.Done():
		return cairn.AppendResult{}, ctx.Err()
	}
	defer func() { <-d.committing }()
	var err error
	for try := range maxPlans {
		if try > 0 {
			// Commits of other nodes that keep making each other's plans
			// stale spread out, each waiting a random time that doubles
			// with each try, up to 64 ms.
			wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 6)))
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return cairn.AppendResult{}, ctx.Err()
			}
		}
		at := cairn.Now()
		var p diskstore.Planned
		p, err = d.local.PlanCommit(ctx, at, req, projections)
		if err != nil {
			return cairn.AppendResult{}, err
		}
		if p.Repeat != nil {
			return *p.Repeat, nil
		}
		o := newOp(&diskstore.CommitWrite{Request: req, Plan: p.Plan})
		o.at = at
		var out diskstore.Outcome
		out, err = d.do(ctx, o)
		if err == nil {
			err = out.Err
		}
		if err == nil {
			return out.Results[0], nil
		}
		if !errors.Is(err, diskstore.ErrPlanStale) {
			return cairn.AppendResult{}, err
		}
	}
	return cairn.AppendResult{}, err
}
