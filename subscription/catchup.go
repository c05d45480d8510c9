package subscription

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"math"
	"slices"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
)

// AllStream is the name under which the global log is subscribed to, as in
// the KurrentDB protocol.
const AllStream = cairn.AllStream

// Defaults applied by [Options.EnsureDefaults].
const (
	DefaultBufferSize      = 256
	DefaultCheckpointEvery = 1024
	DefaultMaxLag          = 65536
)

// Options configure a catch-up subscription. The zero value is ready to use.
type Options struct {
	// Filter selects the events delivered; the zero Filter passes all.
	Filter Filter
	// BufferSize is the most events read ahead of the consumer, which is
	// also the page size of reads. Zero means DefaultBufferSize.
	BufferSize int
	// CheckpointEvery is the number of scanned events after which a
	// filtered subscription on $all sends a KindCheckpoint message. Zero
	// means DefaultCheckpointEvery; negative sends none.
	CheckpointEvery int
	// MaxLag is the lag, in global positions, beyond which a live
	// subscription reports KindFellBehind. Zero means DefaultMaxLag;
	// negative never reports it.
	MaxLag int64
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
	// ResolveLinks delivers each link with the event it names
	// ([Message.Target]), as KurrentDB's resolveLinkTos does.
	ResolveLinks bool
	// Links reads the streams; a subscription to one of the standard
	// projections' streams ($ce-, $et-, $streams, $category-, $bc-)
	// reads it from the index. Nil reads with every standard projection
	// enabled.
	Links *links.Reader
}

// EnsureDefaults fills in zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.MaxLag == 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("subscription closed")

// Subscription is a catch-up subscription: it delivers the events that are
// durable from its starting point on, then follows new ones live, each event
// exactly once and in order (global order on $all, version order on a
// stream).
//
// # Flow control and concurrency
//
// A Subscription is pulled: it reads nothing until [Subscription.Next] is
// called, and then at most BufferSize events at a time, so a slow consumer
// holds at most one page in memory and never makes anything grow. It starts
// no goroutine; there is nothing to leak when a consumer stops calling Next.
// When it has caught up, Next waits on [cairn.Store.Changes], taken before
// the read that found nothing new so that no commit is missed, and the Store
// signals a change only after the engine's append has returned, that is
// after the events are durable: unless the engine was opened in a mode that
// trades durability for speed, a subscriber never sees an event that a crash
// could take back. A consumer
// learns how far behind it is from [Message.Lag] and from KindFellBehind
// messages.
//
// Next (like Messages and Buffered) must not be called concurrently; Close
// may be called from any goroutine and makes a waiting Next return
// [ErrClosed].
//
// # Streams that do not exist
//
// A subscription to one stream waits while the stream does not exist or is
// soft-deleted; when it is recreated its versions continue after the deleted
// ones, so the subscription continues with the new events. A tombstoned
// stream ends the subscription with an error matching [cairn.ErrStreamDeleted].
type Subscription struct {
	store  *cairn.Store
	stream string       // AllStream for the global log
	query  *cairn.Query // set for a subscription by query (see query.go), on AllStream
	filter *matcher
	opts   Options
	ctx    context.Context
	log    *slog.Logger

	started bool      // from has been resolved
	from    From      // the starting point, until resolved
	next    uint64    // the next position or version to read
	pending []Message // messages read ahead; pending[:taken] were returned
	taken   int
	wait    <-chan struct{} // the Changes channel taken before a read that reached the end
	scanned int             // events scanned since the last checkpoint
	live    bool            // caught up and not since fallen behind
	head    uint64          // the highest position seen in reads
	err     error           // terminal error

	closeOnce sync.Once
	done      chan struct{}
}

// All subscribes to the global log from from. The subscription lasts until
// ctx is done or Close is called; it reads nothing before the first call to
// Next, but a subscription from End takes its starting point now, so that
// it delivers every event committed after All returns.
func All(ctx context.Context, store *cairn.Store, from From, opts Options) (*Subscription, error) {
	return subscribe(ctx, store, AllStream, from, opts)
}

// Stream subscribes to one stream from version from. See [All].
func Stream(ctx context.Context, store *cairn.Store, stream string, from From, opts Options) (*Subscription, error) {
	if stream == AllStream {
		return nil, invalid("stream", `"$all" is the global log: use All`)
	}
	if err := cairn.ValidateSystemStreamID(stream); err != nil {
		return nil, err
	}
	if n, ok := from.first(); ok && n > math.MaxInt64 {
		return nil, invalidf("from", "version %d is beyond the largest version", n)
	}
	return subscribe(ctx, store, stream, from, opts)
}

func subscribe(ctx context.Context, store *cairn.Store, stream string, from From, opts Options) (*Subscription, error) {
	if store == nil {
		return nil, invalid("store", "must not be nil")
	}
	if opts.BufferSize < 0 {
		return nil, invalidf("buffer size", "must not be negative, got %d", opts.BufferSize)
	}
	opts.EnsureDefaults()
	if opts.Links == nil {
		opts.Links = links.NewReader(store, links.Options{})
	}
	m, err := opts.Filter.compile()
	if err != nil {
		return nil, err
	}
	s := &Subscription{
		store:  store,
		stream: stream,
		filter: m,
		opts:   opts,
		ctx:    ctx,
		log:    opts.Logger.With("subscription", stream),
		from:   from,
		done:   make(chan struct{}),
	}
	if from.kind == fromEnd {
		if err := s.start(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// start resolves the starting point and learns the head of the log.
func (s *Subscription) start(ctx context.Context) error {
	last, err := s.store.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
	if err != nil {
		return err
	}
	if len(last) == 1 {
		s.head = last[0].Position
	}
	n, ok := s.from.first()
	if !ok {
		n, err = endOf(ctx, s.opts.Links, s.stream, last)
		if err != nil {
			return err
		}
	}
	s.next, s.started = n, true
	return nil
}

// endOf returns the number after the last event of stream (or of the log,
// whose last event is last).
func endOf(ctx context.Context, r *links.Reader, stream string, last []cairn.Event) (uint64, error) {
	if stream == AllStream {
		if len(last) == 0 {
			return 0, nil
		}
		return last[0].Position + 1, nil
	}
	v, err := r.StreamVersion(ctx, stream)
	switch {
	case errors.Is(err, cairn.ErrStreamNotFound):
		// Reading from 0 skips the versions of a soft-deleted stream.
		return 0, nil
	case err != nil:
		return 0, err
	}
	return uint64(v) + 1, nil
}

// Close ends the subscription: a waiting Next returns ErrClosed, and so do
// later calls. It is safe to call from any goroutine, more than once.
func (s *Subscription) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// Buffered returns the number of messages read ahead and not yet returned by
// Next. It is at most BufferSize plus the checkpoint and status messages of
// one page.
func (s *Subscription) Buffered() int { return len(s.pending) - s.taken }

// Next returns the next message, waiting for one if the subscription has
// caught up. It returns an error when ctx or the subscription's context is
// done, when the subscription is closed, or when a read fails; an error from
// ctx leaves the subscription usable, the others end it.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	for {
		if s.err != nil {
			return Message{}, s.err
		}
		if err := s.alive(ctx); err != nil {
			return Message{}, err
		}
		if s.taken < len(s.pending) {
			m := s.pending[s.taken]
			s.pending[s.taken] = Message{} // let the event's memory go
			if s.taken++; s.taken == len(s.pending) {
				s.pending, s.taken = s.pending[:0], 0
			}
			if m.Kind == KindEvent {
				m.Lag = s.lag(m.Position)
			}
			return m, nil
		}
		if s.wait != nil {
			select {
			case <-s.wait:
				s.wait = nil
			case <-ctx.Done():
				return Message{}, ctx.Err()
			case <-s.ctx.Done():
				return Message{}, s.fail(s.ctx.Err())
			case <-s.done:
				return Message{}, s.fail(ErrClosed)
			}
		}
		if err := s.fill(ctx); err != nil {
			if ctx.Err() != nil && s.ctx.Err() == nil {
				return Message{}, ctx.Err()
			}
			return Message{}, s.fail(err)
		}
	}
}

// Messages returns an iterator over the messages of Next. An error ends the
// iteration and is yielded with a zero Message. Stopping the loop leaves the
// subscription usable; it does not close it.
func (s *Subscription) Messages(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			m, err := s.Next(ctx)
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

func (s *Subscription) alive(ctx context.Context) error {
	select {
	case <-s.done:
		return s.fail(ErrClosed)
	default:
	}
	if err := s.ctx.Err(); err != nil {
		return s.fail(err)
	}
	return ctx.Err()
}

func (s *Subscription) fail(err error) error {
	s.err = err
	s.pending, s.taken = nil, 0
	return err
}

// lag returns how far position p is behind the newest durable event known.
func (s *Subscription) lag(p uint64) uint64 {
	head := s.head
	if h, ok := s.store.Head(); ok && h > head {
		head = h
	}
	if head <= p {
		return 0
	}
	return head - p
}

// fill reads the next page into pending. When the page ends the log (or the
// stream) it leaves in s.wait the Changes channel taken before the read.
func (s *Subscription) fill(ctx context.Context) error {
	if !s.started {
		if err := s.start(ctx); err != nil {
			return err
		}
	}
	changed := s.store.Changes()
	head, headOK, err := s.queryHead(ctx)
	if err != nil {
		return err
	}
	page, err := s.read(ctx)
	if err != nil {
		return err
	}
	all := s.stream == AllStream
	for i := range page.Events {
		r := &page.Events[i]
		e := &r.Event
		if all {
			s.next = e.Position + 1
		} else {
			s.next = uint64(e.Version) + 1
		}
		s.head = max(s.head, e.Position)
		if s.filter.match(e) {
			s.pending = append(s.pending, Message{Kind: KindEvent, Event: *e, Link: r.Link, Target: r.Target, Position: e.Position})
		}
		if all && s.filter != nil && s.opts.CheckpointEvery > 0 {
			if s.scanned++; s.scanned >= s.opts.CheckpointEvery {
				s.pending = append(s.pending, Message{Kind: KindCheckpoint, Position: e.Position})
				s.scanned = 0
			}
		}
	}
	if !page.More {
		if headOK && head >= s.next {
			// Every event up to the head was scanned by the query.
			s.next = head + 1
		}
		s.wait = changed
		if !s.live {
			s.live = true
			s.pending = append(s.pending, Message{Kind: KindCaughtUp, Position: s.next})
		}
		return nil
	}
	if s.live && s.opts.MaxLag > 0 {
		if lag := s.lag(page.Events[len(page.Events)-1].Event.Position); lag > uint64(s.opts.MaxLag) {
			s.live = false
			s.log.Debug("subscriber fell behind", "lag", lag)
			// Tell the consumer before the page's events.
			s.pending = slices.Insert(s.pending, s.taken, Message{Kind: KindFellBehind, Lag: lag})
		}
	}
	return nil
}

func (s *Subscription) read(ctx context.Context) (links.Page, error) {
	if s.query != nil {
		events, err := s.store.ReadQuery(ctx, *s.query, s.next, s.opts.BufferSize, cairn.Forward)
		if err != nil {
			return links.Page{}, err
		}
		return logPage(ctx, s.opts.Links, events, s.opts.BufferSize, s.opts.ResolveLinks)
	}
	return readPage(ctx, s.opts.Links, s.stream, s.next, s.opts.BufferSize, s.opts.ResolveLinks)
}

// logPage is a page of events read from the log, of a read of at most
// count: their links resolved when resolve is set.
func logPage(ctx context.Context, r *links.Reader, events []cairn.Event, count int, resolve bool) (links.Page, error) {
	page := links.Page{More: len(events) >= count}
	if resolve {
		var err error
		page.Events, err = r.Resolve(ctx, events)
		return page, err
	}
	page.Events = make([]links.Resolved, len(events))
	for i := range events {
		page.Events[i].Event = events[i]
	}
	return page, nil
}

// readPage reads at most count events of stream (or of the log) from
// number from, resolving links when resolve is set. A stream that does not
// exist is an empty page.
func readPage(ctx context.Context, r *links.Reader, stream string, from uint64, count int, resolve bool) (links.Page, error) {
	if stream == AllStream {
		events, err := r.Store().ReadAll(ctx, from, count, cairn.Forward)
		if err != nil {
			return links.Page{}, err
		}
		return logPage(ctx, r, events, count, resolve)
	}
	page, err := r.ReadStream(ctx, stream, int64(from), count, 0, cairn.Forward, resolve)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		return links.Page{}, nil
	}
	return page, err
}
