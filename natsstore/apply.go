package natsstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
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
	seq   uint64
	id    string
	a     *diskstore.Applying
	purge bool // the record is a step of a compaction's purge
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
	d.consumerName = newConsumerPrefix()
	msgs, err := d.consume(ctx, next)
	if err != nil {
		return err
	}
	d.noteLogged(info.State.LastSeq)
	toComplete := make(chan *applying, 256)
	toSync := make(chan *applying, 4096)
	d.wg.Go(func() { d.applyLoop(msgs, toComplete) })
	d.wg.Go(func() { d.completeLoop(toComplete, toSync) })
	d.wg.Go(func() { d.durableLoop(toSync) })
	if d.reclaims.pending() {
		// It stopped before it gave back the space of a compaction.
		d.reclaims.ask()
	}
	reclaim := d.local.Reclaim
	if fails := reclaimFails; fails != nil {
		reclaim = func(context.Context) error { return fails }
	}
	d.wg.Go(func() { d.reclaims.loop(d.ctx, reclaim) })
	return nil
}

// newConsumerPrefix returns a name for the node's consumers of the log,
// unique to this opening of the node.
func newConsumerPrefix() string {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return "cairn-" + hex.EncodeToString(r[:])
}

// The applier reads the log through a consumer of its own (ephemeral, one
// replica, in memory, no acknowledgements) from the record after the last
// it read. That consumer lives on one of the stream's servers; when that
// server dies, or the consumer is otherwise lost, the applier makes
// another from where it stopped:
//
//   - at once when the consumer says so, or misses two heartbeats;
//   - when the log is known to hold a record the applier lacks (from an
//     acknowledgement of this node's writer, or from the stream's last
//     sequence, asked after idle without a record) and none arrives
//     within stallGrace (see watch).
//
// Each try to make one waits at most consumeAttempt, so that a request
// lost with a dying server is sent again soon.
const (
	heartbeat      = time.Second
	idle           = time.Second
	stallGrace     = 500 * time.Millisecond
	consumeAttempt = 2 * time.Second
)

// consume makes a consumer of the log from sequence from and starts
// reading it, trying until ctx ends. Each try names a consumer of its
// own: the servers may place a consumer on a server that just died, where
// a try of the same name would find it again. (A try that timed out after
// the servers made its consumer leaves it unread: they delete it after
// InactiveThreshold.)
func (d *DB) consume(ctx context.Context, from uint64) (jetstream.MessagesContext, error) {
	var cons jetstream.Consumer
	err := retryEvery(ctx, consumeAttempt, 250*time.Millisecond, func(ctx context.Context) error {
		d.consumers++
		var err error
		cons, err = d.st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Name:              d.consumerID(d.consumers),
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       from,
			AckPolicy:         jetstream.AckNonePolicy,
			FilterSubject:     d.opts.subject(),
			InactiveThreshold: time.Minute,
			Replicas:          1,
			MemoryStorage:     true,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: reading the log: %w", err)
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(512), jetstream.PullExpiry(5*time.Second),
		jetstream.PullHeartbeat(heartbeat), jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return nil, fmt.Errorf("natsstore: reading the log: %w", err)
	}
	return msgs, nil
}

// consumerID names the applier's nth consumer of the log.
func (d *DB) consumerID(n int) string { return fmt.Sprintf("%s_%d", d.consumerName, n) }

// noteLogged records that the log holds seq.
func (d *DB) noteLogged(seq uint64) {
	for {
		cur := d.logged.Load()
		if seq <= cur || d.logged.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// reader is the applier's consumer, which watch may stop.
type reader struct {
	mu      sync.Mutex
	msgs    jetstream.MessagesContext
	gen     int  // counts the consumers read
	kicked  bool // the current one was stopped by watch
	stopped bool // the node is closing

	waiting atomic.Int64 // since when (Unix ns) the applier waits for a record; 0 while it applies one
}

func (r *reader) current() (jetstream.MessagesContext, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs, r.gen
}

// kick stops consumer gen, if it is still the current one.
func (r *reader) kick(gen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == gen && !r.kicked {
		r.kicked = true
		r.msgs.Stop()
	}
}

// replace makes msgs the current consumer and reports whether the one
// replaced was kicked.
func (r *reader) replace(msgs jetstream.MessagesContext) (kicked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs.Stop()
	r.msgs, kicked = msgs, r.kicked
	r.gen++
	r.kicked = false
	if r.stopped {
		msgs.Stop()
	}
	return kicked
}

func (r *reader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.msgs.Stop()
}

// watch runs beside the applier until Close: it stops the applier's
// consumer when the log is known to hold a record that the consumer does
// not send, and, after idle without a record, asks the stream for its
// last sequence (on a goroutine of its own: while the stream's leader is
// being elected the answer takes seconds).
func (d *DB) watch(r *reader) {
	t := time.NewTicker(stallGrace / 4)
	defer t.Stop()
	var (
		behind   time.Time // since when the log held a record the applier lacks
		asked    time.Time
		checking atomic.Bool
	)
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		since := r.waiting.Load()
		if since == 0 || d.logged.Load() < d.nextSeq.Load() {
			behind = time.Time{}
		} else if behind.IsZero() {
			behind = now
		}
		waited := now.Sub(time.Unix(0, since))
		if !behind.IsZero() && now.Sub(behind) >= stallGrace && waited >= stallGrace {
			_, gen := r.current()
			r.kick(gen)
			behind = time.Time{}
		}
		if since != 0 && waited >= idle && now.Sub(asked) >= idle && !checking.Load() {
			asked = now
			checking.Store(true)
			d.wg.Go(func() {
				defer checking.Store(false)
				ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
				defer cancel()
				if info, err := d.st.Info(ctx); err == nil {
					d.noteLogged(info.State.LastSeq)
				}
			})
		}
	}
}

// applyLoop is the applier goroutine.
func (d *DB) applyLoop(msgs jetstream.MessagesContext, out chan<- *applying) {
	defer close(out)
	r := &reader{msgs: msgs}
	d.wg.Go(func() { d.watch(r) })
	d.wg.Go(func() {
		<-d.ctx.Done()
		r.stop()
	})
	var delivered uint64 // the current consumer's last delivery
	var lastReread time.Time
	reread := func(why string, err error) bool {
		// A consumer that fails at once is not made again at once.
		if wait := time.Until(lastReread.Add(250 * time.Millisecond)); wait > 0 {
			select {
			case <-d.ctx.Done():
				return false
			case <-time.After(wait):
			}
		}
		lastReread = time.Now()
		from := d.nextSeq.Load()
		old := d.consumerID(d.consumers)
		fresh, cerr := d.consume(d.ctx, from)
		if cerr != nil {
			if d.ctx.Err() == nil {
				// Not one the servers may get over (the stream was
				// deleted, the credentials may not read it).
				d.halt(fmt.Errorf("%w: %w", ErrHalted, cerr))
			}
			return false
		}
		if r.replace(fresh) {
			why = "the log holds records the consumer did not send"
		}
		// The servers delete a consumer nobody reads after a minute; a
		// live one goes now.
		d.wg.Go(func() {
			ctx, cancel := context.WithTimeout(d.ctx, consumeAttempt)
			defer cancel()
			if err := d.st.DeleteConsumer(ctx, old); err != nil && d.ctx.Err() == nil {
				// Gone with its server, or the servers delete it soon.
				d.lg.Debug("natsstore: deleting a consumer of the log", "consumer", old, "err", err)
			}
		})
		d.lg.Warn("natsstore: reading the log again", "from", from, "why", why, "err", err)
		delivered = 0
		return true
	}
	for {
		msgs, _ := r.current()
		r.waiting.Store(time.Now().UnixNano())
		msg, err := msgs.Next()
		r.waiting.Store(0)
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			if !reread("the consumer stopped", err) {
				return
			}
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			d.halt(fmt.Errorf("%w: a record without metadata: %v", ErrHalted, err))
			return
		}
		if meta.Sequence.Consumer != delivered+1 {
			// The consumer skipped a delivery (its server lost it).
			if !reread("the consumer skipped a record", fmt.Errorf("delivery %d after %d", meta.Sequence.Consumer, delivered)) {
				return
			}
			continue
		}
		delivered = meta.Sequence.Consumer
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
		if len(rec.writes) == 1 {
			_, ap.purge = rec.writes[0].(*diskstore.PurgeWrite)
		}
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

// completeLoop is the completer goroutine: it waits for each record handed
// to the copy, in log order, until the copy applied it and its readers see
// it, not until the copy holds it durably (the log does: a node that
// restarts applies again what its copy lost), then answers and notifies,
// and hands the record on to durableLoop.
func (d *DB) completeLoop(in <-chan *applying, out chan<- *applying) {
	defer close(out)
	for ap := range in {
		res, err := ap.a.Applied()
		if err != nil {
			if !errors.Is(err, cairn.ErrClosed) {
				d.halt(fmt.Errorf("%w: record %d: %w", ErrHalted, ap.seq, err))
			}
			d.finish(ap, res, err)
			continue
		}
		if ap.purge && len(res.Outcomes) == 1 && res.Outcomes[0].Err == nil && res.Outcomes[0].Resume == nil {
			// The compaction's last step: the space its purge freed is
			// given back, while the log goes on being applied. Asked
			// before the step's writer is answered, which waits for it.
			d.reclaims.ask()
		}
		d.finish(ap, res, nil)
		if res.Next > 0 {
			d.notifiers.fire(res.Next - 1)
		}
		out <- ap
	}
}

// durableLoop waits, in log order, until the copy holds each record
// applied durably, and records its sequence as the node's durable mark:
// what the node reports to the registry, below which the log may be
// trimmed.
func (d *DB) durableLoop(in <-chan *applying) {
	for ap := range in {
		if _, err := ap.a.Wait(); err != nil {
			if !errors.Is(err, cairn.ErrClosed) {
				d.halt(fmt.Errorf("%w: record %d: %w", ErrHalted, ap.seq, err))
			}
			continue
		}
		d.durable.Store(ap.seq)
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
// copy holds durably: a node that restarts, even after a power loss,
// applies the log from the record after it. The node's readers may
// already see later records: a record is answered and visible once the
// copy applied it, and the copy is synced behind.
func (d *DB) Applied() uint64 { return d.durable.Load() }

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
