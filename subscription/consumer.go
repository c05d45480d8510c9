package subscription

import (
	"context"
	"iter"
	"slices"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// Action is what a nack asks for.
type Action uint8

const (
	// Retry delivers the event again, unless it has reached the retry
	// limit, in which case it is parked.
	Retry Action = iota + 1
	// Skip treats the event as processed, as an ack does.
	Skip
	// Park records the event in the group's parked list, from which
	// [Manager.ReplayParked] delivers it again, and treats it as processed.
	Park
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case Retry:
		return "retry"
	case Skip:
		return "skip"
	case Park:
		return "park"
	}
	return "unknown"
}

// Delivery is an event delivered to a consumer of a persistent subscription.
type Delivery struct {
	// Event is the event read: for a link, the link itself, whose id
	// acks and nacks name.
	Event cairn.Event
	// Link is set when the group resolves links ([Settings.ResolveLinks])
	// and Event is a link; Target is then the event it names, or nil when
	// that event is gone.
	Link   bool
	Target *cairn.Event
	// RetryCount is how many times the event was delivered before: returned
	// by a consumer's Next and then nacked with retry, not answered within
	// the group's MessageTimeout, or left unanswered by a consumer that
	// closed.
	RetryCount int
	// Replayed says the event comes from the parked list.
	Replayed bool
}

// Parts returns the event and the link, in the form of KurrentDB's
// ResolvedEvent, as [links.Resolved.Parts] does.
func (d *Delivery) Parts() (event, link *cairn.Event) {
	if !d.Link {
		return &d.Event, nil
	}
	return d.Target, &d.Event
}

// ConsumerOptions configure a [Consumer]. The zero value is ready to use.
type ConsumerOptions struct {
	// Name identifies the consumer in [Info]. Empty gets a generated name.
	Name string
	// InFlight is the most events assigned to the consumer and not yet
	// answered, whether its Next has returned them or they wait for its
	// next call; the group assigns it no more until it answers some. Zero
	// means DefaultConsumerInFlight.
	InFlight int
	// From and User say where the consumer connects from and who it is,
	// for [Info]; the group does not use them.
	From, User string
}

// Consumer reads a persistent subscription group's events, sharing them
// with the group's other consumers. The group assigns each event to one
// consumer, chosen by its [Strategy] (by default in turn, round-robin)
// among those that hold fewer than InFlight unanswered events;
// [Consumer.Next] returns the events assigned to this consumer. It is safe
// for concurrent use: one goroutine may call Next while others Ack and Nack.
type Consumer struct {
	g     *group
	name  string
	from  string
	user  string
	limit int
	// Guarded by g.mu:
	held  int     // events assigned to this consumer and not answered
	queue []*item // assigned and not yet returned by Next, in order
	idle  bool    // its queue timed out; it gets no events until it calls Next
	gone  bool    // closed
	rate  meter   // events its Next returned
}

// Name returns the consumer's name.
func (c *Consumer) Name() string { return c.name }

// readyLocked reports whether c may be assigned another event. Called with
// mu held.
func (c *Consumer) readyLocked() bool { return c.held < c.limit && !c.idle }

// releaseLocked forgets an event assigned to c. Called with mu held.
func (c *Consumer) releaseLocked(it *item) {
	c.held--
	it.owner = nil
	if i := slices.Index(c.queue, it); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
}

// unqueueLocked takes back the events assigned to c that its Next has not
// returned. Called with mu held.
func (c *Consumer) unqueueLocked() []*item {
	items := c.queue
	for _, it := range items {
		delete(c.g.inflight, it.ev.ID)
		it.owner = nil
	}
	c.held -= len(items)
	c.queue = nil
	return items
}

// Next returns the next event assigned to this consumer, waiting until
// there is one. The event must be answered with Ack or Nack; otherwise it is
// delivered again, as a retry, after the group's MessageTimeout counted from
// when Next returns it. Events assigned to the consumer wait for Next in
// order; when some have waited a MessageTimeout since they were assigned,
// the consumer's waiting events go back to the group, without counting a
// retry, and the group assigns it no more until it calls Next (except with
// the Pinned strategy). Next returns an error when ctx is done (the consumer
// stays usable), when the consumer is closed ([ErrClosed]), the group is
// deleted ([ErrGroupDeleted]) or a read fails.
func (c *Consumer) Next(ctx context.Context) (Delivery, error) {
	g := c.g
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		g.mu.Lock()
		if c.gone {
			g.mu.Unlock()
			return Delivery{}, ErrClosed
		}
		if g.err != nil {
			g.mu.Unlock()
			return Delivery{}, g.err
		}
		now := time.Now()
		back := g.expireLocked(now)
		c.idle = false // calling Next
		if back {
			g.changedLocked() // wakes the consumers it assigns them to
		} else {
			g.dispatchLocked()
		}
		if len(g.toPark) > 0 {
			g.mu.Unlock()
			if err := g.parkPending(ctx); err != nil {
				return Delivery{}, err
			}
			continue
		}
		if len(c.queue) > 0 {
			it := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			it.delivered = true
			g.dueLocked(it, now)
			g.stats.delivered++
			c.rate.count++
			d := Delivery{Event: it.ev, Link: it.link, Target: it.target, RetryCount: it.retries, Replayed: it.replay}
			g.mu.Unlock()
			return d, nil
		}
		fill := false
		if !g.filling && len(g.marks) < g.d.BufferSize && !pending(g.atEnd) {
			g.filling, fill = true, true
		}
		wake, atEnd := g.wake, g.atEnd
		deadline, timed := g.earliest, !g.earliest.IsZero() && g.d.Timeout >= 0
		g.mu.Unlock()
		if fill {
			if err := g.fill(ctx); err != nil {
				return Delivery{}, err
			}
			if err := g.checkpoint(ctx, false); err != nil {
				return Delivery{}, err
			}
			continue
		}
		var expired <-chan time.Time
		if timed {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			} else {
				timer.Reset(time.Until(deadline))
			}
			expired = timer.C
		}
		select {
		case <-wake:
		case <-atEnd:
		case <-expired:
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		}
	}
}

// Deliveries returns an iterator over the deliveries of Next. An error ends
// the iteration and is yielded with a zero Delivery; stopping the loop leaves
// the consumer connected. Each delivery must still be answered with Ack or
// Nack.
func (c *Consumer) Deliveries(ctx context.Context) iter.Seq2[Delivery, error] {
	return func(yield func(Delivery, error) bool) {
		for {
			d, err := c.Next(ctx)
			if !yield(d, err) || err != nil {
				return
			}
		}
	}
}

// pending reports whether ch is a channel that has not fired yet.
func pending(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// answerLocked removes this consumer's in-flight events with the given ids;
// ids it does not hold are ignored. Called with mu held.
func (c *Consumer) answerLocked(ids []uuid.UUID) []*item {
	var out []*item
	for _, id := range ids {
		if it := c.g.inflight[id]; it != nil && it.owner == c {
			delete(c.g.inflight, id)
			c.releaseLocked(it)
			out = append(out, it)
		}
	}
	return out
}

// Ack marks events processed. Ids the consumer does not hold (answered
// already, timed out, or unknown) are ignored. It may write the group's
// checkpoint, and returns the error of that write.
func (c *Consumer) Ack(ctx context.Context, ids ...uuid.UUID) error {
	g := c.g
	g.mu.Lock()
	items := c.answerLocked(ids)
	g.stats.acked += uint64(len(items))
	replayed := c.finishLocked(items)
	g.changedLocked()
	g.mu.Unlock()
	if err := g.unpark(ctx, replayed); err != nil {
		return err
	}
	if err := g.parkPending(ctx); err != nil {
		return err
	}
	return g.checkpoint(ctx, false)
}

// finishLocked marks log events processed and returns the ids of replayed
// parked events, which leave the parked list. Called with mu held.
func (c *Consumer) finishLocked(items []*item) []uuid.UUID {
	var replayed []uuid.UUID
	for _, it := range items {
		if it.replay {
			replayed = append(replayed, it.ev.ID)
		} else {
			c.g.doneLocked(it.n)
		}
	}
	return replayed
}

// Nack answers events that were not processed: Retry delivers them again
// (parking them once they reach the retry limit), Skip drops them as
// processed, Park puts them in the parked list with reason. Ids the
// consumer does not hold are ignored.
func (c *Consumer) Nack(ctx context.Context, action Action, reason string, ids ...uuid.UUID) error {
	if action != Retry && action != Skip && action != Park {
		return invalidf("action", "unknown nack action %d: use Retry, Skip or Park", action)
	}
	g := c.g
	g.mu.Lock()
	items := c.answerLocked(ids)
	g.stats.nacked += uint64(len(items))
	var replayed []uuid.UUID
	switch action {
	case Retry:
		for _, it := range items {
			it.retries++
		}
		g.retry = append(g.retry, items...)
	case Skip:
		replayed = c.finishLocked(items)
	}
	g.changedLocked()
	g.mu.Unlock()
	if action == Park {
		if reason == "" {
			reason = "parked by consumer"
		}
		if err := g.park(ctx, items, reason); err != nil {
			return err
		}
	}
	if err := g.unpark(ctx, replayed); err != nil {
		return err
	}
	if err := g.parkPending(ctx); err != nil {
		return err
	}
	return g.checkpoint(ctx, false)
}

// Close disconnects the consumer: the events assigned to it and not
// answered go to the group's other consumers, as retries for those its Next
// returned, and a waiting Next returns [ErrClosed]. When it is the group's
// last consumer, the group's checkpoint is written.
func (c *Consumer) Close(ctx context.Context) error {
	g := c.g
	g.mu.Lock()
	if c.gone {
		g.mu.Unlock()
		return nil
	}
	c.gone = true
	delete(g.cons, c)
	if i := slices.Index(g.ring, c); i >= 0 {
		g.ring = slices.Delete(g.ring, i, i+1)
		if g.rr > i {
			g.rr--
		}
		if g.rr >= len(g.ring) {
			g.rr = 0
		}
	}
	var back []*item
	for id, it := range g.inflight {
		if it.owner == c {
			delete(g.inflight, id)
			it.owner = nil
			if it.delivered {
				it.retries++
			}
			back = append(back, it)
		}
	}
	g.requeueLocked(back)
	c.held, c.queue = 0, nil
	last := len(g.cons) == 0 && g.err == nil
	g.changedLocked()
	g.mu.Unlock()
	if last {
		return g.checkpoint(ctx, true)
	}
	return nil
}
