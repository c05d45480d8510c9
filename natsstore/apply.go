package natsstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The applier: reads the log in order and applies each record to the
// node's copy, with the record's sequence as the group's mark.

// mark encodes a sequence as a group's mark; decodeMark decodes it.
func mark(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func decodeMark(m []byte) (uint64, error) {
	if len(m) != 8 {
		return 0, fmt.Errorf("natsstore: the copy's mark holds %d bytes, not a log sequence: was it written by another program?", len(m))
	}
	return binary.BigEndian.Uint64(m), nil
}

// applying is a record handed to the copy, on its way to disk.
type applying struct {
	seq uint64
	id  string
	a   *diskstore.Applying
}

// startApplier checks that the log still holds the record after the
// copy's last, and starts the applier and completer goroutines.
func (d *DB) startApplier(ctx context.Context) error {
	var info *jetstream.StreamInfo
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		info, err = d.st.Info(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("natsstore: the log's stream: %w", err)
	}
	next := d.applied + 1
	if next < info.State.FirstSeq && next <= info.State.LastSeq {
		return fmt.Errorf("%w: the log starts at record %d, and this node applied up to %d: it was trimmed past this node; restore the node from a backup of another node (or remove its directory's store to start afresh only if the log was never trimmed)",
			ErrHalted, info.State.FirstSeq, d.applied)
	}
	msgs, err := d.consume(ctx, next)
	if err != nil {
		return err
	}
	toComplete := make(chan *applying, 256)
	d.wg.Go(func() { d.applyLoop(msgs, toComplete) })
	d.wg.Go(func() { d.completeLoop(toComplete) })
	return nil
}

// consume starts reading the log at sequence from.
func (d *DB) consume(ctx context.Context, from uint64) (jetstream.MessagesContext, error) {
	cons, err := d.st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{d.opts.subject()},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: reading the log: %w", err)
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(512), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return nil, fmt.Errorf("natsstore: reading the log: %w", err)
	}
	return msgs, nil
}

// stallAfter is how long the applier waits for a record before it asks
// the stream whether one is there; when one is, twice in a row, it reads
// the log again from the record it lacks (a consumer that the NATS
// servers lost while they formed their cluster delivers nothing, and says
// nothing).
const stallAfter = time.Second

// applyLoop is the applier goroutine.
func (d *DB) applyLoop(msgs jetstream.MessagesContext, out chan<- *applying) {
	defer close(out)
	var mu sync.Mutex // guards msgs against the stop on Close
	current := msgs
	stopped := false
	go func() {
		<-d.ctx.Done()
		mu.Lock()
		stopped = true
		current.Stop()
		mu.Unlock()
	}()
	stalls := 0
	for {
		mu.Lock()
		msgs := current
		mu.Unlock()
		msg, err := msgs.Next(jetstream.NextMaxWait(stallAfter))
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			if !errors.Is(err, nats.ErrTimeout) {
				d.lg.Warn("natsstore: reading the log", "err", err)
				time.Sleep(100 * time.Millisecond)
			}
			if !d.behind() {
				stalls = 0
				continue
			}
			if stalls++; stalls < 2 {
				continue
			}
			stalls = 0
			d.lg.Warn("natsstore: the log holds records this node was not sent; reading it again", "from", d.nextSeq.Load())
			fresh, err := d.consume(d.ctx, d.nextSeq.Load())
			if err != nil {
				d.lg.Warn("natsstore: reading the log again", "err", err)
				continue
			}
			mu.Lock()
			msgs.Stop()
			current = fresh
			if stopped {
				fresh.Stop()
			}
			mu.Unlock()
			continue
		}
		stalls = 0
		meta, err := msg.Metadata()
		if err != nil {
			d.halt(fmt.Errorf("%w: a record without metadata: %v", ErrHalted, err))
			return
		}
		seq := meta.Sequence.Stream
		want := d.nextSeq.Load()
		if seq < want {
			continue // a redelivery after the consumer was reset
		}
		if seq > want {
			d.halt(fmt.Errorf("%w: the log skips from record %d to %d: it was trimmed past this node; restore the node from a backup of another node", ErrHalted, want, seq))
			return
		}
		rec, err := decodeRecord(msg.Data())
		if err != nil {
			d.halt(fmt.Errorf("%w: record %d: %w", ErrHalted, seq, err))
			return
		}
		d.nextSeq.Store(seq + 1)
		ap := &applying{seq: seq, id: rec.id.String()}
		if rec.compact {
			// Compaction runs at this point of the log on every node: once
			// every record before is applied, and before any after.
			if err := d.waitApplied(d.ctx, seq-1); err != nil {
				return
			}
			if err := d.local.Compact(d.ctx); err != nil {
				if d.ctx.Err() == nil {
					d.halt(fmt.Errorf("%w: compaction at record %d: %w", ErrHalted, seq, err))
				}
				return
			}
		}
		ap.a, err = d.local.Apply(d.ctx, &diskstore.Group{Mark: mark(seq), Time: rec.time, Writes: rec.writes})
		if err != nil {
			if d.ctx.Err() == nil {
				d.halt(fmt.Errorf("%w: record %d: %w", ErrHalted, seq, err))
			}
			return
		}
		select {
		case out <- ap:
		case <-d.ctx.Done():
			return
		}
	}
}

// behind reports whether the log holds a record the applier has not read.
func (d *DB) behind() bool {
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	info, err := d.st.Info(ctx)
	return err == nil && info.State.LastSeq >= d.nextSeq.Load()
}

// completeLoop is the completer goroutine: it waits for each record handed
// to the copy, in log order, and answers and notifies.
func (d *DB) completeLoop(in <-chan *applying) {
	for ap := range in {
		res, err := ap.a.Wait()
		if err != nil {
			if !errors.Is(err, cairn.ErrClosed) {
				d.halt(fmt.Errorf("%w: record %d: %w", ErrHalted, ap.seq, err))
			}
			d.finish(ap, res, err)
			continue
		}
		d.finish(ap, res, nil)
		if res.Next > 0 {
			d.notifiers.fire(res.Next - 1)
		}
	}
}

// finish records ap applied (unless err), answers this node's writers of
// the record and wakes those waiting for its sequence.
func (d *DB) finish(ap *applying, res diskstore.Applied, err error) {
	d.appliedMu.Lock()
	b := d.pending[ap.id]
	delete(d.pending, ap.id)
	if err == nil {
		d.applied = ap.seq
		kept := d.waiters[:0]
		for _, w := range d.waiters {
			if w.seq <= ap.seq {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		clear(d.waiters[len(kept):])
		d.waiters = kept
	}
	d.appliedMu.Unlock()
	if b != nil {
		if err != nil {
			b.fail(err)
		} else {
			b.answer(res)
		}
	}
}

// halt stops the node's writes and syncs for good, with err.
func (d *DB) halt(err error) {
	d.lg.Error("natsstore: stopped applying the log", "err", err)
	d.appliedMu.Lock()
	if d.halted == nil {
		d.halted = err
	}
	for _, w := range d.waiters {
		close(w.ch)
	}
	d.waiters = nil
	pending := d.pending
	d.pending = map[string]*batch{}
	d.appliedMu.Unlock()
	for _, b := range pending {
		b.fail(err)
	}
}

func (d *DB) haltedErr() error {
	d.appliedMu.Lock()
	defer d.appliedMu.Unlock()
	return d.halted
}

// waiter is a caller waiting until the copy applied seq.
type waiter struct {
	seq uint64
	ch  chan struct{}
}

// waitApplied returns once the copy applied seq, ctx ends, or the node
// stops.
func (d *DB) waitApplied(ctx context.Context, seq uint64) error {
	d.appliedMu.Lock()
	if d.halted != nil {
		err := d.halted
		d.appliedMu.Unlock()
		return err
	}
	if d.applied >= seq {
		d.appliedMu.Unlock()
		return nil
	}
	if d.closing.Load() {
		d.appliedMu.Unlock()
		return cairn.ErrClosed
	}
	w := waiter{seq: seq, ch: make(chan struct{})}
	d.waiters = append(d.waiters, w)
	d.appliedMu.Unlock()
	select {
	case <-w.ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.appliedMu.Lock()
	defer d.appliedMu.Unlock()
	switch {
	case d.applied >= seq:
		return nil
	case d.halted != nil:
		return d.halted
	}
	return cairn.ErrClosed
}

// Applied returns the sequence of the last record of the log the node's
// copy holds.
func (d *DB) Applied() uint64 {
	d.appliedMu.Lock()
	defer d.appliedMu.Unlock()
	return d.applied
}

// notifiers are the registrations of Notify.
type notifiers struct {
	mu     sync.Mutex // held while calling, so that stop waits for a call in progress
	next   int
	fns    map[int]func(uint64)
	closed bool
}

func (n *notifiers) add(fn func(uint64)) func() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return func() {}
	}
	if n.fns == nil {
		n.fns = map[int]func(uint64){}
	}
	id := n.next
	n.next++
	n.fns[id] = fn
	return func() {
		n.mu.Lock()
		delete(n.fns, id)
		n.mu.Unlock()
	}
}

func (n *notifiers) fire(head uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, fn := range n.fns {
		fn(head)
	}
}

func (n *notifiers) closeAll() {
	n.mu.Lock()
	n.closed = true
	n.fns = nil
	n.mu.Unlock()
}

// Notify implements [cairn.Notifier]: fn is called after every record the
// node applies that wrote events, whichever node wrote them.
func (d *DB) Notify(fn func(head uint64)) (stop func()) { return d.notifiers.add(fn) }
