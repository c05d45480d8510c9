package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"math"
	"slices"
	"sort"
	"sync"
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
	Event cairn.Event
	// RetryCount is how many times the event was delivered before: returned
	// by a consumer's Next and then nacked with retry, not answered within
	// the group's MessageTimeout, or left unanswered by a consumer that
	// closed.
	RetryCount int
	// Replayed says the event comes from the parked list.
	Replayed bool
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
}

// Info describes a persistent subscription group.
type Info struct {
	Stream   string
	Group    string
	Settings Settings
	// Checkpoint is the stored checkpoint: the group resumes from this
	// position ($all) or version (stream) after a restart. Every event
	// before it was processed.
	Checkpoint uint64
	// Processed is the first event not yet processed, which the next
	// checkpoint will store.
	Processed uint64
	// ReadUpTo is the next position or version the group will read.
	ReadUpTo uint64
	// Consumers are the connected consumers.
	Consumers []ConsumerInfo
	// Buffered counts the events read and waiting to be assigned to a
	// consumer, InFlight those assigned and unanswered (including those
	// waiting for a consumer's Next), Parked those in the parked list.
	Buffered, InFlight, Parked int
	// Delivered, Acked, Nacked and ParkedTotal count since the group was
	// loaded in this process.
	Delivered, Acked, Nacked, ParkedTotal uint64
}

// ConsumerInfo describes a consumer of a group.
type ConsumerInfo struct {
	Name string
	// InFlight counts the events assigned to the consumer and not
	// answered, including those waiting for its next call to Next.
	InFlight int
}

// parkedEntry is an event in a group's parked list.
type parkedEntry struct {
	ID       uuid.UUID `json:"id"`
	Position uint64    `json:"position"`
	Stream   string    `json:"stream"`
	Version  int64     `json:"version"`
	Reason   string    `json:"reason,omitempty"`
	Parked   time.Time `json:"parked"`
}

type parkedList struct {
	Events []parkedEntry `json:"events"`
}

// item is an event the group holds.
type item struct {
	ev      cairn.Event
	n       uint64 // position ($all) or version (stream)
	retries int
	replay  bool // from the parked list; not part of the checkpoint
	owner   *Consumer
	// delivered says the owner's Next returned the event; until then it
	// waits in the owner's queue.
	delivered bool
	// deadline is when the event goes back to be assigned again: the
	// message timeout after Next returned it (a retry), or after it was
	// assigned while it waits in the queue (not a retry). Zero: never.
	deadline time.Time
}

// mark is an event read from the log and not yet processed, in log order.
type mark struct {
	n    uint64
	done bool
}

// group is a running persistent subscription.
type group struct {
	m      *Manager
	all    bool
	filter *matcher
	name   string // for messages: the group and its stream

	// parkMu serialises writes of the parked list; taken before mu.
	parkMu    sync.Mutex
	parkedRev int64

	mu       sync.Mutex
	d        definition
	cursor   uint64 // next number to read
	marks    []mark // read and not processed, ascending
	buffered []*item
	retry    []*item
	inflight map[uuid.UUID]*item
	parked   []parkedEntry
	replays  map[uuid.UUID]bool // parked entries being replayed
	cons     map[*Consumer]struct{}
	ring     []*Consumer   // connected consumers, in the order they connected
	rr       int           // index in ring of the next consumer to offer an event
	toPark   []*item       // events past the retry limit, for a consumer's Next to park
	wake     chan struct{} // closed and replaced when anything changes
	filling  bool
	atEnd    <-chan struct{} // Changes channel taken before a read that reached the end
	earliest time.Time       // no in-flight deadline is before it; zero: none
	saved    uint64          // the stored checkpoint
	since    int             // events processed since the checkpoint was written
	err      error           // set when the group stops
	stats    struct{ delivered, acked, nacked, parked uint64 }
	nextName int
}

func loadGroup(ctx context.Context, m *Manager, d definition) (*group, error) {
	f, err := d.Filter.compile()
	if err != nil {
		return nil, err
	}
	g := &group{
		m:        m,
		all:      d.Stream == AllStream,
		name:     fmt.Sprintf("%q on %s", d.Group, d.Stream),
		filter:   f,
		d:        d,
		cursor:   d.Start,
		inflight: map[uuid.UUID]*item{},
		replays:  map[uuid.UUID]bool{},
		cons:     map[*Consumer]struct{}{},
		wake:     make(chan struct{}),
	}
	cp, ok, err := m.snap.GetSnapshot(ctx, d.stateID(), noVersion, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if ok {
		g.cursor = uint64(cp.Version)
	}
	g.saved = g.cursor
	ps, ok, err := m.snap.GetSnapshot(ctx, d.parkedID(), noVersion, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if ok {
		var pl parkedList
		if err := json.Unmarshal(ps.Data, &pl); err != nil {
			return nil, fmt.Errorf("parked events of %q on %s: %w: %v", d.Group, d.Stream, cairn.ErrCorrupt, err)
		}
		g.parked, g.parkedRev = pl.Events, ps.Version
	}
	return g, nil
}

func (g *group) def() definition {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.d
}

func (g *group) update(d definition) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.d.set(d.settings())
	g.d.ChangeID = d.ChangeID
	g.changed()
}

// changed assigns the events that are ready and wakes every waiting
// consumer. Called with mu held.
func (g *group) changed() {
	g.dispatch()
	g.broadcast()
}

// broadcast wakes every waiting consumer. Called with mu held.
func (g *group) broadcast() {
	close(g.wake)
	g.wake = make(chan struct{})
}

func (g *group) stop(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
		g.broadcast()
	}
}

func (g *group) connect(opts ConsumerOptions) (*Consumer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return nil, g.err
	}
	if limit := g.d.MaxSubscribers; limit > 0 && len(g.cons) >= limit {
		return nil, groupErr(g.d.Stream, g.d.Group, ErrTooManyConsumers)
	}
	if opts.InFlight == 0 {
		opts.InFlight = DefaultConsumerInFlight
	}
	g.nextName++
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("consumer-%d", g.nextName)
	}
	c := &Consumer{g: g, name: opts.Name, limit: opts.InFlight}
	g.cons[c] = struct{}{}
	g.ring = append(g.ring, c)
	g.changed()
	return c, nil
}

// number returns an event's place in the group's order.
func (g *group) number(e *cairn.Event) uint64 {
	if g.all {
		return e.Position
	}
	return uint64(e.Version)
}

// processed returns the first number not processed. Called with mu held.
func (g *group) processed() uint64 {
	if len(g.marks) > 0 {
		return g.marks[0].n
	}
	return g.cursor
}

// done marks the log event n processed. Called with mu held.
func (g *group) done(n uint64) {
	i := sort.Search(len(g.marks), func(i int) bool { return g.marks[i].n >= n })
	if i == len(g.marks) || g.marks[i].n != n {
		return
	}
	g.marks[i].done = true
	k := 0
	for k < len(g.marks) && g.marks[k].done {
		k++
	}
	g.marks = g.marks[k:]
	g.since++
}

// expire moves events whose consumer has not answered in time to the retry
// queue, counting a retry, and takes back the queues of consumers that have
// not called Next in time, without counting one. It reports whether it
// moved any event. Called with mu held.
func (g *group) expire(now time.Time) bool {
	if g.d.Timeout < 0 || g.earliest.IsZero() || now.Before(g.earliest) {
		return false
	}
	var (
		back []*item
		idle []*Consumer
	)
	g.earliest = time.Time{}
	for id, it := range g.inflight {
		switch {
		case it.deadline.IsZero():
			// Assigned or delivered while the group had no timeout.
		case it.deadline.After(now):
			if g.earliest.IsZero() || it.deadline.Before(g.earliest) {
				g.earliest = it.deadline
			}
		case it.delivered:
			delete(g.inflight, id)
			it.owner.release(it)
			it.retries++
			back = append(back, it)
		case !slices.Contains(idle, it.owner):
			idle = append(idle, it.owner)
		}
	}
	// The whole queue goes back, not only its expired head, so that the
	// events keep their order when they are assigned again, and the
	// consumer gets no more until it calls Next.
	for _, c := range idle {
		back = append(back, c.unqueue()...)
		c.idle = true
	}
	g.requeue(back)
	return len(back) > 0
}

// due sets the deadline of an event assigned or delivered now. Called with
// mu held.
func (g *group) due(it *item, now time.Time) {
	it.deadline = time.Time{}
	if g.d.Timeout < 0 {
		return
	}
	it.deadline = now.Add(time.Duration(g.d.Timeout) * time.Millisecond)
	if g.earliest.IsZero() || it.deadline.Before(g.earliest) {
		g.earliest = it.deadline
	}
}

// requeue puts events to retry at the end of the retry queue, in log
// order. Called with mu held.
func (g *group) requeue(items []*item) {
	slices.SortFunc(items, func(a, b *item) int {
		switch {
		case a.ev.Position < b.ev.Position:
			return -1
		case a.ev.Position > b.ev.Position:
			return 1
		}
		return 0
	})
	g.retry = append(g.retry, items...)
}

// fill reads the next page of the log. The caller has set filling.
func (g *group) fill(ctx context.Context) error {
	changed := g.m.store.Changes()
	g.mu.Lock()
	from, room := g.cursor, g.d.BufferSize-len(g.marks)
	if room <= 0 { // the buffer was made smaller meanwhile
		g.filling = false
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	var page []cairn.Event
	var err error
	if g.all {
		page, err = g.m.store.ReadAll(ctx, from, room, cairn.Forward)
	} else {
		page, err = g.m.store.ReadStream(ctx, g.d.Stream, int64(from), room, cairn.Forward)
		if errors.Is(err, cairn.ErrStreamNotFound) {
			page, err = nil, nil
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.filling = false
	defer g.changed()
	if err != nil {
		return err
	}
	if g.err != nil {
		return nil
	}
	for i := range page {
		e := &page[i]
		n := g.number(e)
		g.cursor = n + 1
		if !g.filter.match(e) {
			g.since++
			continue
		}
		g.marks = append(g.marks, mark{n: n})
		g.buffered = append(g.buffered, &item{ev: *e, n: n})
	}
	if len(page) < room {
		g.atEnd = changed
	} else {
		g.atEnd = nil
	}
	return nil
}

// checkpoint writes the checkpoint when enough events were processed since
// the last one, or when force is set and it moved.
func (g *group) checkpoint(ctx context.Context, force bool) error {
	g.mu.Lock()
	cp := g.processed()
	if cp <= g.saved || (!force && g.since < g.d.CheckpointAfter) {
		g.mu.Unlock()
		return nil
	}
	g.since = 0
	id := g.d.stateID()
	g.mu.Unlock()
	// The engine keeps a snapshot only when its version is newer, so a
	// write that loses a race with a later checkpoint does nothing.
	if err := g.m.snap.CommitSnapshot(ctx, cairn.Snapshot{StreamID: id, Version: int64(cp)}); err != nil {
		return fmt.Errorf("checkpoint of %s: %w", g.name, err)
	}
	g.mu.Lock()
	g.saved = max(g.saved, cp)
	g.mu.Unlock()
	return nil
}

// park records items in the parked list and then marks them processed. On
// failure they go back to the retry queue.
func (g *group) park(ctx context.Context, items []*item, reason string) error {
	if len(items) == 0 {
		return nil
	}
	g.parkMu.Lock()
	defer g.parkMu.Unlock()
	g.mu.Lock()
	list := slices.Clone(g.parked)
	now := time.Now().UTC()
	for _, it := range items {
		e := parkedEntry{ID: it.ev.ID, Position: it.ev.Position, Stream: it.ev.StreamID, Version: it.ev.Version, Reason: reason, Parked: now}
		if i := slices.IndexFunc(list, func(p parkedEntry) bool { return p.ID == e.ID }); i >= 0 {
			list[i] = e
		} else {
			list = append(list, e)
		}
	}
	g.mu.Unlock()
	err := g.writeParked(ctx, list)
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.changed()
	if err != nil {
		g.retry = append(g.retry, items...)
		return err
	}
	g.parked = list
	for _, it := range items {
		g.stats.parked++
		if it.replay {
			delete(g.replays, it.ev.ID)
		} else {
			g.done(it.n)
		}
	}
	return nil
}

// unpark removes replayed events from the parked list once processed.
func (g *group) unpark(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	g.parkMu.Lock()
	defer g.parkMu.Unlock()
	g.mu.Lock()
	list := slices.DeleteFunc(slices.Clone(g.parked), func(p parkedEntry) bool { return slices.Contains(ids, p.ID) })
	g.mu.Unlock()
	err := g.writeParked(ctx, list)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		delete(g.replays, id)
	}
	if err != nil {
		return err
	}
	g.parked = list
	return nil
}

// writeParked stores the parked list as the next revision. Called with
// parkMu held.
func (g *group) writeParked(ctx context.Context, list []parkedEntry) error {
	data, err := json.Marshal(parkedList{Events: list})
	if err != nil {
		return err
	}
	if err := g.m.snap.CommitSnapshot(ctx, cairn.Snapshot{StreamID: g.def().parkedID(), Version: g.parkedRev + 1, Data: data}); err != nil {
		return fmt.Errorf("parked events of %s: %w", g.name, err)
	}
	g.parkedRev++
	return nil
}

func (g *group) replay(ctx context.Context, limit int) (int, error) {
	g.mu.Lock()
	var todo []parkedEntry
	for _, p := range g.parked {
		if limit > 0 && len(todo) == limit {
			break
		}
		if !g.replays[p.ID] {
			g.replays[p.ID] = true
			todo = append(todo, p)
		}
	}
	g.mu.Unlock()
	var (
		items []*item
		gone  []uuid.UUID
		err   error
	)
	for i, p := range todo {
		var page []cairn.Event
		page, err = g.m.store.ReadAll(ctx, p.Position, 1, cairn.Forward)
		if err != nil {
			g.mu.Lock()
			for _, p := range todo[i:] {
				delete(g.replays, p.ID)
			}
			g.mu.Unlock()
			break
		}
		if len(page) == 0 || page[0].ID != p.ID {
			g.m.log.Warn("parked event no longer in the store; dropping it", "group", g.name, "id", p.ID, "position", p.Position)
			gone = append(gone, p.ID)
			continue
		}
		items = append(items, &item{ev: page[0], n: g.number(&page[0]), replay: true})
	}
	g.mu.Lock()
	g.retry = append(g.retry, items...)
	g.changed()
	g.mu.Unlock()
	if uerr := g.unpark(ctx, gone); err == nil {
		err = uerr
	}
	return len(items), err
}

func (g *group) info() Info {
	g.mu.Lock()
	defer g.mu.Unlock()
	in := Info{
		Stream:      g.d.Stream,
		Group:       g.d.Group,
		Settings:    g.d.settings(),
		Checkpoint:  g.saved,
		Processed:   g.processed(),
		ReadUpTo:    g.cursor,
		Buffered:    len(g.buffered),
		InFlight:    len(g.inflight),
		Parked:      len(g.parked),
		Delivered:   g.stats.delivered,
		Acked:       g.stats.acked,
		Nacked:      g.stats.nacked,
		ParkedTotal: g.stats.parked,
	}
	for c := range g.cons {
		in.Consumers = append(in.Consumers, ConsumerInfo{Name: c.name, InFlight: c.held})
	}
	slices.SortFunc(in.Consumers, func(a, b ConsumerInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return in
}

// dispatch assigns the events that are ready to consumers with room in their
// in-flight limit, chosen by the group's strategy, and queues them for the
// consumers' Next. Events past the retry limit are set aside for parking.
// Called with mu held.
func (g *group) dispatch() {
	if g.err != nil {
		return
	}
	now := time.Now()
	for len(g.retry)+len(g.buffered) > 0 {
		if it := g.peek(); it.retries > max(g.d.Retries, 0) {
			g.toPark = append(g.toPark, g.take())
			continue
		}
		c := g.pick(g.peek())
		if c == nil {
			return
		}
		it := g.take()
		it.owner, it.delivered = c, false
		g.due(it, now)
		g.inflight[it.ev.ID] = it
		c.held++
		c.queue = append(c.queue, it)
	}
}

// pick returns the consumer to assign it to, or nil when it must wait.
// Called with mu held.
func (g *group) pick(it *item) *Consumer {
	n := len(g.ring)
	if n == 0 {
		return nil
	}
	switch g.d.strategy() {
	case Pinned:
		h := fnv.New32a()
		h.Write([]byte(it.ev.StreamID))
		if c := g.ring[int(h.Sum32()%uint32(n))]; c.held < c.limit {
			return c
		}
		return nil // wait for that consumer: a stream's events stay in order
	case DispatchToSingle:
		for _, c := range g.ring {
			if c.ready() {
				return c
			}
		}
		return nil
	}
	for k := range n {
		if c := g.ring[(g.rr+k)%n]; c.ready() {
			g.rr = (g.rr + k + 1) % n
			return c
		}
	}
	return nil
}

// peek returns the next event to assign. Called with mu held, when there
// is one.
func (g *group) peek() *item {
	if len(g.retry) > 0 {
		return g.retry[0]
	}
	return g.buffered[0]
}

// take removes the next event to assign: retries first, then the log.
// Called with mu held.
func (g *group) take() *item {
	if len(g.retry) > 0 {
		it := g.retry[0]
		g.retry[0] = nil
		g.retry = g.retry[1:]
		return it
	}
	it := g.buffered[0]
	g.buffered[0] = nil
	g.buffered = g.buffered[1:]
	return it
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
	limit int
	// Guarded by g.mu:
	held  int     // events assigned to this consumer and not answered
	queue []*item // assigned and not yet returned by Next, in order
	idle  bool    // its queue timed out; it gets no events until it calls Next
	gone  bool    // closed
}

// Name returns the consumer's name.
func (c *Consumer) Name() string { return c.name }

// ready reports whether c may be assigned another event. Called with mu
// held.
func (c *Consumer) ready() bool { return c.held < c.limit && !c.idle }

// release forgets an event assigned to c. Called with mu held.
func (c *Consumer) release(it *item) {
	c.held--
	it.owner = nil
	if i := slices.Index(c.queue, it); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
}

// unqueue takes back the events assigned to c that its Next has not
// returned. Called with mu held.
func (c *Consumer) unqueue() []*item {
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
		back := g.expire(now)
		c.idle = false // calling Next
		if back {
			g.changed() // wakes the consumers it assigns them to
		} else {
			g.dispatch()
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
			g.due(it, now)
			g.stats.delivered++
			d := Delivery{Event: it.ev, RetryCount: it.retries, Replayed: it.replay}
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

// parkPending parks the events that reached the retry limit.
func (g *group) parkPending(ctx context.Context) error {
	g.mu.Lock()
	items := g.toPark
	g.toPark = nil
	g.mu.Unlock()
	for i, it := range items {
		if err := g.park(ctx, items[i:i+1], fmt.Sprintf("retried %d times", it.retries-1)); err != nil {
			g.mu.Lock()
			g.toPark = append(g.toPark, items[i+1:]...)
			g.mu.Unlock()
			return err
		}
	}
	return nil
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

// answer removes this consumer's in-flight events with the given ids; ids
// it does not hold are ignored. Called with mu held.
func (c *Consumer) answer(ids []uuid.UUID) []*item {
	var out []*item
	for _, id := range ids {
		if it := c.g.inflight[id]; it != nil && it.owner == c {
			delete(c.g.inflight, id)
			c.release(it)
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
	items := c.answer(ids)
	g.stats.acked += uint64(len(items))
	replayed := c.finish(items)
	g.changed()
	g.mu.Unlock()
	if err := g.unpark(ctx, replayed); err != nil {
		return err
	}
	if err := g.parkPending(ctx); err != nil {
		return err
	}
	return g.checkpoint(ctx, false)
}

// finish marks log events processed and returns the ids of replayed parked
// events, which leave the parked list. Called with mu held.
func (c *Consumer) finish(items []*item) []uuid.UUID {
	var replayed []uuid.UUID
	for _, it := range items {
		if it.replay {
			replayed = append(replayed, it.ev.ID)
		} else {
			c.g.done(it.n)
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
	items := c.answer(ids)
	g.stats.nacked += uint64(len(items))
	var replayed []uuid.UUID
	switch action {
	case Retry:
		for _, it := range items {
			it.retries++
		}
		g.retry = append(g.retry, items...)
	case Skip:
		replayed = c.finish(items)
	}
	g.changed()
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
	g.requeue(back)
	c.held, c.queue = 0, nil
	last := len(g.cons) == 0 && g.err == nil
	g.changed()
	g.mu.Unlock()
	if last {
		return g.checkpoint(ctx, true)
	}
	return nil
}
