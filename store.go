package cairn

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"sync"

	"github.com/google/uuid"
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

// Hooks are called after operations complete. They must be fast and must not
// call back into the Store. Nil hooks are skipped.
type Hooks struct {
	// Appended is called after each successful append (including each
	// stream of a batch and each CommitAll) with the number of events and
	// their total data and metadata bytes.
	Appended func(stream string, events int, bytes int)
	// Failed is called when an operation fails with an error that is not
	// ErrWrongExpectedVersion, ErrStreamNotFound or ErrInvalidArgument.
	Failed func(op string, err error)
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
	stop    func()
	ids     idGen
}

// NewStore returns a Store over the engine b.
func NewStore(b Backend, opts Options) *Store {
	opts.EnsureDefaults()
	s := &Store{core: &core{b: b, opts: opts}}
	if n, ok := b.(Notifier); ok {
		s.stop = n.Notify(s.changes.fire)
	}
	return s
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
	if s.stop != nil {
		s.stop()
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
func (s *Store) Changes() <-chan struct{} { return s.changes.wait() }

// Head returns the highest global position known to be durable, and false
// when s has not yet seen a commit.
func (s *Store) Head() (uint64, bool) { return s.changes.last() }

// Append appends events to stream if its version satisfies expected, and
// returns the version and position of the last event. See the package
// documentation for the guarantees.
func (s *Store) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error) {
	events, err := s.checkAppend(stream, expected, events)
	if err != nil {
		return AppendResult{}, err
	}
	res, err := s.b.Append(ctx, stream, expected, events)
	if err != nil {
		return res, s.failed("append", err)
	}
	s.appended(stream, events, res)
	return res, nil
}

func (s *Store) checkAppend(stream string, expected ExpectedVersion, events []EventData) ([]EventData, error) {
	if err := s.validStream(stream); err != nil {
		return nil, err
	}
	if err := validateExpected(expected); err != nil {
		return nil, err
	}
	return prepareEvents(events, s.opts.MaxEventBytes, &s.ids)
}

func (s *Store) appended(stream string, events []EventData, res AppendResult) {
	if h := s.opts.Hooks.Appended; h != nil {
		n := 0
		for _, e := range events {
			n += len(e.Data) + len(e.Metadata)
		}
		h(stream, len(events), n)
	}
	s.changes.fire(res.Position)
}

func (s *Store) failed(op string, err error) error {
	if h := s.opts.Hooks.Failed; h != nil && err != nil &&
		!errors.Is(err, ErrWrongExpectedVersion) && !errors.Is(err, ErrStreamNotFound) && !errors.Is(err, ErrInvalidArgument) {
		h(op, err)
	}
	return err
}

// AppendBatch appends to several streams. With an engine that implements
// [BatchAppender] the batch is atomic: all requests are written or none, and
// on failure the [*BatchError] says which expectations failed. Otherwise the
// requests are appended one after the other, which is not atomic: on failure
// the results of the requests already written are returned with the error,
// and the later requests are not attempted.
func (s *Store) AppendBatch(ctx context.Context, requests ...AppendRequest) ([]AppendResult, error) {
	if len(requests) == 0 {
		return nil, invalidf("requests", "a batch needs at least one request")
	}
	prepared := make([]AppendRequest, len(requests))
	seen := make(map[string]int, len(requests))
	ids := make(map[uuid.UUID]int)
	for i, r := range requests {
		events, err := s.checkAppend(r.Stream, r.Expected, r.Events)
		if err == nil {
			err = s.checkCondition(r.Condition)
		}
		if err != nil {
			return nil, fmt.Errorf("requests[%d]: %w", i, err)
		}
		if j, ok := seen[r.Stream]; ok {
			return nil, invalidf(fmt.Sprintf("requests[%d].stream", i), "%q is also the stream of requests[%d]; put its events in one request", r.Stream, j)
		}
		seen[r.Stream] = i
		for k, e := range r.Events {
			if e.ID == uuid.Nil {
				continue
			}
			if j, ok := ids[e.ID]; ok && j != i {
				return nil, invalidf(fmt.Sprintf("requests[%d].events[%d].id", i, k), "%s is also the id of an event of requests[%d]", e.ID, j)
			}
			ids[e.ID] = i
		}
		r.Events = events
		prepared[i] = r
	}
	if ba, ok := s.b.(BatchAppender); ok {
		results, err := ba.AppendBatch(ctx, prepared)
		if err != nil {
			return nil, s.failed("append batch", err)
		}
		for i, r := range prepared {
			s.appended(r.Stream, r.Events, results[i])
		}
		return results, nil
	}
	results := make([]AppendResult, 0, len(prepared))
	for i, r := range prepared {
		res, err := s.b.Append(ctx, r.Stream, r.Expected, r.Events)
		if err != nil {
			errs := make([]error, len(prepared))
			errs[i] = err
			return results, s.failed("append batch", &BatchError{Errs: errs})
		}
		s.appended(r.Stream, r.Events, res)
		results = append(results, res)
	}
	return results, nil
}

// checkCondition validates an append condition and refuses it when the
// engine cannot check it atomically.
func (s *Store) checkCondition(c *AppendCondition) error {
	if c == nil {
		return nil
	}
	if err := validateQuery("condition.fail_if_events_match", c.FailIfEventsMatch); err != nil {
		return err
	}
	_, q := s.b.(Querier)
	_, b := s.b.(BatchAppender)
	if !q || !b {
		return fmt.Errorf("append condition: %w", ErrNotSupported)
	}
	return nil
}

// CommitAll appends events to one stream and runs projections in the same
// transaction (Maestro's commit_all): if a projection fails, neither the
// events nor any projection's writes are kept, and the projection's error is
// returned. Without projections it is [Store.Append]. Engines that do not
// implement [TxCommitter] return ErrNotSupported when projections are given.
func (s *Store) CommitAll(ctx context.Context, req AppendRequest, projections ...Projection) (AppendResult, error) {
	if len(projections) == 0 {
		if req.Condition == nil {
			return s.Append(ctx, req.Stream, req.Expected, req.Events...)
		}
		res, err := s.AppendBatch(ctx, req)
		if err != nil {
			var be *BatchError
			if errors.As(err, &be) && len(be.Errs) == 1 && be.Errs[0] != nil {
				err = be.Errs[0]
			}
			return AppendResult{}, err
		}
		return res[0], nil
	}
	events, err := s.checkAppend(req.Stream, req.Expected, req.Events)
	if err == nil {
		err = s.checkCondition(req.Condition)
	}
	if err != nil {
		return AppendResult{}, err
	}
	for i, p := range projections {
		if p == nil {
			return AppendResult{}, invalidf(fmt.Sprintf("projections[%d]", i), "must not be nil")
		}
	}
	tc, ok := s.b.(TxCommitter)
	if !ok {
		return AppendResult{}, fmt.Errorf("commit with projections: %w", ErrNotSupported)
	}
	req.Events = events
	res, err := tc.CommitAll(ctx, req, projections)
	if err != nil {
		return res, s.failed("commit", err)
	}
	s.appended(req.Stream, events, res)
	return res, nil
}

// ReadStream returns at most count events of stream from version from, in
// direction dir. A backward read from StreamEnd starts at the last event.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, count int, dir Direction) ([]Event, error) {
	if err := checkStreamRead(stream, from, dir); err != nil {
		return nil, err
	}
	if err := validateCount(count); err != nil {
		return nil, err
	}
	return s.b.ReadStream(ctx, stream, from, count, dir)
}

func checkStreamRead(stream string, from int64, dir Direction) error {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return err
	}
	if err := validateDirection(dir); err != nil {
		return err
	}
	if from < 0 && !(dir == Backward && from == StreamEnd) {
		return invalidf("from", "version %d is negative; only a backward read may start at StreamEnd (-1)", from)
	}
	return nil
}

// ReadAll returns at most count events of the global log from position from,
// in direction dir. A backward read from LogEnd starts at the last event.
func (s *Store) ReadAll(ctx context.Context, from uint64, count int, dir Direction) ([]Event, error) {
	if err := validateDirection(dir); err != nil {
		return nil, err
	}
	if err := validateCount(count); err != nil {
		return nil, err
	}
	return s.b.ReadAll(ctx, from, count, dir)
}

// EventBytes is an event's size as [Options.MaxEventBytes] limits it and
// sized reads count it: its data plus its metadata.
func EventBytes(e Event) int { return len(e.Data) + len(e.Metadata) }

// PageFull reports whether a sized read of at most count events and
// maxBytes (see [SizedReader]) that returned events may have stopped before
// the end: it returned count events, or events that hold maxBytes or more.
func PageFull(events []Event, count, maxBytes int) bool {
	if len(events) >= count {
		return true
	}
	n := 0
	for _, e := range events {
		n += EventBytes(e)
	}
	return len(events) > 0 && n >= maxBytes
}

// ReadStreamSized is [Store.ReadStream] that also stops after the event that
// brings the data and metadata read to maxBytes or more (see
// [SizedReader]): it returns at least one event when there is one, and
// [PageFull] tells whether more may follow. With an engine that does not
// implement SizedReader the result is the same, but the engine reads count
// events whatever their size.
func (s *Store) ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir Direction) ([]Event, error) {
	if err := checkStreamRead(stream, from, dir); err != nil {
		return nil, err
	}
	if err := validateSized(count, maxBytes); err != nil {
		return nil, err
	}
	if sr, ok := s.b.(SizedReader); ok {
		return sr.ReadStreamSized(ctx, stream, from, count, maxBytes, dir)
	}
	events, err := s.b.ReadStream(ctx, stream, from, count, dir)
	return cutSized(events, maxBytes), err
}

// ReadAllSized is [Store.ReadAll] that also stops after the event that
// brings the data and metadata read to maxBytes or more, as
// [Store.ReadStreamSized] does.
func (s *Store) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir Direction) ([]Event, error) {
	if err := validateDirection(dir); err != nil {
		return nil, err
	}
	if err := validateSized(count, maxBytes); err != nil {
		return nil, err
	}
	if sr, ok := s.b.(SizedReader); ok {
		return sr.ReadAllSized(ctx, from, count, maxBytes, dir)
	}
	events, err := s.b.ReadAll(ctx, from, count, dir)
	return cutSized(events, maxBytes), err
}

func validateSized(count, maxBytes int) error {
	if err := validateCount(count); err != nil {
		return err
	}
	if maxBytes <= 0 {
		return invalidf("max bytes", "must be positive, got %d", maxBytes)
	}
	return nil
}

// cutSized drops the events after the one that brings the data and
// metadata of events to maxBytes.
func cutSized(events []Event, maxBytes int) []Event {
	n := 0
	for i, e := range events {
		if n += EventBytes(e); n >= maxBytes {
			return events[:i+1]
		}
	}
	return events
}

// Stream returns an iterator over the events of stream from version from to
// the end (forward) or to the start (backward). It reads in pages, so it can
// cover any number of events; an error ends the iteration and is yielded
// with a zero Event.
func (s *Store) Stream(ctx context.Context, stream string, from int64, dir Direction) iter.Seq2[Event, error] {
	if err := checkStreamRead(stream, from, dir); err != nil {
		return failedSeq[Event](err)
	}
	return paginate(ctx, func(last *Event) ([]Event, bool, error) {
		next := from
		switch {
		case last == nil:
		case dir == Forward:
			next = last.Version + 1
		case last.Version == 0:
			return nil, false, nil
		default:
			next = last.Version - 1
		}
		return s.page(s.readStream(ctx, stream, next, dir))
	})
}

// All returns an iterator over the global log from position from to the end
// (forward) or to the start (backward), read in pages.
func (s *Store) All(ctx context.Context, from uint64, dir Direction) iter.Seq2[Event, error] {
	if err := validateDirection(dir); err != nil {
		return failedSeq[Event](err)
	}
	return paginate(ctx, func(last *Event) ([]Event, bool, error) {
		next := from
		switch {
		case last == nil:
		case dir == Forward:
			next = last.Position + 1
		case last.Position == 0:
			return nil, false, nil
		default:
			next = last.Position - 1
		}
		return s.page(s.readAll(ctx, next, dir))
	})
}

// readStream and readAll read an iterator's page: ReadBatch events, and no
// more after ReadBatchBytes with an engine that implements SizedReader.
func (s *Store) readStream(ctx context.Context, stream string, from int64, dir Direction) ([]Event, error) {
	if sr, ok := s.b.(SizedReader); ok {
		return sr.ReadStreamSized(ctx, stream, from, s.opts.ReadBatch, s.opts.ReadBatchBytes, dir)
	}
	return s.b.ReadStream(ctx, stream, from, s.opts.ReadBatch, dir)
}

func (s *Store) readAll(ctx context.Context, from uint64, dir Direction) ([]Event, error) {
	if sr, ok := s.b.(SizedReader); ok {
		return sr.ReadAllSized(ctx, from, s.opts.ReadBatch, s.opts.ReadBatchBytes, dir)
	}
	return s.b.ReadAll(ctx, from, s.opts.ReadBatch, dir)
}

// page adds to a page of events whether another may follow it.
func (s *Store) page(events []Event, err error) ([]Event, bool, error) {
	return events, PageFull(events, s.opts.ReadBatch, s.opts.ReadBatchBytes), err
}

// countPage adds to a page of a count-limited read whether another may
// follow it: when it is full.
func countPage[T any](batch int) func(items []T, err error) ([]T, bool, error) {
	return func(items []T, err error) ([]T, bool, error) {
		return items, len(items) >= batch, err
	}
}

// paginate yields the items of successive pages; page returns the page
// after last (nil for the first page) and whether another may follow it.
// An error, or the context's, ends the iteration and is yielded with a zero
// item.
func paginate[T any](ctx context.Context, page func(last *T) ([]T, bool, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var last *T
		for {
			items, more, err := page(last)
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if !more || len(items) == 0 {
				return
			}
			last = &items[len(items)-1]
		}
	}
}

// failedSeq yields err alone.
func failedSeq[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}

// NoMaxSequence is the maxSeq of [Store.GetEvents] that sets no upper bound.
const NoMaxSequence int64 = math.MaxInt64

// GetEvents is Maestro's get_events: the events of stream whose sequence
// (version + 1) satisfies minSeq < sequence ≤ maxSeq, in order; that is the
// versions minSeq … maxSeq-1. A stream that does not exist has no events.
func (s *Store) GetEvents(ctx context.Context, stream string, minSeq, maxSeq int64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if minSeq < 0 {
			yield(Event{}, invalidf("min sequence", "must not be negative, got %d", minSeq))
			return
		}
		if maxSeq < minSeq {
			yield(Event{}, invalidf("max sequence", "%d is below the min sequence %d", maxSeq, minSeq))
			return
		}
		for e, err := range s.Stream(ctx, stream, minSeq, Forward) {
			if errors.Is(err, ErrStreamNotFound) {
				return
			}
			if err == nil && e.Sequence() > maxSeq {
				return
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// StreamVersion returns the version of the stream's last event, or an error
// matching ErrStreamNotFound.
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return 0, err
	}
	return s.b.StreamVersion(ctx, stream)
}

// StreamExists reports whether the stream exists and is not deleted.
func (s *Store) StreamExists(ctx context.Context, stream string) (bool, error) {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return false, err
	}
	return s.b.StreamExists(ctx, stream)
}

// HasEvents reports whether the store holds any event.
func (s *Store) HasEvents(ctx context.Context) (bool, error) { return s.b.HasEvents(ctx) }

// Streams returns an iterator over the ids of all existing streams, in byte
// order, read in pages.
func (s *Store) Streams(ctx context.Context) iter.Seq2[string, error] {
	return paginate(ctx, func(last *string) ([]string, bool, error) {
		after := ""
		if last != nil {
			after = *last
		}
		return countPage[string](s.opts.ReadBatch)(s.b.ListStreams(ctx, after, s.opts.ReadBatch))
	})
}

// DeleteStream soft-deletes stream if its version satisfies expected (checked
// atomically with the delete, as an append checks it): reads return
// not-found, its snapshot is removed, and an append with NoStream or Any
// recreates it, its versions continuing after the last deleted one.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	if err := validateExpected(expected); err != nil {
		return err
	}
	return s.failed("delete", withOp("delete", s.b.DeleteStream(ctx, stream, expected)))
}

// withOp names op in a wrong-expected-version error, which engines make
// with the append's wording.
func withOp(op string, err error) error {
	var wev *WrongExpectedVersionError
	if errors.As(err, &wev) && wev.Op == "" {
		wev.Op = op
	}
	return err
}

// TombstoneStream hard-deletes stream if its version satisfies expected: it
// can never be written or read again, and its snapshot is removed.
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	if err := validateExpected(expected); err != nil {
		return err
	}
	t, ok := s.b.(Tombstoner)
	if !ok {
		return fmt.Errorf("tombstone %q: %w", stream, ErrNotSupported)
	}
	return s.failed("tombstone", withOp("tombstone", t.TombstoneStream(ctx, stream, expected)))
}

// TruncateStream removes the events of stream with version < before from
// reads of the stream; the versions of the rest do not change.
func (s *Store) TruncateStream(ctx context.Context, stream string, before int64) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	if before < 0 {
		return invalidf("before", "version %d is negative", before)
	}
	t, ok := s.b.(Truncater)
	if !ok {
		return fmt.Errorf("truncate %q: %w", stream, ErrNotSupported)
	}
	return s.failed("truncate", t.TruncateStream(ctx, stream, before))
}

// Compact asks the engine to reclaim the space of deleted and truncated
// events. Engines without compaction do nothing.
func (s *Store) Compact(ctx context.Context) error {
	if c, ok := s.b.(Compacter); ok {
		return s.failed("compact", c.Compact(ctx))
	}
	return nil
}

// DiskBytes returns the engine's size on disk, or ErrNotSupported.
func (s *Store) DiskBytes(ctx context.Context) (int64, error) {
	if d, ok := s.b.(DiskSizer); ok {
		return d.DiskBytes(ctx)
	}
	return 0, fmt.Errorf("disk bytes: %w", ErrNotSupported)
}

// Health returns nil when the engine can serve reads and writes. Engines
// without a health check are assumed healthy.
func (s *Store) Health(ctx context.Context) error {
	if h, ok := s.b.(HealthChecker); ok {
		return h.Health(ctx)
	}
	return nil
}

// CommitSnapshot stores snap if its version is newer than the stored one;
// otherwise it does nothing and succeeds.
func (s *Store) CommitSnapshot(ctx context.Context, snap Snapshot) error {
	if err := s.validStream(snap.StreamID); err != nil {
		return err
	}
	if snap.Version < 0 {
		return invalidf("snapshot version", "%d is negative", snap.Version)
	}
	if n := len(snap.Data) + len(snap.Metadata); n > s.opts.MaxEventBytes {
		return invalidf("snapshot", "data and metadata are %d bytes, the limit is %d", n, s.opts.MaxEventBytes)
	}
	sn, ok := s.b.(Snapshotter)
	if !ok {
		return fmt.Errorf("commit snapshot: %w", ErrNotSupported)
	}
	return s.failed("commit snapshot", sn.CommitSnapshot(ctx, snap))
}

// GetSnapshot returns the snapshot of stream when min < version ≤ max, and
// false when there is none in those bounds.
func (s *Store) GetSnapshot(ctx context.Context, stream string, min, max int64) (Snapshot, bool, error) {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return Snapshot{}, false, err
	}
	if max < min {
		return Snapshot{}, false, invalidf("max", "%d is below min %d", max, min)
	}
	sn, ok := s.b.(Snapshotter)
	if !ok {
		return Snapshot{}, false, fmt.Errorf("get snapshot: %w", ErrNotSupported)
	}
	return sn.GetSnapshot(ctx, stream, min, max)
}

// ReadModelGet returns the value a projection stored under table and key.
func (s *Store) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := ValidateTable(table); err != nil {
		return nil, false, err
	}
	r, ok := s.b.(ReadModelReader)
	if !ok {
		return nil, false, fmt.Errorf("read model: %w", ErrNotSupported)
	}
	return r.ReadModelGet(ctx, table, key)
}

// ReadModel returns an iterator over the entries of table whose keys start
// with prefix, in key order.
func (s *Store) ReadModel(ctx context.Context, table, prefix string) iter.Seq2[Entry, error] {
	if err := ValidateTable(table); err != nil {
		return failedSeq[Entry](err)
	}
	r, ok := s.b.(ReadModelReader)
	if !ok {
		return failedSeq[Entry](fmt.Errorf("read model: %w", ErrNotSupported))
	}
	return paginate(ctx, func(last *Entry) ([]Entry, bool, error) {
		after := ""
		if last != nil {
			after = last.Key
		}
		return countPage[Entry](s.opts.ReadBatch)(r.ReadModelScan(ctx, table, prefix, after, s.opts.ReadBatch))
	})
}

// signal broadcasts "new events are durable" by closing a channel.
type signal struct {
	mu     sync.Mutex
	ch     chan struct{}
	head   uint64
	seen   bool
	closed bool
}

func (g *signal) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	return g.ch
}

// close wakes every waiter, now and from now on.
func (g *signal) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	close(g.ch) // and keep it: wait returns it from now on
}

func (g *signal) fire(head uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.seen || head > g.head {
		g.head, g.seen = head, true
	}
	if g.ch != nil && !g.closed {
		close(g.ch)
		g.ch = nil
	}
}

func (g *signal) last() (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.head, g.seen
}
