package aggregate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cairndb/cairn"
)

// Result is what [Repository.Handle] reports about a command it applied.
// Maestro's return: :state is Result.State, return: :events is
// Result.Events; a caller that wants nothing ignores it.
type Result[S, E any] struct {
	// State is the aggregate's state after the command's events.
	State S
	// Events are the events the command recorded, in order, as read back
	// through the codec. Empty when Decide returned none.
	Events []E
	// Version is the aggregate's version after the command: the version of
	// its last event, -1 when it has none. The command's events have the
	// versions Version-len(Events)+1 … Version. Maestro's sequence is
	// Version + 1.
	Version int64
	// Position is the global position of the command's last event; zero
	// when the command recorded nothing.
	Position uint64
}

// Handle applies cmd to the aggregate id: it hydrates the aggregate (from
// the cache or the newest snapshot, then the events after it), calls Decide,
// and commits the events it returns, with the aggregate's projections, on
// the condition that the aggregate is still at the version it read
// ([cairn.Exact], or [cairn.NoStream] when its stream does not exist: never
// written, or deleted).
//
// When another writer committed in between, Handle waits a jittered backoff,
// hydrates again and decides again, up to Options.MaxAttempts decisions in
// all; it then returns the last conflict, which matches
// [cairn.ErrWrongExpectedVersion] with errors.Is and
// [*cairn.WrongExpectedVersionError] with errors.As.
//
// A domain error from Decide is returned as is and nothing is written. A
// projection's error is returned (wrapped) and nothing is written. An event
// the codec cannot encode is an error and nothing is written.
func (r *Repository[S, C, E]) Handle(ctx context.Context, id string, cmd C) (Result[S, E], error) {
	stream, err := r.stream(id)
	if err != nil {
		return Result[S, E]{}, err
	}
	var conflict error
	for attempt := 1; attempt <= r.opts.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := r.backoff(ctx, attempt); err != nil {
				return Result[S, E]{}, fmt.Errorf("aggregate %s: %w (after %v)", stream, err, conflict)
			}
		}
		res, conflicted, err := r.attempt(ctx, id, stream, cmd)
		if conflicted {
			conflict = err
			r.log.Debug("command conflicted; deciding again", "stream", stream, "attempt", attempt, "err", err)
			continue
		}
		return res, err
	}
	return Result[S, E]{}, fmt.Errorf("aggregate %s: gave up after %d attempts: %w", stream, r.opts.MaxAttempts, conflict)
}

// attempt is one hydrate-decide-commit round of Handle. conflicted reports
// that the commit failed its expected-version check, and only that: a
// domain error that happens to wrap the same sentinel is not retried.
func (r *Repository[S, C, E]) attempt(ctx context.Context, id, stream string, cmd C) (_ Result[S, E], conflicted bool, _ error) {
	cur, err := r.fetch(ctx, id, stream)
	if err != nil {
		return Result[S, E]{}, false, err
	}
	events, err := r.def.Decide(cur.state, cmd)
	if err != nil {
		return Result[S, E]{}, false, err
	}
	if len(events) == 0 {
		return Result[S, E]{State: cur.state, Version: cur.version}, false, nil
	}
	data := make([]cairn.EventData, len(events))
	recorded := make([]E, len(events))
	for i, ev := range events {
		d, err := r.def.Codec.Encode(ev)
		if err != nil {
			return Result[S, E]{}, false, fmt.Errorf("aggregate %s: events[%d]: %w", stream, i, err)
		}
		// Evolve the events as they will be read back, so that the state
		// computed here is the state every other reader computes.
		back, err := r.def.Codec.Decode(cairn.Event{EventData: d, StreamID: stream, Version: cur.version + 1 + int64(i)})
		if err != nil {
			return Result[S, E]{}, false, fmt.Errorf("aggregate %s: events[%d] does not decode after encoding: %w", stream, i, err)
		}
		data[i], recorded[i] = d, back
	}
	expected := cairn.NoStream
	if cur.version >= 0 {
		expected = cairn.Exact(cur.version)
	}
	res, err := r.store.CommitAll(ctx, cairn.AppendRequest{Stream: stream, Expected: expected, Events: data}, r.def.Projections...)
	if err != nil {
		if errors.Is(err, cairn.ErrWrongExpectedVersion) {
			var wrong *cairn.WrongExpectedVersionError
			if errors.As(err, &wrong) && wrong.Actual < cur.version {
				// The stream is behind the state read (the database was
				// restored from an older backup, say): that state must not
				// be used again.
				r.cache.remove(id)
			}
			return Result[S, E]{}, true, err
		}
		return Result[S, E]{}, false, fmt.Errorf("aggregate %s: commit: %w", stream, err)
	}
	state := cur.state
	for _, ev := range recorded {
		state = r.def.Evolve(state, ev)
	}
	// The version of the command's first event. It is cur.version+1,
	// except when the command created the stream: a stream recreated after
	// a deletion continues the deleted stream's versions.
	first := res.Version - int64(len(events)) + 1
	next := hydrated[S]{state: state, version: res.Version, base: cur.base, origin: cur.origin}
	if cur.version < 0 {
		next.base, next.origin = first-1, first // the aggregate's history starts here
	}
	if first < 0 || (cur.version >= 0 && first != cur.version+1) {
		// Not expected from a conforming engine; keep the cache honest.
		r.log.Error("commit reported an unexpected version", "stream", stream, "version", res.Version, "events", len(events), "expected", expected)
		r.cache.remove(id)
	} else {
		r.cache.put(id, next)
		r.policySnapshot(stream, first-1, next)
	}
	return Result[S, E]{State: state, Events: recorded, Version: res.Version, Position: res.Position}, false, nil
}

func (r *Repository[S, C, E]) backoff(ctx context.Context, attempt int) error {
	return backoff(ctx, attempt, r.opts.BackoffBase, r.opts.BackoffMax)
}

// backoff waits before attempt (2, 3, …) of a command that conflicted:
// full jitter, a random wait up to base·2^(attempt-2), capped at max.
func backoff(ctx context.Context, attempt int, base, max time.Duration) error {
	limit := base
	for i := 2; i < attempt && limit < max; i++ {
		limit *= 2
	}
	limit = min(limit, max)
	t := time.NewTimer(rand.N(limit) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
