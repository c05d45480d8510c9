package diskstore

import (
	"context"

	"github.com/cairndb/cairn"
)

// The write API: each call is one operation (request.go) submitted to the
// commit pipeline (pipeline.go), answered once it is durable.

// submit hands op to the commit pipeline and waits for its answer; a store
// opened read-only refuses it with ErrReadOnly.
func (d *DB) submit(ctx context.Context, op operation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.opts.ReadOnly {
		return ErrReadOnly
	}
	return d.pipe.submit(ctx, op)
}

// Append implements [cairn.Backend].
func (d *DB) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	op := &appendOp{req: [1]cairn.AppendRequest{{Stream: stream, Expected: expected, Events: events}}}
	if err := d.submit(ctx, op); err != nil {
		return cairn.AppendResult{}, err
	}
	return op.result, nil
}

// AppendBatch implements [cairn.BatchAppender]: all requests are committed
// in one pebble batch, or none.
func (d *DB) AppendBatch(ctx context.Context, requests []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	op := &batchOp{reqs: requests}
	if err := d.submit(ctx, op); err != nil {
		return nil, err
	}
	return op.results, nil
}

// CommitAll implements [cairn.TxCommitter]. The projections run on the
// committer goroutine, one commit at a time, while other writes wait: they
// must be quick and must not call back into the store.
func (d *DB) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	op := &commitAllOp{req: [1]cairn.AppendRequest{req}, projections: projections}
	if err := d.submit(ctx, op); err != nil {
		return cairn.AppendResult{}, err
	}
	return op.result, nil
}

// DeleteStream implements [cairn.Backend].
func (d *DB) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &deleteOp{stream: stream, expected: expected})
}

// TombstoneStream implements [cairn.Tombstoner].
func (d *DB) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &tombstoneOp{stream: stream, expected: expected})
}

// TruncateStream implements [cairn.Truncater]. The events below before
// disappear from reads at once and from the disk at the next [DB.Compact].
func (d *DB) TruncateStream(ctx context.Context, stream string, before int64) error {
	return d.submit(ctx, &truncateOp{stream: stream, before: before})
}

// CommitSnapshot implements [cairn.Snapshotter].
func (d *DB) CommitSnapshot(ctx context.Context, s cairn.Snapshot) error {
	return d.submit(ctx, &snapshotOp{snap: s})
}

// Health returns nil when the store can serve reads and writes, and an error
// matching [ErrFailed] after a write or fsync failed. So that a failing disk
// is noticed even when nothing is appended, it commits a frame that changes
// no data, and syncs it.
func (d *DB) Health(ctx context.Context) error {
	if err := d.failed(); err != nil {
		return err
	}
	if d.opts.ReadOnly {
		return nil // reads are served; writes are refused by design
	}
	if err := d.submit(ctx, &healthOp{}); err != nil {
		return err
	}
	return d.failed()
}
