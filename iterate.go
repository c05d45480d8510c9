package cairn

import (
	"context"
	"errors"
	"iter"
	"math"
)

// Stream returns an iterator over the events of stream from version from to
// the end (forward) or to the start (backward). It reads in pages, so it can
// cover any number of events; an error ends the iteration and is yielded
// with a zero Event.
func (s *Store) Stream(ctx context.Context, stream string, from int64, dir Direction) iter.Seq2[Event, error] {
	if err := checkStreamRead(stream, from, dir); err != nil {
		return failedSeq[Event](err)
	}
	return paginate(ctx, func(last *Event) ([]Event, bool, error) {
		next, ok := NextFrom(from, last, func(e *Event) int64 { return e.Version }, dir)
		if !ok {
			return nil, false, nil
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
		next, ok := NextFrom(from, last, func(e *Event) uint64 { return e.Position }, dir)
		if !ok {
			return nil, false, nil
		}
		return s.page(s.readAll(ctx, next, dir))
	})
}

// readStream and readAll read an iterator's page: ReadBatch events, and no
// more after ReadBatchBytes with an engine that implements SizedReader.
func (s *Store) readStream(ctx context.Context, stream string, from int64, dir Direction) ([]Event, error) {
	ctx, end := s.begin(ctx, Operation{Name: OpReadStream, Stream: stream})
	var events []Event
	var err error
	if sr, ok := s.b.(SizedReader); ok {
		events, err = sr.ReadStreamSized(ctx, stream, from, s.opts.ReadBatch, s.opts.ReadBatchBytes, dir)
	} else {
		events, err = s.b.ReadStream(ctx, stream, from, s.opts.ReadBatch, dir)
	}
	if end != nil {
		end(readOutcome(events, err))
	}
	return events, err
}

func (s *Store) readAll(ctx context.Context, from uint64, dir Direction) ([]Event, error) {
	ctx, end := s.begin(ctx, Operation{Name: OpReadAll})
	var events []Event
	var err error
	if sr, ok := s.b.(SizedReader); ok {
		events, err = sr.ReadAllSized(ctx, from, s.opts.ReadBatch, s.opts.ReadBatchBytes, dir)
	} else {
		events, err = s.b.ReadAll(ctx, from, s.opts.ReadBatch, dir)
	}
	if end != nil {
		end(readOutcome(events, err))
	}
	return events, err
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

// NextFrom returns where the page after the one that ended at last starts
// (from, for the first page, when last is nil), and false when a backward
// read has passed number 0. at reads an item's number (a version, a
// position, an index entry's number). The Store's iterators page with it;
// so can an engine or client that reads in pages.
func NextFrom[T any, N int64 | uint64](from N, last *T, at func(*T) N, dir Direction) (N, bool) {
	switch {
	case last == nil:
		return from, true
	case dir == Forward:
		return at(last) + 1, true
	case at(last) == 0:
		return 0, false
	}
	return at(last) - 1, true
}
