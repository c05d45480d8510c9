package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
)

// snapshotMeta is the JSON object recorded as a snapshot's metadata.
type snapshotMeta struct {
	// Schema is Options.SnapshotSchema of the writer.
	Schema int `json:"schema"`
	// Origin is the version of the first event of the history the state
	// reflects: above 0 when the aggregate's stream had been deleted (or
	// truncated) and recreated before that history began.
	Origin int64 `json:"origin,omitempty"`
}

// fromSnapshot returns the state of the usable snapshot of stream whose
// version is above min and at most max, and false when there is none. A snapshot of another
// schema, or one that does not decode, is ignored (and logged): the state is
// then rebuilt from the events. An engine without snapshots has none.
func (r *Repository[S, C, E]) fromSnapshot(ctx context.Context, stream string, min, max int64) (hydrated[S], bool, error) {
	snap, ok, err := r.store.GetSnapshot(ctx, stream, min, max)
	if errors.Is(err, cairn.ErrNotSupported) {
		return hydrated[S]{}, false, nil
	}
	if err != nil {
		return hydrated[S]{}, false, fmt.Errorf("aggregate %s: get snapshot: %w", stream, err)
	}
	if !ok {
		return hydrated[S]{}, false, nil
	}
	var meta snapshotMeta
	if err := json.Unmarshal(snap.Metadata, &meta); err != nil {
		r.log.Warn("ignoring a snapshot without schema metadata", "stream", stream, "version", snap.Version, "err", err)
		return hydrated[S]{}, false, nil
	}
	if meta.Schema != r.opts.SnapshotSchema {
		r.log.Info("ignoring a snapshot of another schema", "stream", stream, "version", snap.Version, "schema", meta.Schema, "want", r.opts.SnapshotSchema)
		return hydrated[S]{}, false, nil
	}
	var s S
	if err := r.def.Codec.Encoding().Unmarshal(snap.Data, &s); err != nil {
		r.log.Warn("ignoring a snapshot that does not decode", "stream", stream, "version", snap.Version, "err", err)
		return hydrated[S]{}, false, nil
	}
	return hydrated[S]{state: s, version: snap.Version, base: snap.Version, origin: meta.Origin}, true, nil
}

// encodeSnapshot returns the snapshot of h for stream.
func (r *Repository[S, C, E]) encodeSnapshot(stream string, h hydrated[S]) (cairn.Snapshot, error) {
	data, err := r.def.Codec.Encoding().Marshal(h.state)
	if err != nil {
		return cairn.Snapshot{}, fmt.Errorf("aggregate %s: encode snapshot at version %d: %w", stream, h.version, err)
	}
	meta, err := json.Marshal(snapshotMeta{Schema: r.opts.SnapshotSchema, Origin: h.origin})
	if err != nil {
		return cairn.Snapshot{}, err
	}
	return cairn.Snapshot{StreamID: stream, Version: h.version, Data: data, Metadata: meta}, nil
}

// Snapshot brings the aggregate id up to date, as [Repository.Fetch] does,
// and stores a snapshot of its state now, waiting for the store. It returns
// the version of the snapshot. The store keeps the snapshot only if it is
// newer than the one it holds. An aggregate whose stream does not exist has
// nothing to snapshot: that is an error matching [cairn.ErrStreamNotFound].
func (r *Repository[S, C, E]) Snapshot(ctx context.Context, id string) (int64, error) {
	stream, err := r.stream(id)
	if err != nil {
		return 0, err
	}
	h, err := r.fetch(ctx, id, stream)
	if err != nil {
		return 0, err
	}
	if h.version < 0 {
		return 0, fmt.Errorf("aggregate %s: snapshot: %w", stream, cairn.ErrStreamNotFound)
	}
	snap, err := r.encodeSnapshot(stream, h)
	if err != nil {
		return 0, err
	}
	if err := r.store.CommitSnapshot(ctx, snap); err != nil {
		return 0, fmt.Errorf("aggregate %s: commit snapshot: %w", stream, err)
	}
	return h.version, nil
}

// policySnapshot queues a snapshot of next when the commit that took the
// aggregate from version prev to next crossed a multiple of SnapshotEvery.
// It never blocks: when the queue is full the snapshot is skipped.
func (r *Repository[S, C, E]) policySnapshot(stream string, prev int64, next hydrated[S]) {
	n := int64(r.opts.SnapshotEvery)
	if n <= 0 || (next.version+1)/n == (prev+1)/n {
		return
	}
	// Encode here, in the committing goroutine, so that the queued
	// snapshot does not share memory with states handed to callers.
	snap, err := r.encodeSnapshot(stream, next)
	if err != nil {
		r.log.Warn("skipping a policy snapshot", "stream", stream, "version", next.version, "err", err)
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	select {
	case r.snaps <- snap:
	default:
		r.log.Warn("snapshot queue full; skipping a policy snapshot", "stream", stream, "version", next.version)
	}
}

// writeSnapshots is the background goroutine that stores queued snapshots.
func (r *Repository[S, C, E]) writeSnapshots() {
	defer close(r.done)
	for snap := range r.snaps {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.SnapshotTimeout)
		err := r.commitPolicySnapshot(ctx, snap)
		cancel()
		if err != nil {
			r.log.Error("policy snapshot failed", "stream", snap.StreamID, "version", snap.Version, "err", err)
		}
	}
}

// commitPolicySnapshot stores snap unless its stream no longer holds the
// event at its version: the stream was deleted (or truncated) since the
// commit, and the snapshot would outlive the deletion that removed the
// stream's snapshot.
func (r *Repository[S, C, E]) commitPolicySnapshot(ctx context.Context, snap cairn.Snapshot) error {
	events, err := r.store.ReadStream(ctx, snap.StreamID, snap.Version, 1, cairn.Forward)
	if err != nil && !errors.Is(err, cairn.ErrStreamNotFound) {
		return err
	}
	if len(events) == 0 || events[0].Version != snap.Version {
		r.log.Info("skipping a policy snapshot: its stream was deleted or truncated", "stream", snap.StreamID, "version", snap.Version)
		return nil
	}
	return r.store.CommitSnapshot(ctx, snap)
}
