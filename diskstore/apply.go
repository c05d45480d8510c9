package diskstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Applying a log of writes.
//
// A replicated store (natsstore) keeps a log of write groups outside this
// engine and applies each of them, in log order, to a copy in every node.
// Apply serves it: the writes of one [Group] are committed as one frame,
// checked as the write API checks them (expected versions, retries by
// event ID, tombstones, conditions when the engine checks them), with the
// commit time the group carries rather than the clock, and with an opaque
// mark that is written in the same frame. So a crash keeps a group whole
// or not at all, together with its mark: [DB.Mark] after a restart names
// exactly the last group applied, never one applied in part.
//
// Groups are committed in the order Apply is called, each in a frame of
// its own, and the same groups applied in the same order to two copies
// that hold the same data give the same outcomes and the same positions,
// versions and times.

// Group is the writes of one record of a replicated log, applied together.
type Group struct {
	// Mark is stored in the same frame as the group's writes; [DB.Mark]
	// returns the mark of the last group applied. At most 1 KiB.
	Mark []byte
	// Time is the commit time recorded on the group's events and
	// snapshots, truncated to microseconds.
	Time time.Time
	// Writes are checked and written in order; a write that fails its
	// checks writes nothing and leaves the others alone.
	Writes []Write
}

// Write is one write of a [Group]: an *AppendWrite, *DeleteWrite,
// *TruncateWrite, *SnapshotWrite, *CommitWrite or *PurgeWrite.
type Write interface{ write() }

// AppendWrite appends to one stream (one request, as [DB.Append] does)
// or to several, all or none, as [DB.AppendBatch] does. Batch makes one
// request a batch of one: its failures come as a *[cairn.BatchError], and
// a request without events (check-only) is allowed, as AppendBatch has it.
type AppendWrite struct {
	Requests []cairn.AppendRequest
	Batch    bool
}

// DeleteWrite soft-deletes a stream, or tombstones it when Tombstone is set.
type DeleteWrite struct {
	Stream    string
	Expected  cairn.ExpectedVersion
	Tombstone bool
}

// TruncateWrite hides the versions of a stream below Before.
type TruncateWrite struct {
	Stream string
	Before int64
}

// SnapshotWrite stores a snapshot unless a newer one is stored.
type SnapshotWrite struct{ Snapshot cairn.Snapshot }

// CommitWrite is a commit with projections whose read-model writes were
// planned by [DB.PlanCommit]: its events are appended and its table writes
// made only if the checks of the request pass and the events get the
// positions and versions the plan gave them. Otherwise it fails with an
// error matching [ErrPlanStale] (after the checks of the request, whose
// errors come first).
type CommitWrite struct {
	Request cairn.AppendRequest
	Plan    Plan
}

// TableWrite is one write of a projection to a read-model table: a put, or
// a delete when Delete is set.
type TableWrite struct {
	Table, Key string
	Value      []byte
	Delete     bool
}

// Plan is what the projections of a commit decided, given the positions
// and versions its events would take.
type Plan struct {
	Position uint64 // the position of the first event
	Version  int64  // the version of the first event
	Writes   []TableWrite
}

// PurgeWrite is one step of a compaction's purge, as [DB.Compact] takes
// them: it removes from the index the dead events (of deleted,
// tombstoned and truncated streams) of up to 256 streams from where it
// begins, at most Runs appends of them (4,096 when Runs is 0), and forgets
// their retry records. A replicated store logs each step as a record of
// its own, so that every copy purges at the same points of the log while
// the records between the steps go on being applied, then calls
// [DB.Reclaim] on each copy once the last step is applied. A group with a
// PurgeWrite holds no other write. Its [Outcome.Resume] is the step after.
type PurgeWrite struct {
	After string // the step begins after this stream ("" at the first)
	At    bool   // or at After itself, which the step before did not finish
	Runs  int
}

func (*AppendWrite) write()   {}
func (*PurgeWrite) write()    {}
func (*DeleteWrite) write()   {}
func (*TruncateWrite) write() {}
func (*SnapshotWrite) write() {}
func (*CommitWrite) write()   {}

// ErrPlanStale is matched by the error of a [CommitWrite] whose events
// would not take the positions or versions its plan gave them: other
// writes came first. Plan the commit again.
var ErrPlanStale = errors.New("diskstore: the log moved since the commit was planned")

// Outcome is the outcome of one write of a group: the results of an append
// (one per request) or a commit (one), or why it failed.
type Outcome struct {
	Results []cairn.AppendResult
	Err     error
	// Resume is, for a [PurgeWrite], the next step of the purge; nil once
	// the purge reached the last stream.
	Resume *PurgeWrite
}

// Applied is the outcome of a group.
type Applied struct {
	// Outcomes holds one entry per write, in order.
	Outcomes []Outcome
	// Next is the position after the group's last event (or after the
	// last event before it, when it wrote none).
	Next uint64
}

// maxMark bounds a group's mark.
const maxMark = 1 << 10

// applyOp applies a group, in a group commit of its own.
type applyOp struct {
	request
	group   *Group
	applied Applied
}

func (o *applyOp) exclusive() bool { return true }

func (o *applyOp) appends() []cairn.AppendRequest {
	var reqs []cairn.AppendRequest
	for _, w := range o.group.Writes {
		switch w := w.(type) {
		case *AppendWrite:
			reqs = append(reqs, w.Requests...)
		case *CommitWrite:
			reqs = append(reqs, w.Request)
		}
	}
	return reqs
}

// Applying is a group submitted to [DB.Apply], on its way to disk.
type Applying struct{ op *applyOp }

// Wait waits until the group is durable and returns its outcome. An error
// means the group was not applied: the store failed (see [ErrFailed]) or
// was closed.
func (a *Applying) Wait() (Applied, error) {
	<-a.op.done
	return a.op.applied, a.op.err
}

// Applied waits until the group is applied and readers see it, and
// returns its outcome, as Wait does. With [Options.VisibleBeforeSync]
// that may be before the group is durable: Wait waits for that, and may
// still fail (the store failed to sync its log) after Applied succeeded.
// Without it, Applied is Wait.
func (a *Applying) Applied() (Applied, error) {
	select {
	case <-a.op.visible:
		return a.op.applied, nil
	case <-a.op.done:
		return a.op.applied, a.op.err
	}
}

// Apply submits g to be committed after every group and write submitted
// before it, and returns at once; [Applying.Wait] waits for its outcome.
// The writes of g must be valid (as a [cairn.Store] checks them); their
// checks run on the committer, in order. The group is applied even when
// ctx is cancelled after Apply returns.
func (d *DB) Apply(ctx context.Context, g *Group) (*Applying, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	if len(g.Mark) > maxMark {
		return nil, &cairn.InvalidArgumentError{Field: "mark", Reason: fmt.Sprintf("holds %d bytes, more than %d", len(g.Mark), maxMark)}
	}
	op := &applyOp{group: g}
	op.visible = make(chan struct{})
	if err := d.pipe.enqueue(context.WithoutCancel(ctx), op); err != nil {
		return nil, err
	}
	return &Applying{op: op}, nil
}

// Mark returns the mark of the last group applied that is durable, and
// false when no group was ever applied. With [Options.VisibleBeforeSync]
// it is the mark of the last group readers see, which may not be durable
// yet; after a restart, the last durable one.
func (d *DB) Mark(ctx context.Context) ([]byte, bool, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer d.releaseView(v)
	val, closer, err := v.snap.Get(applyMarkKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrapErr(err)
	}
	defer closer.Close()
	p, err := unseal(applyMarkKey, val)
	if err != nil {
		return nil, false, err
	}
	return append([]byte{}, p...), true, nil
}

// applyGroup commits op's group alone in one frame, mark included. It runs
// on the committer goroutine.
func (d *DB) applyGroup(op *applyOp) {
	r := op.base()
	if ws := op.group.Writes; len(ws) == 1 {
		if w, ok := ws[0].(*PurgeWrite); ok {
			d.applyPurge(op, w)
			return
		}
	}
	g, err := d.newGroup(false, []operation{op})
	if err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	g.now = op.group.Time.UTC().Truncate(time.Microsecond).UnixMicro()
	outs := make([]Outcome, len(op.group.Writes))
	for i, w := range op.group.Writes {
		outs[i] = g.apply(w)
	}
	op.applied.Outcomes = outs
	k := applyMarkKey
	if err := g.set(k, seal(k, op.group.Mark)); err == nil {
		op.applied.Next = g.next
	}
	d.handoff(g, true, []*request{r})
}

// applyPurge commits op's group, the purge step w, alone in one frame,
// mark included. It runs on the committer goroutine.
func (d *DB) applyPurge(op *applyOp, w *PurgeWrite) {
	r := op.base()
	// As purgeStep: no run in memory, and the memtable flushed before the
	// next ingest.
	if err := d.settleRecords(); err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	defer func() { d.ids.purged = true }()
	// Indexed: cutting the locators of one frame reads the cuts before.
	g, err := d.newGroup(true, nil)
	if err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	g.now = op.group.Time.UTC().Truncate(time.Microsecond).UnixMicro()
	next, err := g.purgeStep(*w)
	if err == nil {
		k := applyMarkKey
		err = g.set(k, seal(k, op.group.Mark))
	}
	if err != nil {
		r.err = err
		d.handoff(g, false, []*request{r})
		return
	}
	op.applied = Applied{Outcomes: []Outcome{{Resume: next}}, Next: g.next}
	d.handoff(g, true, []*request{r})
}

// apply checks and writes one write of an applied group.
func (g *group) apply(w Write) Outcome {
	switch w := w.(type) {
	case *AppendWrite:
		if len(w.Requests) == 1 && !w.Batch {
			a := w.Requests[0]
			op := &appendOp{req: [1]cairn.AppendRequest{a}}
			e, err := g.doOnce(op, a.Stream)
			if err != nil || e == effectLater {
				return Outcome{Err: err}
			}
			return Outcome{Results: []cairn.AppendResult{op.result}}
		}
		op := &batchOp{reqs: w.Requests}
		if _, err := g.doOnce(op, ""); err != nil {
			return Outcome{Err: err}
		}
		return Outcome{Results: op.results}
	case *DeleteWrite:
		if w.Tombstone {
			_, err := g.do(&tombstoneOp{stream: w.Stream, expected: w.Expected})
			return Outcome{Err: err}
		}
		_, err := g.do(&deleteOp{stream: w.Stream, expected: w.Expected})
		return Outcome{Err: err}
	case *TruncateWrite:
		_, err := g.do(&truncateOp{stream: w.Stream, before: w.Before})
		return Outcome{Err: err}
	case *SnapshotWrite:
		_, err := g.do(&snapshotOp{snap: w.Snapshot})
		return Outcome{Err: err}
	case *PurgeWrite:
		return Outcome{Err: errors.New("diskstore: a purge step is applied in a group of its own")}
	case *CommitWrite:
		res, err := g.commitPlanned(w)
		if err != nil {
			return Outcome{Err: err}
		}
		return Outcome{Results: []cairn.AppendResult{res}}
	}
	return Outcome{Err: fmt.Errorf("diskstore: cannot apply a write of type %T", w)}
}

// doOnce does an append or a batch that cannot wait for a later group: an
// append whose first event ID an earlier write of the same group
// recorded is refused as a duplicate, which every copy decides alike.
func (g *group) doOnce(op operation, stream string) (effect, error) {
	e, err := g.do(op)
	if e == effectLater {
		if stream == "" {
			errs := make([]error, len(op.appends()))
			for i, a := range op.appends() {
				errs[i] = &cairn.StreamError{Op: "append to", Stream: a.Stream, Err: cairn.ErrDuplicateEvent}
			}
			return e, &cairn.BatchError{Errs: errs}
		}
		return e, &cairn.StreamError{Op: "append to", Stream: stream, Err: cairn.ErrDuplicateEvent}
	}
	return e, err
}

// commitPlanned applies a commit whose projections' writes were planned.
func (g *group) commitPlanned(w *CommitWrite) (cairn.AppendResult, error) {
	a := &w.Request
	c := g.check(a.Stream, a.Expected, a.Events)
	switch c.verdict {
	case verdictLater:
		return cairn.AppendResult{}, &cairn.StreamError{Op: "append to", Stream: a.Stream, Err: cairn.ErrDuplicateEvent}
	case verdictRefuse:
		return cairn.AppendResult{}, c.err
	case verdictRepeat:
		return c.result, nil
	}
	if g.next != w.Plan.Position || c.head.last+1 != w.Plan.Version {
		return cairn.AppendResult{}, fmt.Errorf("commit to %q planned at position %d, version %d, applied at position %d, version %d: %w",
			a.Stream, w.Plan.Position, w.Plan.Version, g.next, c.head.last+1, ErrPlanStale)
	}
	for _, tw := range w.Plan.Writes {
		if err := checkEntry(tw.Table, tw.Key); err != nil {
			return cairn.AppendResult{}, err
		}
		k := tableKey(tw.Table, tw.Key)
		var err error
		if tw.Delete {
			err = g.del(k)
		} else {
			err = g.set(k, seal(k, tw.Value))
		}
		if err != nil {
			return cairn.AppendResult{}, err
		}
	}
	return g.write(a.Stream, c.head, a.Events)
}

// Planned is what [DB.PlanCommit] found.
type Planned struct {
	// Plan is the projections' writes, and the position and version of
	// the first event they were given.
	Plan Plan
	// Repeat is set when the request repeats an earlier append: its
	// result. There is nothing to plan.
	Repeat *cairn.AppendResult
}

// PlanCommit runs the projections of a commit of req as [DB.CommitAll]
// would, on the committer, against the store as it is after every write
// submitted before, and returns what they wrote and the position and
// version they were given, without writing anything. A [CommitWrite] of
// the plan applies it, if nothing came between. The checks of req that
// fail (expected version, tombstone) and the projections' errors are
// returned as CommitAll returns them. The events the projections see were
// created at at (truncated to microseconds): apply the plan in a group of
// that time.
func (d *DB) PlanCommit(ctx context.Context, at time.Time, req cairn.AppendRequest, projections []cairn.Projection) (Planned, error) {
	op := &commitAllOp{req: [1]cairn.AppendRequest{req}, projections: projections, plan: &Plan{}, at: at.UTC().Truncate(time.Microsecond).UnixMicro()}
	if err := d.submit(ctx, op); err != nil {
		return Planned{}, err
	}
	if !op.planned {
		res := op.result
		return Planned{Repeat: &res}, nil
	}
	return Planned{Plan: *op.plan}, nil
}
