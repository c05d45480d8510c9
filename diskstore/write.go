package diskstore

import (
	"context"

	"github.com/cairndb/cairn"
)

// Append implements [cairn.Backend].
func (d *DB) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	r := &request{kind: opAppend, reqs: []cairn.AppendRequest{{Stream: stream, Expected: expected, Events: events}}}
	if err := d.submit(ctx, r); err != nil {
		return cairn.AppendResult{}, err
	}
	return r.results[0], nil
}

// AppendBatch implements [cairn.BatchAppender]: all requests are committed
// in one pebble batch, or none.
func (d *DB) AppendBatch(ctx context.Context, requests []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	r := &request{kind: opBatch, reqs: requests}
	if err := d.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.results, nil
}

// CommitAll implements [cairn.TxCommitter]. The projections run on the
// committer goroutine, one commit at a time, while other writes wait: they
// must be quick and must not call back into the store.
func (d *DB) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	r := &request{kind: opCommitAll, reqs: []cairn.AppendRequest{req}, projections: projections}
	if err := d.submit(ctx, r); err != nil {
		return cairn.AppendResult{}, err
	}
	return r.results[0], nil
}

// DeleteStream implements [cairn.Backend].
func (d *DB) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &request{kind: opDelete, stream: stream, expected: expected})
}

// TombstoneStream implements [cairn.Tombstoner].
func (d *DB) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &request{kind: opTombstone, stream: stream, expected: expected})
}

// TruncateStream implements [cairn.Truncater]. The events below before
// disappear from reads at once and from the disk at the next [DB.Compact].
func (d *DB) TruncateStream(ctx context.Context, stream string, before int64) error {
	return d.submit(ctx, &request{kind: opTruncate, stream: stream, before: before})
}

// CommitSnapshot implements [cairn.Snapshotter].
func (d *DB) CommitSnapshot(ctx context.Context, s cairn.Snapshot) error {
	return d.submit(ctx, &request{kind: opSnapshot, snap: s})
}
