package aggregate

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cairndb/cairn"
)

// An aggregate's history is the readable events of its stream. Deleting the
// stream removes them all; an append then recreates the stream with versions
// that continue after the deleted ones, so the recreated aggregate's first
// event has a version above 0. Truncating the stream removes its first
// events in the same way. Hydration therefore starts from whichever event is
// readable first, and a snapshot or a cached state is used only while the
// readable events still continue it.

// continuity says how the first readable event of a read must relate to the
// state the read extends.
type continuity int

const (
	// fromScratch: the state is the initial one and the history starts at
	// the first readable event, whatever its version.
	fromScratch continuity = iota
	// afterSnapshot: the first readable event at or after the snapshot's
	// version is the one at that version or the next (the stream may have
	// been truncated up to the snapshot).
	afterSnapshot
	// afterCached: the event at the cached state's version is still
	// readable.
	afterCached
)

// outcome is what catchUp found.
type outcome int

const (
	continued outcome = iota // the state was brought up to date
	broken                   // the readable events do not continue the state
	missing                  // the stream does not exist (never written, or deleted)
	empty                    // the stream exists, but no event at or after the read's start is readable
)

// fetch hydrates the aggregate up to its current version and caches the
// result. A cached state saves the snapshot lookup and the events before it,
// once checked against the stream.
func (r *Repository[S, C, E]) fetch(ctx context.Context, id, stream string) (hydrated[S], error) {
	if h, ok := r.cache.get(id); ok {
		h, ok, err := r.refresh(ctx, stream, h)
		if err != nil {
			return hydrated[S]{}, err
		}
		if ok {
			r.cache.put(id, h)
			return h, nil
		}
		// Another writer deleted, recreated or truncated the stream, or it
		// is behind the cached state (restored from an older backup).
		r.cache.remove(id)
	}
	h, err := r.hydrate(ctx, stream, math.MaxInt64)
	if err != nil {
		return hydrated[S]{}, err
	}
	r.cache.put(id, h)
	return h, nil
}

// refresh brings the cached state h up to date. ok is false when h is
// stale: the stream no longer holds every event h was folded from.
func (r *Repository[S, C, E]) refresh(ctx context.Context, stream string, h hydrated[S]) (_ hydrated[S], ok bool, _ error) {
	if h.version < 0 {
		// Nothing to check: the aggregate is its readable events.
		h, out, err := r.catchUp(ctx, stream, r.initial(), fromScratch, math.MaxInt64)
		return h, out == continued || out == missing, err
	}
	if h.base+1 < h.version {
		// catchUp checks the event at h.version; the events before it,
		// from h.base+1, must be readable too.
		head, err := r.store.ReadStream(ctx, stream, 0, 1, cairn.Forward)
		switch {
		case errors.Is(err, cairn.ErrStreamNotFound):
			return h, false, nil
		case err != nil:
			return hydrated[S]{}, false, fmt.Errorf("aggregate %s: read the first event: %w", stream, err)
		case len(head) == 0 || head[0].Version > h.base+1:
			return h, false, nil
		}
	}
	h, out, err := r.catchUp(ctx, stream, h, afterCached, math.MaxInt64)
	return h, out == continued, err
}

// hydrate computes the state of stream up to version upTo from the store:
// from the newest usable snapshot at or before upTo when the readable events
// continue it, otherwise from the initial state and the readable events.
func (r *Repository[S, C, E]) hydrate(ctx context.Context, stream string, upTo int64) (hydrated[S], error) {
	snap, ok, err := r.fromSnapshot(ctx, stream, -1, upTo)
	if err != nil {
		return hydrated[S]{}, err
	}
	if ok {
		h, out, err := r.catchUp(ctx, stream, snap, afterSnapshot, upTo)
		if err != nil {
			return hydrated[S]{}, err
		}
		switch out {
		case continued:
			return h, nil
		case missing:
			r.log.Info("ignoring a snapshot of a stream that does not exist", "stream", stream, "version", snap.version)
			return r.initial(), nil
		case empty:
			// Nothing from the snapshot's version on is readable: the
			// snapshot is the state if the stream ends at its version.
			v, err := r.store.StreamVersion(ctx, stream)
			if err == nil && v == snap.version {
				return snap, nil
			}
			if err != nil && !errors.Is(err, cairn.ErrStreamNotFound) {
				return hydrated[S]{}, fmt.Errorf("aggregate %s: stream version: %w", stream, err)
			}
		}
		r.log.Info("ignoring a snapshot that the readable events do not continue", "stream", stream, "version", snap.version)
	}
	h, out, err := r.catchUp(ctx, stream, r.initial(), fromScratch, upTo)
	if err != nil {
		return hydrated[S]{}, err
	}
	if out != empty || upTo != math.MaxInt64 {
		return h, nil
	}
	// The stream exists but no event was readable: it was truncated to
	// its end, or an engine that reads events and the stream's state in
	// two steps saw it being created. Read its version, then read again:
	// when there is still nothing to read, every event up to that version
	// is gone, and the aggregate is the initial state at that version, so
	// that the next commit expects it.
	v, err := r.store.StreamVersion(ctx, stream)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		return r.initial(), nil
	}
	if err != nil {
		return hydrated[S]{}, fmt.Errorf("aggregate %s: stream version: %w", stream, err)
	}
	h, out, err = r.catchUp(ctx, stream, r.initial(), fromScratch, upTo)
	if err != nil {
		return hydrated[S]{}, err
	}
	if out == empty {
		h.version, h.base, h.origin = v, v, v+1
	}
	return h, nil
}

// catchUp folds into h the readable events of stream after h.version, up to
// version upTo. It reads from h.version (from 0 for the initial state), so
// that it sees whether the event at h.version is still there, and checks
// the first event it reads against c before folding anything; when that
// check fails it returns h unchanged and broken.
func (r *Repository[S, C, E]) catchUp(ctx context.Context, stream string, h hydrated[S], c continuity, upTo int64) (hydrated[S], outcome, error) {
	from := max(h.version, 0)
	first := true
	for e, err := range r.store.Stream(ctx, stream, from, cairn.Forward) {
		if errors.Is(err, cairn.ErrStreamNotFound) {
			return h, missing, nil
		}
		if err != nil {
			return hydrated[S]{}, 0, fmt.Errorf("aggregate %s: read events from version %d: %w", stream, from, err)
		}
		if first {
			first = false
			switch {
			case c == fromScratch:
				if e.Version > upTo {
					return h, continued, nil
				}
				h.version, h.base, h.origin = e.Version-1, e.Version-1, e.Version
			case e.Version == h.version:
				continue // already folded into h
			case c == afterSnapshot && e.Version == h.version+1:
			default:
				return h, broken, nil
			}
		}
		if e.Version > upTo {
			break
		}
		ev, err := r.def.Codec.Decode(e)
		if err != nil {
			return hydrated[S]{}, 0, fmt.Errorf("aggregate %s: %w", stream, err)
		}
		h.state = r.def.Evolve(h.state, ev)
		h.version = e.Version
	}
	if first {
		return h, empty, nil
	}
	return h, continued, nil
}
