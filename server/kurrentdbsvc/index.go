package kurrentdbsvc

import (
	"context"
	"math"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
)

// Reads and subscriptions of $all through a secondary index: a stream
// filter whose one prefix is $idx-ce-<category> or $idx-et-<type>, as in
// KurrentDB 25.1. They read the index list rather than the log, and send
// the events it lists (not links: resolveLinkTos does not apply), with
// their own streams, versions and positions; progress is the log position.
// An entry whose event compaction removed is skipped.

// indexStart returns the number of the first entry of key whose position
// is from or more.
func (r *reader) indexStart(ctx context.Context, key cairn.IndexKey, from uint64) (int64, error) {
	return links.NumberAt(ctx, r.s.store, key, from)
}

// readIndex reads at most count events of the index the filter names, from
// position from (inclusive) in direction dir.
func (r *reader) readIndex(ctx context.Context, from uint64, dir cairn.Direction, count uint64) error {
	key := *r.filter.index
	var next int64
	switch {
	case dir == cairn.Backward && from == cairn.LogEnd:
		next = cairn.StreamEnd
	case dir == cairn.Backward:
		if from == math.MaxUint64 {
			from--
		}
		n, err := r.indexStart(ctx, key, from+1) // the first entry after from
		if err != nil {
			return rpcError(ctx, "$all", err)
		}
		if next = n - 1; next < 0 {
			return nil
		}
	default:
		n, err := r.indexStart(ctx, key, from)
		if err != nil {
			return rpcError(ctx, "$all", err)
		}
		next = n
	}
	var sent uint64
	for sent < count {
		page, err := r.s.store.ReadIndex(ctx, key, next, readPage, dir)
		if err != nil {
			return rpcError(ctx, "$all", err)
		}
		for i := range page {
			if sent >= count {
				return nil
			}
			if !page[i].Found {
				continue
			}
			if err := r.send(ctx, &links.Resolved{Event: page[i].Event}); err != nil {
				return err
			}
			sent++
		}
		if len(page) < readPage {
			return nil
		}
		last := page[len(page)-1].Number
		if dir == cairn.Forward {
			next = last + 1
		} else if next = last - 1; next < 0 {
			return nil
		}
	}
	return nil
}

// followIndex subscribes to $all through the index the filter names:
// catch-up from the starting point, then live, as followAll does. A
// checkpoint goes out when the head of the log has moved filter.every
// positions past the last one sent, so that a client can resume a sparse
// subscription without rescanning.
func (r *reader) followIndex(ctx context.Context, ao *api.ReadReq_Options_AllOptions) error {
	key := *r.filter.index
	var next int64
	switch v := ao.AllOption.(type) {
	case *api.ReadReq_Options_AllOptions_Start:
	case *api.ReadReq_Options_AllOptions_Position:
		p := v.Position.GetCommitPosition()
		if p == math.MaxUint64 {
			p--
		}
		n, err := r.indexStart(ctx, key, p+1)
		if err != nil {
			return rpcError(ctx, "$all", err)
		}
		next = n
	case *api.ReadReq_Options_AllOptions_End:
		if h, ok := r.s.head(ctx); ok {
			n, err := r.indexStart(ctx, key, h+1)
			if err != nil {
				return rpcError(ctx, "$all", err)
			}
			next = n
		}
	default:
		return invalid("subscribe to $all: no position to start from")
	}
	live := false
	var checkpointed, last uint64
	for {
		changed, local := r.s.store.Changes(), r.s.local.wait()
		// Every event up to head is visible before the read below, with
		// its entries: a checkpoint at head skips no event.
		head, headKnown := r.s.store.Head()
		page, err := r.s.store.ReadIndex(ctx, key, next, readPage, cairn.Forward)
		if err != nil {
			return rpcError(ctx, "$all", err)
		}
		for i := range page {
			next = page[i].Number + 1
			if !page[i].Found {
				continue
			}
			if err := r.send(ctx, &links.Resolved{Event: page[i].Event}); err != nil {
				return err
			}
			last = page[i].Position
			r.s.metrics.SubscriptionEvents(1)
		}
		if len(page) >= readPage {
			continue
		}
		if headKnown && head >= checkpointed+uint64(r.filter.every) {
			if err := r.checkpoint(head); err != nil {
				return err
			}
			checkpointed = head
		}
		if !live {
			live = true
			pos := last
			if headKnown {
				pos = max(pos, head)
			}
			if err := r.caughtUp(nil, &pos); err != nil {
				return err
			}
		}
		if err := wait(ctx, changed, local); err != nil {
			return err
		}
	}
}
