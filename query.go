package cairn

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// Reads by index and by query, and conditional appends (dynamic
// consistency boundaries). See [Query], [AppendCondition], [IndexReader]
// and [Querier] for the rules.

// ReadIndex returns at most count entries of the index list key, from
// number from, in direction dir; a backward read from StreamEnd starts at
// the last entry. A list with no entry returns none. Engines that do not
// implement [IndexReader] return ErrNotSupported.
func (s *Store) ReadIndex(ctx context.Context, key IndexKey, from int64, count int, dir Direction) ([]IndexedEvent, error) {
	ir, err := s.indexReader(key, from, dir)
	if err != nil {
		return nil, err
	}
	if err := validateCount(count); err != nil {
		return nil, err
	}
	return ir.ReadIndex(ctx, key, from, count, dir)
}

func (s *Store) indexReader(key IndexKey, from int64, dir Direction) (IndexReader, error) {
	if err := ValidateIndexKey(key); err != nil {
		return nil, err
	}
	if err := validateDirection(dir); err != nil {
		return nil, err
	}
	if from < 0 && !(dir == Backward && from == StreamEnd) {
		return nil, invalidf("from", "number %d is negative; only a backward read may start at StreamEnd (-1)", from)
	}
	ir, ok := s.b.(IndexReader)
	if !ok {
		return nil, fmt.Errorf("read index %s %q: %w", key.Kind, key.Value, ErrNotSupported)
	}
	return ir, nil
}

// Index returns an iterator over the entries of the index list key from
// number from to the end (forward) or to the start (backward), read in
// pages of [Options.ReadBatch] entries.
func (s *Store) Index(ctx context.Context, key IndexKey, from int64, dir Direction) iter.Seq2[IndexedEvent, error] {
	ir, err := s.indexReader(key, from, dir)
	if err != nil {
		return failedSeq[IndexedEvent](err)
	}
	return paginate(ctx, func(last *IndexedEvent) ([]IndexedEvent, bool, error) {
		next, ok := NextFrom(from, last, func(e *IndexedEvent) int64 { return e.Number }, dir)
		if !ok {
			return nil, false, nil
		}
		return countPage[IndexedEvent](s.opts.ReadBatch)(ir.ReadIndex(ctx, key, next, s.opts.ReadBatch, dir))
	})
}

// ReadQuery returns at most count events that match q, from position from
// (inclusive) in direction dir; a backward read from LogEnd starts at the
// last event. With an engine that implements [Querier] the read follows
// the index, and costs what the query's items select. Otherwise the Store
// scans the log from from and keeps the events that match: that read costs
// the whole log between from and the last match, however few events match.
func (s *Store) ReadQuery(ctx context.Context, q Query, from uint64, count int, dir Direction) ([]Event, error) {
	if err := checkQueryRead(q, dir); err != nil {
		return nil, err
	}
	if err := validateCount(count); err != nil {
		return nil, err
	}
	return s.readQuery(ctx, q, from, count, dir)
}

func checkQueryRead(q Query, dir Direction) error {
	if err := ValidateQuery("query", q); err != nil {
		return err
	}
	return validateDirection(dir)
}

func (s *Store) readQuery(ctx context.Context, q Query, from uint64, count int, dir Direction) ([]Event, error) {
	if qr, ok := s.b.(Querier); ok {
		return qr.ReadQuery(ctx, q, from, count, dir)
	}
	return s.scanQuery(ctx, q, from, count, dir)
}

// scanQuery is ReadQuery for engines without an index: a scan of the log.
func (s *Store) scanQuery(ctx context.Context, q Query, from uint64, count int, dir Direction) ([]Event, error) {
	var out []Event
	for e, err := range s.All(ctx, from, dir) {
		if err != nil {
			return nil, err
		}
		if q.Matches(&e) {
			if out = append(out, e); len(out) == count {
				break
			}
		}
	}
	return out, nil
}

// Query returns an iterator over the events that match q, from position
// from to the end (forward) or to the start (backward), read in pages of
// [Options.ReadBatch] events, and the position of the last event of the log
// before the read (nil when the log was empty).
//
// That position is what a decision based on the events read passes as
// [AppendCondition.After]: it was read before the events, so every event
// that matches q at or before it is among them, and the condition fails
// only if a matching event came after it. (The iterator may also return
// events committed after it; a condition made with it then fails, and the
// caller decides again.)
//
// Without an engine that implements [Querier] the pages are scans of the
// log (see [Store.ReadQuery]).
func (s *Store) Query(ctx context.Context, q Query, from uint64, dir Direction) (iter.Seq2[Event, error], *uint64, error) {
	if err := checkQueryRead(q, dir); err != nil {
		return nil, nil, err
	}
	head, ok, err := s.LastPosition(ctx)
	if err != nil {
		return nil, nil, err
	}
	var after *uint64
	if ok {
		after = &head
	}
	return paginate(ctx, func(last *Event) ([]Event, bool, error) {
		next, ok := NextFrom(from, last, func(e *Event) uint64 { return e.Position }, dir)
		if !ok {
			return nil, false, nil
		}
		return countPage[Event](s.opts.ReadBatch)(s.readQuery(ctx, q, next, s.opts.ReadBatch, dir))
	}), after, nil
}

// LastPosition returns the position of the last event of the log, and false
// when the log holds none. Unlike [Store.Head] it asks the engine.
func (s *Store) LastPosition(ctx context.Context) (uint64, bool, error) {
	last, err := s.b.ReadAll(ctx, LogEnd, 1, Backward)
	if err != nil || len(last) == 0 {
		return 0, false, err
	}
	return last[0].Position, true, nil
}

// AppendIf appends events to stream if its version satisfies expected and
// cond holds: no event that matches cond.FailIfEventsMatch was recorded
// after cond.After (at all, when After is nil). Both are checked atomically
// with the write. A failed expectation returns a
// [*WrongExpectedVersionError] (checked first), a failed condition a
// [*ConditionError] naming the first conflicting position; either way
// nothing is written. A retry of an append already recorded (recognised by
// its first event's ID) returns the earlier result without checking the
// condition. Engines that do not implement [Querier] and [BatchAppender]
// refuse conditions with ErrNotSupported: the Store never checks one
// outside the engine's critical section.
func (s *Store) AppendIf(ctx context.Context, stream string, expected ExpectedVersion, cond AppendCondition, events ...EventData) (AppendResult, error) {
	return s.appendIf(ctx, AppendRequest{Stream: stream, Expected: expected, Events: events, Condition: &cond})
}

// appendIf appends one request that has a condition, through the engine's
// atomic batch.
func (s *Store) appendIf(ctx context.Context, req AppendRequest) (AppendResult, error) {
	events, err := s.checkAppend(req.Stream, req.Expected, req.Events)
	if err == nil {
		err = s.checkCondition(req.Condition)
	}
	if err != nil {
		return AppendResult{}, err
	}
	req.Events = events
	ctx, end := s.begin(ctx, Operation{Name: OpAppend, Stream: req.Stream, Events: events})
	results, err := s.b.(BatchAppender).AppendBatch(ctx, []AppendRequest{req})
	if err != nil {
		var be *BatchError
		if errors.As(err, &be) && len(be.Errs) == 1 && be.Errs[0] != nil {
			err = be.Errs[0]
		}
		if end != nil {
			end(Outcome{Err: err})
		}
		return AppendResult{}, s.failed("append", err)
	}
	if end != nil {
		end(appendOutcome(len(events), results[0], nil))
	}
	s.appended(req.Stream, events, results[0])
	return results[0], nil
}
