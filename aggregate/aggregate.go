package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/cairndb/cairn"
)

// ErrVersionNotFound is returned by [Repository.Replay] when the aggregate
// has not reached the requested version.
var ErrVersionNotFound = errors.New("aggregate has not reached that version")

// Definition describes a kind of aggregate: its state S, the commands C it
// handles and the events E it records. Decide and Evolve are plain functions
// of their arguments; they do no I/O and must be safe to call from several
// goroutines at once.
type Definition[S, C, E any] struct {
	// Category names the kind of aggregate. The events of the aggregate
	// with id X are the stream Category + "-" + X (for example
	// "account-42"). It must be non-empty and must not contain '-' or start
	// with '$', so that a stream id names one category and one id.
	Category string

	// Initial returns the state of an aggregate that has no events. Nil
	// means the zero value of S.
	Initial func() S

	// Decide returns the events that record cmd's effect on state, or an
	// error when the command is refused (a domain error, returned to the
	// caller as is; nothing is written). Returning no events and no error
	// accepts the command without writing anything. Decide is called once
	// per attempt, so possibly several times for one command: it must have
	// no side effects.
	Decide func(state S, cmd C) ([]E, error)

	// Evolve returns the state after event. It must treat state as a value
	// and not modify anything reachable from it (maps, slices, pointees):
	// the repository shares states between goroutines through its cache.
	Evolve func(state S, event E) S

	// Codec converts events to and from their stored form. Every event
	// type Decide returns must be registered.
	Codec *Codec[E]

	// Projections run inside every commit of the aggregate's events, in
	// order, with the events as recorded (see [cairn.Projection] and
	// [Codec.Projection]). An error aborts the commit and is returned by
	// [Repository.Handle]. They need an engine that implements
	// [cairn.TxCommitter].
	Projections []cairn.Projection
}

// Options tune a [Repository]. The zero value is ready to use.
type Options struct {
	// MaxAttempts bounds how many times Handle decides a command when
	// other writers keep changing the aggregate between its read and its
	// commit. Zero means 10.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the wait before each new attempt:
	// a random duration up to BackoffBase before the second attempt,
	// doubling with each attempt up to BackoffMax ("full jitter"). Zero
	// means 1ms and 100ms.
	BackoffBase time.Duration
	BackoffMax  time.Duration

	// CacheSize is the number of hydrated aggregates kept in memory, least
	// recently used first out. Zero means 1024; a negative value disables
	// the cache.
	CacheSize int

	// SnapshotEvery, when positive, writes a snapshot each time an
	// aggregate's sequence (version + 1) crosses a multiple of it. Zero
	// writes snapshots only on demand ([Repository.Snapshot]).
	SnapshotEvery int
	// SnapshotSchema is the version of the state's encoding. It is recorded
	// with every snapshot; a snapshot recorded with another schema is
	// ignored and the state rebuilt from the events. Change it whenever S
	// changes shape.
	SnapshotSchema int
	// SnapshotQueue bounds the snapshots waiting to be written. When it is
	// full a policy snapshot is skipped (the next one replaces it). Zero
	// means 64.
	SnapshotQueue int
	// SnapshotTimeout bounds the writing of one policy snapshot. Zero
	// means 10s.
	SnapshotTimeout time.Duration

	// Logger receives diagnostics: skipped or failed snapshots, ignored
	// snapshots, retried commands. Nil discards them.
	Logger *slog.Logger
}

// EnsureDefaults fills in zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 100 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.CacheSize == 0 {
		o.CacheSize = 1024
	}
	if o.SnapshotQueue <= 0 {
		o.SnapshotQueue = 64
	}
	if o.SnapshotTimeout <= 0 {
		o.SnapshotTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Repository runs the command lifecycle of one kind of aggregate over a
// [cairn.Store]: it hydrates an aggregate's state, decides, and commits.
//
// # Concurrency
//
// A Repository is safe for concurrent use, and any number of repositories
// (in this process or others) may share a store. No lock is held across
// I/O. Concurrent commands to the same aggregate are arbitrated by the
// store's optimistic concurrency: each commit expects the version its
// decision was based on, so of two decisions based on the same state only
// one commits; the other is decided again on the newer state (see
// [Repository.Handle]). Each successful Handle therefore commits its
// command's events once, decided on a state that includes every event
// committed before them.
//
// The cache holds states at the version they were computed for. It never
// replaces the store: before using a cached state, Handle and Fetch check
// that the stream still holds the events it was computed from (another
// writer may have deleted, recreated or truncated the stream) and read the
// events committed after it, so writes by other repositories are never
// ignored. Only Load may return a cached state without asking the store.
//
// Policy snapshots are written by one background goroutine per repository,
// after the commit that crossed the policy's threshold, from a bounded
// queue: a command never waits for a snapshot and never fails because of
// one (errors are logged). [Repository.Close] writes the queued snapshots and
// stops the goroutine.
type Repository[S, C, E any] struct {
	store *cairn.Store
	def   Definition[S, C, E]
	opts  Options
	log   *slog.Logger
	cache *cache[S]

	mu     sync.RWMutex // guards closed and sends on snaps
	closed bool
	snaps  chan cairn.Snapshot // nil without a snapshot policy
	done   chan struct{}
}

// New returns a repository for the aggregates described by def, stored in
// store. It returns an error naming the problem when def is incomplete.
func New[S, C, E any](store *cairn.Store, def Definition[S, C, E], opts Options) (*Repository[S, C, E], error) {
	switch {
	case store == nil:
		return nil, errors.New("aggregate: the store is nil")
	case def.Category == "":
		return nil, errors.New("aggregate: the category must not be empty")
	case strings.Contains(def.Category, "-"):
		return nil, fmt.Errorf("aggregate: category %q contains '-', which separates the category from the id in stream ids", def.Category)
	case def.Decide == nil:
		return nil, fmt.Errorf("aggregate %s: Decide is nil", def.Category)
	case def.Evolve == nil:
		return nil, fmt.Errorf("aggregate %s: Evolve is nil", def.Category)
	case def.Codec == nil:
		return nil, fmt.Errorf("aggregate %s: Codec is nil", def.Category)
	}
	if err := cairn.ValidateStreamID(def.Category + "-x"); err != nil {
		return nil, fmt.Errorf("aggregate: category %q: %w", def.Category, err)
	}
	for i, p := range def.Projections {
		if p == nil {
			return nil, fmt.Errorf("aggregate %s: Projections[%d] is nil", def.Category, i)
		}
	}
	if _, ok := store.Backend().(cairn.TxCommitter); len(def.Projections) > 0 && !ok {
		return nil, fmt.Errorf("aggregate %s: projections need an engine that commits them with the events (cairn.TxCommitter), and %T does not: %w", def.Category, store.Backend(), cairn.ErrNotSupported)
	}
	def.Projections = append([]cairn.Projection(nil), def.Projections...)
	opts.EnsureDefaults()
	r := &Repository[S, C, E]{
		store: store,
		def:   def,
		opts:  opts,
		log:   opts.Logger.With("category", def.Category),
		cache: newCache[S](opts.CacheSize),
	}
	if opts.SnapshotEvery > 0 {
		r.snaps = make(chan cairn.Snapshot, opts.SnapshotQueue)
		r.done = make(chan struct{})
		go r.writeSnapshots()
	}
	return r, nil
}

// Close writes the policy snapshots still queued and stops the background
// goroutine. The repository remains usable, but schedules no more policy
// snapshots. Close does not close the store.
func (r *Repository[S, C, E]) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	if r.snaps != nil {
		close(r.snaps)
	}
	r.mu.Unlock()
	if r.done != nil {
		<-r.done
	}
	return nil
}

// StreamID returns the id of the stream that holds the events of the
// aggregate id: Category + "-" + id.
func (r *Repository[S, C, E]) StreamID(id string) string {
	return r.def.Category + "-" + id
}

func (r *Repository[S, C, E]) stream(id string) (string, error) {
	if id == "" {
		return "", &cairn.InvalidArgumentError{Field: "id", Reason: "the aggregate id must not be empty"}
	}
	s := r.StreamID(id)
	if err := cairn.ValidateStreamID(s); err != nil {
		return "", fmt.Errorf("aggregate %s %q: %w", r.def.Category, id, err)
	}
	return s, nil
}

func (r *Repository[S, C, E]) initial() hydrated[S] {
	var s S
	if r.def.Initial != nil {
		s = r.def.Initial()
	}
	return hydrated[S]{state: s, version: -1, base: -1}
}

// Load returns the state and version of the aggregate id, from the cache
// when it holds the aggregate (without asking the store, so the state may
// lag behind other writers, or predate a deletion), otherwise hydrated from
// the store. An aggregate whose stream does not exist (never written, or
// deleted) has the initial state and version -1.
func (r *Repository[S, C, E]) Load(ctx context.Context, id string) (S, int64, error) {
	stream, err := r.stream(id)
	if err != nil {
		var zero S
		return zero, 0, err
	}
	if h, ok := r.cache.get(id); ok {
		return h.state, h.version, nil
	}
	h, err := r.fetch(ctx, id, stream)
	return h.state, h.version, err
}

// Fetch returns the state and version of the aggregate id including every
// event committed before the call: a cached state is checked against the
// stream and brought up to date with the events after it.
func (r *Repository[S, C, E]) Fetch(ctx context.Context, id string) (S, int64, error) {
	stream, err := r.stream(id)
	if err != nil {
		var zero S
		return zero, 0, err
	}
	h, err := r.fetch(ctx, id, stream)
	return h.state, h.version, err
}

// Replay returns the state of the aggregate id as of version: after the
// events of its history up to version (see the package documentation on
// deleted streams). It uses the stored snapshot only when it is at or
// before version. An aggregate that has not reached version returns an
// error matching [ErrVersionNotFound], and so does a version that is not
// part of its history: one deleted or truncated from its stream, or one
// before a snapshot that holds the effect of truncated events. Maestro's
// max sequence m is the version m - 1.
func (r *Repository[S, C, E]) Replay(ctx context.Context, id string, version int64) (S, error) {
	var zero S
	stream, err := r.stream(id)
	if err != nil {
		return zero, err
	}
	if version < 0 {
		return zero, &cairn.InvalidArgumentError{Field: "version", Reason: fmt.Sprintf("%d is negative; versions start at 0", version)}
	}
	h, err := r.hydrate(ctx, stream, version)
	if err != nil {
		return zero, err
	}
	if h.version != version {
		return zero, fmt.Errorf("aggregate %s: replay to version %d: the last version is %d: %w", stream, version, h.version, ErrVersionNotFound)
	}
	if h.origin > 0 && h.base+1 == h.origin {
		// The history was read from the first readable event, after
		// removed ones. When a newer snapshot holds the removed events'
		// effect (the stream was truncated after it was taken), Fetch
		// starts from it, and the versions before it have no state to
		// replay.
		snap, ok, err := r.fromSnapshot(ctx, stream, version, math.MaxInt64)
		if err != nil {
			return zero, err
		}
		if ok && snap.origin < h.origin {
			return zero, fmt.Errorf("aggregate %s: replay to version %d: the events before version %d were removed; only the snapshot at version %d holds their effect: %w", stream, version, h.origin, snap.version, ErrVersionNotFound)
		}
	}
	return h.state, nil
}
