package diskstore

import (
	"context"
	"fmt"
	"runtime"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// submit hands r to the committer and waits until it is durable or failed.
func (d *DB) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.opts.ReadOnly {
		return ErrReadOnly
	}
	if n := r.bytes(); n > maxWriteBytes {
		return &cairn.InvalidArgumentError{Field: "events", Reason: fmt.Sprintf("take about %d bytes in all, more than the %d bytes one write to this engine can hold", n, maxWriteBytes)}
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
		n := 1
		if !queue[0].exclusive() {
			events, size := queue[0].events(), queue[0].bytes()
			for n < len(queue) && !queue[n].exclusive() && events+queue[n].events() <= d.opts.MaxGroupEvents && size+queue[n].bytes() <= maxGroupBytes {
				events += queue[n].events()
				size += queue[n].bytes()
				n++
			}
		}
		deferred := d.commit(queue[:n])
		queue = append(deferred, queue[n:]...)
	}
}

// pending is a group on its way to disk, in the syncer's queue.
type pending struct {
	snap   *pebble.Snapshot // the state after the group; nil when it wrote nothing or failed
	next   uint64
	anchor bool // renew the anchor after the group
	reqs   []*request
	done   chan struct{} // closed once the group is durable (or failed) and answered
}

// settle forgets the groups in flight that the syncer has answered.
func (d *DB) settle() {
	for len(d.flight) > 0 {
		select {
		case <-d.flight[0].done:
		default:
			return
		}
		d.flight = d.flight[1:]
	}
}

// drain waits until every group in flight is durable (or failed) and
// answered.
func (d *DB) drain() {
	for _, p := range d.flight {
		<-p.done
	}
	d.flight = d.flight[:0]
}

// syncLoop is the syncer goroutine: it syncs the log once for all the
// groups written since the last sync, then, in order, applies each group's
// index writes to pebble (without a sync of their own: the log holds them,
// and Open replays what pebble lost), publishes the state after it to
// readers, and answers its requests.
func (d *DB) syncLoop() {
	defer close(d.done)
	answered := 0 // requests answered after the last sync
	for p := range d.syncq {
		batch := []*pending{p}
		n := len(p.reqs)
		open := true
		for tries := 0; open; {
			select {
			case p, ok := <-d.syncq:
				if !ok {
					open = false
					continue
				}
				batch = append(batch, p)
				n += len(p.reqs)
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
		err := d.failed()
		if err == nil {
			if err = d.log.Sync(); err != nil {
				err = d.fail(err)
			}
		}
		d.publishGroups(batch, err)
		for _, p := range batch {
			for _, r := range p.reqs {
				if r.err == nil {
					r.err = err
				}
				close(r.done)
			}
			close(p.done)
		}
		answered = n
	}
}

// maxSyncYields bounds how many times the syncer yields to let writers
// join a sync.
const maxSyncYields = 4

// publishGroups publishes to readers the state after the last of the
// groups of one sync, once they are durable (err is nil), and releases the
// snapshots of the others.
func (d *DB) publishGroups(groups []*pending, err error) {
	var last *pending
	anchor := false
	for _, p := range groups {
		if p.snap == nil {
			continue
		}
		if last != nil {
			_ = last.snap.Close()
		}
		last, anchor = p, anchor || p.anchor
	}
	if last == nil {
		return
	}
	if err != nil {
		_ = last.snap.Close()
		return
	}
	d.publish(last.snap, last.next)
	if d.groups++; anchor || d.groups%anchorGroups == 0 {
		d.renewAnchor()
	}
}
