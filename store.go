package cairn

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Options configure a [Store]. The zero value is ready to use.
type Options struct {
	// MaxEventBytes limits an event's data plus metadata.
	// Zero means DefaultMaxEventBytes.
	MaxEventBytes int
	// ReadBatch is the page size the iterators read with. Zero means 512.
	ReadBatch int
	// ReadBatchBytes ends an iterator's page early, after the event that
	// brings its data and metadata to this many bytes, so that iterating
	// over large events holds few of them at once (with an engine that
	// implements [SizedReader], as cairn's engines do). Zero means
	// DefaultReadBatchBytes.
	ReadBatchBytes int
	// Logger receives the Store's diagnostics. Nil discards them.
	Logger *slog.Logger
	// Hooks observe the Store's operations, for metrics.
	Hooks Hooks
}

// Hooks observe the Store's operations: Appended and Failed after they
// complete, for metrics; Begin around them, for tracing. They must be fast
// and must not call back into the Store. Nil hooks are skipped, at the cost
// of a nil check.
type Hooks struct {
	// Appended is called after each successful append (including each
	// stream of a batch and each CommitAll) with the number of events and
	// their total data and metadata bytes.
	Appended func(stream string, events int, bytes int)
	// Failed is called when an operation fails with an error that is not
	// ErrWrongExpectedVersion, ErrConditionFailed, ErrStreamNotFound or
	// ErrInvalidArgument.
	Failed func(op string, err error)
	// Begin is called as each append (Append, AppendIf, AppendBatch,
	// CommitAll) and each read of events (ReadStream, ReadAll, their sized
	// forms, and each page that Stream, All and GetEvents read) reaches
	// the engine, with the caller's context. The operation goes on with
	// the context Begin returns, which the engine receives, and the Store
	// calls end once, when the operation ends. Input the Store refuses
	// before it reaches the engine begins nothing.
	Begin func(ctx context.Context, op Operation) (_ context.Context, end func(Outcome))
}

// The names of the operations that [Hooks.Begin] sees.
const (
	OpAppend      = "append"       // Append, AppendIf, CommitAll without projections
	OpAppendBatch = "append batch" // AppendBatch
	OpCommit      = "commit"       // CommitAll with projections
	OpReadStream  = "read stream"  // ReadStream, ReadStreamSized, a page of Stream or GetEvents
	OpReadAll     = "read all"     // ReadAll, ReadAllSized, a page of All
)

// Operation describes an append or a read to [Hooks.Begin]. Its slices are
// the Store's: a hook reads them during Begin and keeps no reference.
type Operation struct {
	// Name is one of the Op constants.
	Name string
	// Stream is the stream appended to or read; empty for a read of the
	// global log and for a batch, whose streams are in Batch.
	Stream string
	// Events are the events of an append or a commit, their IDs filled in,
	// valid until the operation ends: a hook that keeps them copies them.
	Events []EventData
	// Batch are the requests of a batch append.
	Batch []AppendRequest
}

// Outcome is how an operation that [Hooks.Begin] saw ended.
type Outcome struct {
	// Events counts the events appended or read.
	Events int
	// Position is the position of the last event appended or read, when
	// Events is not zero.
	Position uint64
	// Err is the operation's error, nil when it succeeded.
	Err error
}

// DefaultReadBatchBytes is the default of [Options.ReadBatchBytes].
const DefaultReadBatchBytes = 4 << 20

// EnsureDefaults fills in zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = DefaultMaxEventBytes
	}
	if o.ReadBatch <= 0 {
		o.ReadBatch = 512
	}
	if o.ReadBatchBytes <= 0 {
		o.ReadBatchBytes = DefaultReadBatchBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is the facade applications use. It validates every input, fills in
// event IDs, falls back where an engine lacks an optional capability, and
// signals subscribers when new events are durable.
//
// A Store is safe for concurrent use. It owns its Backend: [Store.Close]
// closes it.
type Store struct {
	*core
	// system is set on the view that [Store.System] returns.
	system bool
}

// core is the state a Store and its system view share.
type core struct {
	b       Backend
	opts    Options
	changes signal
	ids     idGen

	// The engine's notifications, registered by the first call of
	// Changes or Head (watch). notifier is nil when the engine has none.
	notifier  Notifier
	listening atomic.Bool // set once watch has registered
	mu        sync.Mutex  // guards stop and closed, and orders watch against Close
	stop      func()
	closed    bool
}

// NewStore returns a Store over the engine b.
//
// The Store registers with the engine's [Notifier], if it has one, when
// Changes or Head is first called, not before: a Store that only writes
// receives no notifications. On PostgreSQL a listening Store holds a
// connection that every commit in the database wakes, which costs the
// server and the process CPU on every append of every process.
func NewStore(b Backend, opts Options) *Store {
	opts.EnsureDefaults()
	s := &Store{core: &core{b: b, opts: opts}}
	if n, ok := b.(Notifier); ok {
		s.notifier = n
	}
	return s
}

// watch registers with the engine's Notifier, once, unless the Store is
// closed. Changes calls it before it returns: every commit that ends after
// a subscriber took its channel fires it (the Notifier's first rule), and
// the subscriber's read, made after it took the channel, sees the commits
// before.
func (c *core) watch() {
	if c.notifier == nil || c.listening.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.listening.Load() {
		return
	}
	c.stop = c.notifier.Notify(c.changes.fire)
	c.listening.Store(true)
}

// System returns a view of s that may also write system streams, whose ids
// start with '$' ([ValidateSystemStreamID]): a server keeps its metadata
// streams, users, settings and projections' streams there. Every other rule
// of the Store holds for the view, which shares s's engine, notifications
// and hooks; closing either closes both. Hand it only to code that speaks
// for the system, never to a caller's request.
func (s *Store) System() *Store { return &Store{core: s.core, system: true} }

// validStream checks a stream id that s is asked to write.
func (s *Store) validStream(id string) error {
	if s.system {
		if id == DeletionsStream {
			return invalidf("stream", "%q is written by the engine alone", id)
		}
		return ValidateSystemStreamID(id)
	}
	return ValidateStreamID(id)
}

// Backend returns the engine under s, for access to engine-specific features.
func (s *Store) Backend() Backend { return s.b }

// MaxEventBytes returns the limit on an event's data plus metadata that s
// enforces on append ([Options.MaxEventBytes]).
func (s *Store) MaxEventBytes() int { return s.opts.MaxEventBytes }

// Close stops notifications and closes the engine. Channels returned by
// [Store.Changes], before or after, are closed, so that a subscriber waiting
// on one reads again and learns that the store is closed.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	err := s.b.Close()
	s.changes.close()
	return err
}

// Changes returns a channel that is closed the next time events become
// durable, whether appended through s or, with an engine that implements
// [Notifier], by another process. A subscriber takes the channel, reads until
// it has caught up, then waits on it:
//
//	for {
//		changed := store.Changes()
//		// read from the last position seen to the end …
//		select {
//		case <-changed:
//		case <-ctx.Done():
//			return ctx.Err()
//		}
//	}
//
// The first call starts the engine's notifications (see [NewStore]).
func (s *Store) Changes() <-chan struct{} {
	ch := s.changes.wait()
	s.watch()
	return ch
}

// Head returns the highest global position known to be durable, and false
// when s has not yet seen a commit.
// The first call starts the engine's notifications (see [NewStore]), whose
// first report, on an engine with a [Notifier], comes shortly after.
func (s *Store) Head() (uint64, bool) {
	s.watch()
	return s.changes.last()
}

// DiskBytes returns the engine's size on disk, or ErrNotSupported.
func (s *Store) DiskBytes(ctx context.Context) (int64, error) {
	if d, ok := s.b.(DiskSizer); ok {
		return d.DiskBytes(ctx)
	}
	return 0, fmt.Errorf("disk bytes: %w", ErrNotSupported)
}

// CommitStats returns the counts of the engine's group commit since it
// was opened ([GroupCommitter]), or ErrNotSupported.
func (s *Store) CommitStats() (CommitStats, error) {
	if g, ok := s.b.(GroupCommitter); ok {
		return g.CommitStats(), nil
	}
	return CommitStats{}, fmt.Errorf("commit stats: %w", ErrNotSupported)
}

// Health returns nil when the engine can serve reads and writes. Engines
// without a health check are assumed healthy.
func (s *Store) Health(ctx context.Context) error {
	if h, ok := s.b.(HealthChecker); ok {
		return h.Health(ctx)
	}
	return nil
}
