package subscription

import (
	"context"

	"github.com/cairndb/cairn"
)

// Query subscribes to the events that match q (see [cairn.Query]) from the
// global position from: it delivers those durable from there on, in global
// order, then follows new ones live, as [All] does. The store reads by
// query: with an engine that implements [cairn.Querier] each page costs the
// events the query selects, not the log.
//
// A KindCaughtUp message's Position is after the last event of the log when
// the subscription caught up, matching or not, so that a consumer that
// resumes with At(Position) does not read again the events the query
// skipped. A subscription by query sends no KindCheckpoint message.
func Query(ctx context.Context, store *cairn.Store, q cairn.Query, from From, opts Options) (*Subscription, error) {
	if err := cairn.ValidateQuery("query", q); err != nil {
		return nil, err
	}
	opts.CheckpointEvery = -1
	s, err := subscribe(ctx, store, AllStream, from, opts)
	if err != nil {
		return nil, err
	}
	s.query = &q
	return s, nil
}

// queryHead returns the position of the last event of the log, read before
// a page of a subscription by query, and false for other subscriptions (or
// an empty log).
func (s *Subscription) queryHead(ctx context.Context) (uint64, bool, error) {
	if s.query == nil {
		return 0, false, nil
	}
	return s.store.LastPosition(ctx)
}
