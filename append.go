package cairn

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
)

// Append appends events to stream if its version satisfies expected, and
// returns the version and position of the last event. See the package
// documentation for the guarantees.
func (s *Store) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error) {
	var buf *[]EventData
	var err error
	if len(events) >= largeAppend {
		buf = takeAppendBuffer()
		events, err = s.checkAppendInto(*buf, stream, expected, events)
	} else {
		events, err = s.checkAppend(stream, expected, events)
	}
	if err != nil {
		return AppendResult{}, err
	}
	ctx, end := s.begin(ctx, Operation{Name: OpAppend, Stream: stream, Events: events})
	res, err := s.b.Append(ctx, stream, expected, events)
	if end != nil {
		end(appendOutcome(len(events), res, err))
	}
	if err != nil {
		return res, s.failed("append", err)
	}
	s.appended(stream, events, res)
	if buf != nil {
		// The engine is done with the copy: it answered the append.
		// (After a failure it may not be: a call abandoned when its
		// context ended can leave the write in flight.)
		clear(events)
		*buf = events[:0]
		appendBuffers.Put(buf)
	}
	return res, nil
}

// largeAppend is the number of events from which Append copies an
// append's events into a buffer it reuses rather than a new one. A new
// buffer of that size is a large allocation, whose memory the Go runtime
// often takes fresh from the system, one page fault per 4 KiB: 28 per
// append of 1000 events, about a sixth of the append's time.
const largeAppend = 256

// appendBuffers holds the buffers of large appends (*[]EventData).
var appendBuffers sync.Pool

func takeAppendBuffer() *[]EventData {
	if b, ok := appendBuffers.Get().(*[]EventData); ok {
		return b
	}
	return new([]EventData)
}

func (s *Store) checkAppend(stream string, expected ExpectedVersion, events []EventData) ([]EventData, error) {
	return s.checkAppendInto(nil, stream, expected, events)
}

func (s *Store) checkAppendInto(buf []EventData, stream string, expected ExpectedVersion, events []EventData) ([]EventData, error) {
	if err := s.validStream(stream); err != nil {
		return nil, err
	}
	if err := validateExpected(expected); err != nil {
		return nil, err
	}
	return prepareEventsInto(buf, events, s.opts.MaxEventBytes, &s.ids)
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
		!errors.Is(err, ErrWrongExpectedVersion) && !errors.Is(err, ErrConditionFailed) &&
		!errors.Is(err, ErrStreamNotFound) && !errors.Is(err, ErrInvalidArgument) {
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
//
// A request without events is check-only: it writes nothing and fails the
// batch unless its stream satisfies its expectation, checked with the rest
// (atomically when the engine implements [BatchAppender]). It lets a
// decision that read one stream write to another, as KurrentDB's
// consistency checks do.
func (s *Store) AppendBatch(ctx context.Context, requests ...AppendRequest) ([]AppendResult, error) {
	if len(requests) == 0 {
		return nil, invalidf("requests", "a batch needs at least one request")
	}
	prepared := make([]AppendRequest, len(requests))
	seen := make(map[string]int, len(requests))
	ids := make(map[uuid.UUID]int)
	for i, r := range requests {
		var events []EventData
		var err error
		if len(r.Events) == 0 {
			err = s.checkOnly(r.Stream, r.Expected)
			if err == nil && r.Condition != nil {
				err = invalidf("condition", "a request without events checks only its expectation; put the condition on a request that writes")
			}
		} else {
			events, err = s.checkAppend(r.Stream, r.Expected, r.Events)
		}
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
	ctx, end := s.begin(ctx, Operation{Name: OpAppendBatch, Batch: prepared})
	results, err := s.appendBatch(ctx, prepared)
	if end != nil {
		end(batchOutcome(prepared, results, err))
	}
	return results, err
}

// batchOutcome is the outcome of a batch append of requests.
func batchOutcome(requests []AppendRequest, results []AppendResult, err error) Outcome {
	if err != nil {
		return Outcome{Err: err}
	}
	o := Outcome{}
	for i, r := range requests {
		if len(r.Events) > 0 {
			o.Events += len(r.Events)
			o.Position = max(o.Position, results[i].Position)
		}
	}
	return o
}

// appendBatch appends the validated requests of a batch.
func (s *Store) appendBatch(ctx context.Context, prepared []AppendRequest) ([]AppendResult, error) {
	if ba, ok := s.b.(BatchAppender); ok {
		results, err := ba.AppendBatch(ctx, prepared)
		if err != nil {
			return nil, s.failed("append batch", err)
		}
		for i, r := range prepared {
			if len(r.Events) > 0 {
				s.appended(r.Stream, r.Events, results[i])
			}
		}
		return results, nil
	}
	results := make([]AppendResult, 0, len(prepared))
	for i, r := range prepared {
		if len(r.Events) == 0 {
			res, err := s.checkExpected(ctx, r.Stream, r.Expected)
			if err != nil {
				errs := make([]error, len(prepared))
				errs[i] = err
				return results, s.failed("append batch", &BatchError{Errs: errs})
			}
			results = append(results, res)
			continue
		}
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

// checkOnly validates a check-only request of a batch.
func (s *Store) checkOnly(stream string, expected ExpectedVersion) error {
	if err := s.validStream(stream); err != nil {
		return err
	}
	return validateExpected(expected)
}

// checkExpected checks a check-only request of a serial batch: not
// atomically with the rest, as nothing of a serial batch is.
func (s *Store) checkExpected(ctx context.Context, stream string, expected ExpectedVersion) (AppendResult, error) {
	cur, err := s.b.StreamVersion(ctx, stream)
	if errors.Is(err, ErrStreamNotFound) {
		cur, err = -1, nil
	}
	if err != nil {
		return AppendResult{}, err
	}
	return AppendResult{Version: cur}, expected.Check(stream, cur)
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
		return s.appendIf(ctx, req)
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
	ctx, end := s.begin(ctx, Operation{Name: OpCommit, Stream: req.Stream, Events: events})
	res, err := tc.CommitAll(ctx, req, projections)
	if end != nil {
		end(appendOutcome(len(events), res, err))
	}
	if err != nil {
		return res, s.failed("commit", err)
	}
	s.appended(req.Stream, events, res)
	return res, nil
}
