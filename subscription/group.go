package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// item is an event the group holds.
type item struct {
	ev      cairn.Event
	link    bool         // ev is a link, resolved (see links.Resolved)
	target  *cairn.Event // the event ev links to, when found
	n       uint64       // position ($all) or version (stream)
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

	// Locks, in the order they are taken: the Manager's mu, then parkMu,
	// which serialises writes of the parked list, then mu, which guards
	// the fields below it and the Consumers' assignment state. Methods
	// named …Locked expect mu held (writeParkedLocked, parkMu).
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
	rate     meter // events delivered, measured by Info
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
		rate:     newMeter(),
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
	g.changedLocked()
}

// changedLocked assigns the events that are ready and wakes every waiting
// consumer. Called with mu held.
func (g *group) changedLocked() {
	g.dispatchLocked()
	g.broadcastLocked()
}

// broadcastLocked wakes every waiting consumer. Called with mu held.
func (g *group) broadcastLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}

func (g *group) stop(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
		g.broadcastLocked()
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
	c := &Consumer{g: g, name: opts.Name, from: opts.From, user: opts.User, limit: opts.InFlight, rate: newMeter()}
	g.cons[c] = struct{}{}
	g.ring = append(g.ring, c)
	g.changedLocked()
	return c, nil
}

// number returns an event's place in the group's order.
func (g *group) number(e *cairn.Event) uint64 {
	if g.all {
		return e.Position
	}
	return uint64(e.Version)
}

// processedLocked returns the first number not processed. Called with mu
// held.
func (g *group) processedLocked() uint64 {
	if len(g.marks) > 0 {
		return g.marks[0].n
	}
	return g.cursor
}

// doneLocked marks the log event n processed. Called with mu held.
func (g *group) doneLocked(n uint64) {
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

// expireLocked moves events whose consumer has not answered in time to the
// retry queue, counting a retry, and takes back the queues of consumers that
// have not called Next in time, without counting one. It reports whether it
// moved any event. Called with mu held.
func (g *group) expireLocked(now time.Time) bool {
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
			it.owner.releaseLocked(it)
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
		back = append(back, c.unqueueLocked()...)
		c.idle = true
	}
	g.requeueLocked(back)
	return len(back) > 0
}

// dueLocked sets the deadline of an event assigned or delivered now. Called
// with mu held.
func (g *group) dueLocked(it *item, now time.Time) {
	it.deadline = time.Time{}
	if g.d.Timeout < 0 {
		return
	}
	it.deadline = now.Add(time.Duration(g.d.Timeout) * time.Millisecond)
	if g.earliest.IsZero() || it.deadline.Before(g.earliest) {
		g.earliest = it.deadline
	}
}

// requeueLocked puts events to retry at the end of the retry queue, in log
// order. Called with mu held.
func (g *group) requeueLocked(items []*item) {
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
	from, room, resolve := g.cursor, g.d.BufferSize-len(g.marks), g.d.ResolveLinks
	if room <= 0 { // the buffer was made smaller meanwhile
		g.filling = false
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	page, err := readPage(ctx, g.m.links, g.d.Stream, from, room, resolve)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.filling = false
	defer g.changedLocked()
	if err != nil {
		return err
	}
	if g.err != nil {
		return nil
	}
	for i := range page.Events {
		r := &page.Events[i]
		e := &r.Event
		n := g.number(e)
		g.cursor = n + 1
		if !g.filter.match(e) {
			g.since++
			continue
		}
		g.marks = append(g.marks, mark{n: n})
		g.buffered = append(g.buffered, &item{ev: *e, link: r.Link, target: r.Target, n: n})
	}
	if !page.More {
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
	cp := g.processedLocked()
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
