package diskstore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/invariants"
	"github.com/cockroachdb/pebble/v2"
)

// The commit pipeline.
//
// A write is an operation (request.go) submitted to the pipeline, which
// answers it once it is durable or failed. Two goroutines run it:
//
//   - The committer takes the operations waiting, forms a group of them
//     (bounded by Options.MaxGroupEvents and maxGroupBytes; an exclusive
//     operation forms a group alone) and has its environment commit the
//     group: check and write the operations and append one frame to the
//     log without a sync. It hands the group to the syncer (handoff), then
//     applies its index writes to pebble's memtable and takes a snapshot
//     while the syncer syncs, and goes on with the next group, which reads
//     an index holding every group before.
//   - The syncer takes every group handed off since its last sync, syncs
//     the log once for all of them (group commit), waits until the
//     committer has finished with them (pending.ready), then publishes the
//     state after the last of them to readers and answers their writers,
//     in log order.
//
// So a writer is answered, and a reader sees a write, only once the frame
// holding it is durable; positions are published in order and without
// gaps. The committer knows which groups are still in flight (not yet
// answered): drain waits for all of them, which the environment does
// before anything that needs every earlier group durable (a flush of the
// memtable, a new segment, a batch too large for the memtable).
//
// With Options.VisibleBeforeSync (a copy of a log kept durable elsewhere,
// see there) the syncer's work is split in two: the syncer publishes each
// group to readers as soon as it is handed off, and tells the applied
// groups' callers (request.visible), then leaves it to a background
// syncer (behind), which syncs the log at most every
// Options.SyncInterval, or at once when the committer drains, and then
// answers the writers. Durability is unchanged: a request's done, and a
// group's, are closed only once its frame is durable, which drain waits
// for; readers merely see the groups sooner.
//
// The environment (pipelineEnv) is the DB in the store and a fake in
// pipeline_test.go, which tests the ordering without a store.

// pipelineEnv is what the pipeline drives.
type pipelineEnv interface {
	// commitGroup commits ops as one group, calling handoff for it, and
	// returns those of ops that must wait for the next group. It runs on
	// the committer goroutine.
	commitGroup(ops []operation) (deferred []operation)
	// syncLog makes every frame handed off so far durable. It runs on the
	// syncer goroutine, concurrently with commitGroup.
	syncLog() error
	// publishGroups makes the state after the last of groups visible to
	// readers when err is nil (the groups are durable), and releases
	// what the others hold. It runs on the syncer goroutine.
	publishGroups(groups []*pending, err error)
	// failed returns the error that stopped writes, if any; fail records
	// one and returns the error writes get from then on.
	failed() error
	fail(err error) error
}

// pipeline is the commit pipeline.
//
// Locks: subMu guards closed and the sends on reqs (Close closes reqs
// under it, so no send can follow); it is a leaf. Every other field is
// owned by one goroutine, as marked.
type pipeline struct {
	env            pipelineEnv
	maxGroupEvents int

	subMu  sync.RWMutex
	closed bool
	reqs   chan operation
	syncq  chan *pending // from the committer to the syncer
	done   chan struct{} // closed when the syncer exits

	// Owned by the committer goroutine.
	flight []*pending // groups handed to the syncer, not known to be answered

	// Owned by the syncer goroutine: the position after the last group
	// completed.
	next uint64

	// With Options.VisibleBeforeSync: the groups published and not yet
	// durable, and the background syncer's settings.
	behind    *behind
	syncEvery time.Duration
}

// behind is the queue of groups published before they are durable, from
// the syncer to the background syncer.
type behind struct {
	mu     sync.Mutex
	groups []*pending
	closed bool
	wake   chan struct{} // signalled when groups, closed or draining change
	done   chan struct{} // closed when the background syncer exits
	// draining is set while the committer waits in drain: the groups
	// are synced without waiting for the interval.
	draining atomic.Int32
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// pending is a group on its way to disk, in the syncer's queue.
type pending struct {
	snap   *pebble.Snapshot // the state after the group; nil when it wrote nothing or failed
	runs   []*runGen        // the runs in memory that snap may lack (runs.go)
	first  uint64           // the position of the group's first event
	next   uint64           // the position after its last; first when it wrote no event
	anchor bool             // renew the anchor after the group
	reqs   []*request
	done   chan struct{} // closed once the group is durable (or failed) and answered
	// ready, when not nil, is closed once the committer has finished
	// with the group: the group reaches the syncer as soon as its frame
	// is in the log, and its snapshot and its requests' results are set
	// while the log is synced. Until then the syncer reads first, next
	// and the length of reqs alone.
	ready chan struct{}
}

// wait waits until the committer has finished with the group.
func (pd *pending) wait() {
	if pd.ready != nil {
		<-pd.ready
	}
}

func newPipeline(env pipelineEnv, maxGroupEvents int) *pipeline {
	return &pipeline{
		env:            env,
		maxGroupEvents: maxGroupEvents,
		reqs:           make(chan operation, 1024),
		syncq:          make(chan *pending, 64),
		done:           make(chan struct{}),
	}
}

// syncBehind makes the pipeline publish groups before they are durable and
// sync the log in the background, at most every every (see the top of the
// file). Call it before start.
func (p *pipeline) syncBehind(every time.Duration) {
	p.syncEvery = every
	p.behind = &behind{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// start runs the committer and the syncer; next is the position of the
// first event to commit.
func (p *pipeline) start(next uint64) {
	p.next = next
	go p.commitLoop()
	if p.behind != nil {
		go p.publishLoop()
		go p.behindLoop()
		return
	}
	go p.syncLoop()
}

// submit hands op to the committer and waits until it is durable or failed.
func (p *pipeline) submit(ctx context.Context, op operation) error {
	if err := p.enqueue(ctx, op); err != nil {
		return err
	}
	r := op.base()
	<-r.done
	return r.err
}

// enqueue hands op to the committer, after every operation enqueued
// before it, and returns at once; op.base().done is closed once op is
// durable or failed.
func (p *pipeline) enqueue(ctx context.Context, op operation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := frameBytes(op); n > maxWriteBytes {
		return &cairn.InvalidArgumentError{Field: "events", Reason: fmt.Sprintf("take about %d bytes in all, more than the %d bytes one write to this engine can hold", n, maxWriteBytes)}
	}
	r := op.base()
	r.ctx = ctx
	r.done = make(chan struct{})
	p.subMu.RLock()
	if p.closed {
		p.subMu.RUnlock()
		return cairn.ErrClosed
	}
	if err := p.env.failed(); err != nil {
		p.subMu.RUnlock()
		return err
	}
	p.reqs <- op
	p.subMu.RUnlock()
	return nil
}

// close stops taking writes and returns once every write submitted is
// answered and both goroutines have exited. It returns cairn.ErrClosed
// when the pipeline was closed already.
func (p *pipeline) close() error {
	p.subMu.Lock()
	if p.closed {
		p.subMu.Unlock()
		return cairn.ErrClosed
	}
	p.closed = true
	close(p.reqs)
	p.subMu.Unlock()
	<-p.done
	return nil
}

const maxQueue = 4096

// yieldBelow is the queue length below which the committer yields once
// before it forms a group (see commitLoop).
const yieldBelow = 8

// yieldBelowEvents is the number of events below which it yields.
const yieldBelowEvents = 64

func queuedEvents(queue []operation) int {
	n := 0
	for _, op := range queue {
		n += events(op)
	}
	return n
}

// commitLoop is the committer goroutine: it takes the operations waiting
// and commits them in groups. It exits when close closes the request
// channel and every operation has been handed to the syncer.
func (p *pipeline) commitLoop() {
	defer close(p.syncq)
	var queue []operation
	open := true
	for {
		if len(queue) == 0 {
			if !open {
				return
			}
			op, ok := <-p.reqs
			if !ok {
				return
			}
			queue = append(queue, op)
		}
		yielded := false
	drain:
		for open && len(queue) < maxQueue {
			select {
			case op, ok := <-p.reqs:
				if !ok {
					open = false
					break drain
				}
				queue = append(queue, op)
			default:
				// Few requests waiting: let the writers that were
				// just answered (and are runnable) submit their next
				// write first, so that they join this group rather
				// than wait for the next fsync. Without it, under 64
				// writers most groups held one or two requests, each
				// with its own frame, fsync and snapshot.
				// A large append is worth a group of its own.
				if !yielded && len(queue) < yieldBelow && queuedEvents(queue) < yieldBelowEvents {
					yielded = true
					runtime.Gosched()
					continue
				}
				break drain
			}
		}
		n := p.groupLen(queue)
		p.settle()
		deferred := p.env.commitGroup(queue[:n])
		queue = append(deferred, queue[n:]...)
	}
}

// groupLen returns how many operations from the head of queue form the
// next group.
func (p *pipeline) groupLen(queue []operation) int {
	n := 1
	if !queue[0].exclusive() {
		evs, size := events(queue[0]), frameBytes(queue[0])
		for n < len(queue) && !queue[n].exclusive() && evs+events(queue[n]) <= p.maxGroupEvents && size+frameBytes(queue[n]) <= maxGroupBytes {
			evs += events(queue[n])
			size += frameBytes(queue[n])
			n++
		}
	}
	return n
}

// handoff hands a group committed by the environment to the syncer, which
// answers its requests (their results set) once it is durable. A request
// answered without writing anything (a repeated append, say) goes through
// the syncer too, so that it is answered only after the groups before it
// are durable. Committer only.
func (p *pipeline) handoff(pd *pending) {
	p.flight = append(p.flight, pd)
	p.syncq <- pd
}

// settle forgets the groups in flight that the syncer has answered.
// Committer only.
func (p *pipeline) settle() {
	for len(p.flight) > 0 {
		select {
		case <-p.flight[0].done:
		default:
			return
		}
		p.flight = p.flight[1:]
	}
}

// drain waits until every group in flight is durable (or failed) and
// answered. Committer only.
func (p *pipeline) drain() {
	if p.behind != nil && len(p.flight) > 0 {
		p.behind.draining.Add(1)
		defer p.behind.draining.Add(-1)
		signal(p.behind.wake)
	}
	for _, pd := range p.flight {
		<-pd.done
	}
	p.flight = p.flight[:0]
}

// syncLoop is the syncer goroutine: it takes every group handed off since
// its last sync and completes them.
func (p *pipeline) syncLoop() {
	defer close(p.done)
	answered := 0 // requests answered after the last sync
	for pd := range p.syncq {
		batch := []*pending{pd}
		n := len(pd.reqs)
		open := true
		for tries := 0; open; {
			select {
			case pd, ok := <-p.syncq:
				if !ok {
					open = false
					continue
				}
				batch = append(batch, pd)
				n += len(pd.reqs)
				continue
			default:
			}
			// Fewer requests than were answered last time: the writers
			// answered then are likely on their way with their next
			// write. Let them (and the committer) run, so that they
			// share this sync rather than wait for the next.
			if n >= answered || tries == maxSyncYields {
				break
			}
			tries++
			runtime.Gosched()
		}
		p.complete(batch)
		answered = n
	}
}

// maxSyncYields bounds how many times the syncer yields to let writers
// join a sync.
const maxSyncYields = 4

// complete syncs the log once for batch (groups in the order they were
// handed off), publishes the state after them and answers their requests.
// Syncer only.
func (p *pipeline) complete(batch []*pending) {
	for _, pd := range batch {
		// The groups' positions follow one another: the position
		// published only rises, and no position is skipped.
		if invariants.Enabled && (pd.first != p.next || pd.next < pd.first) {
			invariants.Failf("diskstore: group of positions [%d, %d) handed to the syncer after positions up to %d", pd.first, pd.next, p.next)
		}
		p.next = pd.next
	}
	err := p.env.failed()
	if err == nil {
		if err = p.env.syncLog(); err != nil {
			err = p.env.fail(err)
		}
	}
	for _, pd := range batch {
		pd.wait()
	}
	if err == nil {
		// A group that failed after its frame reached the log failed
		// the store.
		err = p.env.failed()
	}
	p.env.publishGroups(batch, err)
	for _, pd := range batch {
		for _, r := range pd.reqs {
			if r.err == nil {
				r.err = err
			}
			close(r.done)
		}
		close(pd.done)
	}
}

// publishLoop is the syncer goroutine with Options.VisibleBeforeSync: it
// publishes the groups handed off, tells the callers of applied groups,
// and queues the groups for the background syncer.
func (p *pipeline) publishLoop() {
	b := p.behind
	defer func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		signal(b.wake)
		<-b.done
		close(p.done)
	}()
	for pd := range p.syncq {
		batch := []*pending{pd}
	more:
		for {
			select {
			case pd, ok := <-p.syncq:
				if !ok {
					break more
				}
				batch = append(batch, pd)
			default:
				break more
			}
		}
		for _, pd := range batch {
			if invariants.Enabled && (pd.first != p.next || pd.next < pd.first) {
				invariants.Failf("diskstore: group of positions [%d, %d) handed to the syncer after positions up to %d", pd.first, pd.next, p.next)
			}
			p.next = pd.next
		}
		for _, pd := range batch {
			pd.wait()
		}
		err := p.env.failed()
		p.env.publishGroups(batch, err)
		if err == nil {
			for _, pd := range batch {
				for _, r := range pd.reqs {
					if r.visible != nil && r.err == nil {
						close(r.visible)
					}
				}
			}
		}
		b.mu.Lock()
		b.groups = append(b.groups, batch...)
		b.mu.Unlock()
		signal(b.wake)
	}
}

// behindLoop is the background syncer: it syncs the log once for every
// group published since its last sync, at most every p.syncEvery unless
// the committer drains, and answers their writers.
func (p *pipeline) behindLoop() {
	b := p.behind
	defer close(b.done)
	last := time.Now()
	for {
		b.mu.Lock()
		n, closed := len(b.groups), b.closed
		b.mu.Unlock()
		if n == 0 {
			if closed {
				return
			}
			<-b.wake
			continue
		}
		if wait := time.Until(last.Add(p.syncEvery)); wait > 0 && !closed && b.draining.Load() == 0 {
			t := time.NewTimer(wait)
			for waiting := true; waiting; {
				select {
				case <-t.C:
					waiting = false
				case <-b.wake:
					// More groups, closing, or the committer draining.
					b.mu.Lock()
					waiting = !b.closed && b.draining.Load() == 0
					b.mu.Unlock()
				}
			}
			t.Stop()
		}
		last = time.Now()
		b.mu.Lock()
		batch := b.groups
		b.groups = nil
		b.mu.Unlock()
		err := p.env.failed()
		if err == nil {
			if err = p.env.syncLog(); err != nil {
				err = p.env.fail(err)
			}
		}
		for _, pd := range batch {
			for _, r := range pd.reqs {
				if r.err == nil {
					r.err = err
				}
				close(r.done)
			}
			close(pd.done)
		}
	}
}
