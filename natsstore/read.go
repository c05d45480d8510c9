package natsstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
)

// Reads come from the node's copy. Each checks that the node is open, as
// the copy's own reads do once it is closed.

// Sync returns once the node's copy holds every record the log held when
// Sync was called: a read after it sees every write acknowledged, through
// any node, before Sync was called.
//
// Sync goes through the log: it joins the next record this node's writer
// publishes (a record of its own when no write is waiting) and returns
// once the node applied that record. The log acknowledges a record only
// when a majority of its servers hold it, after every record acknowledged
// before, so a node cut off from that majority cannot return from Sync
// with a stale copy. (Asking the stream's leader for the log's last
// record is not enough: a leader cut off from the others answers from its
// own state until it notices that it lost its majority, by which time the
// others may have elected another leader and acknowledged more writes.)
// It costs a round of the log, shared with the writes and syncs of the
// same record, and the wait for the node to apply what it lacks.
func (d *DB) Sync(ctx context.Context) error {
	if d.closing.Load() {
		return cairn.ErrClosed
	}
	if err := d.haltedErr(); err != nil {
		return err
	}
	out, err := d.do(ctx, &op{barrier: true, done: make(chan struct{})})
	if err == nil {
		err = out.Err
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, cairn.ErrClosed) && !errors.Is(err, ErrHalted) {
		err = fmt.Errorf("natsstore: cannot tell that this node holds every write the cluster acknowledged (the cluster's log did not take the node's sync record): %w", err)
	}
	return err
}

// ReadStream implements [cairn.Backend].
func (d *DB) ReadStream(ctx context.Context, stream string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return d.local.ReadStream(ctx, stream, from, count, dir)
}

// ReadStreamSized implements [cairn.SizedReader].
func (d *DB) ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	return d.local.ReadStreamSized(ctx, stream, from, count, maxBytes, dir)
}

// ReadAll implements [cairn.Backend].
func (d *DB) ReadAll(ctx context.Context, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return d.local.ReadAll(ctx, from, count, dir)
}

// ReadAllSized implements [cairn.SizedReader].
func (d *DB) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	return d.local.ReadAllSized(ctx, from, count, maxBytes, dir)
}

// StreamVersion implements [cairn.Backend].
func (d *DB) StreamVersion(ctx context.Context, stream string) (int64, error) {
	return d.local.StreamVersion(ctx, stream)
}

// StreamExists implements [cairn.Backend].
func (d *DB) StreamExists(ctx context.Context, stream string) (bool, error) {
	return d.local.StreamExists(ctx, stream)
}

// HasEvents implements [cairn.Backend].
func (d *DB) HasEvents(ctx context.Context) (bool, error) { return d.local.HasEvents(ctx) }

// ListStreams implements [cairn.Backend].
func (d *DB) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	return d.local.ListStreams(ctx, after, limit)
}

// GetSnapshot implements [cairn.Snapshotter].
func (d *DB) GetSnapshot(ctx context.Context, stream string, min, max int64) (cairn.Snapshot, bool, error) {
	return d.local.GetSnapshot(ctx, stream, min, max)
}

// ReadModelGet implements [cairn.ReadModelReader].
func (d *DB) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	return d.local.ReadModelGet(ctx, table, key)
}

// ReadModelScan implements [cairn.ReadModelReader].
func (d *DB) ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]cairn.Entry, error) {
	return d.local.ReadModelScan(ctx, table, prefix, after, limit)
}

// ReadIndex implements [cairn.IndexReader]: the copy's index, which holds
// the lists ($ce-, $et-, tags) of every record the node applied.
func (d *DB) ReadIndex(ctx context.Context, key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	return d.local.ReadIndex(ctx, key, from, count, dir)
}

// ReadQuery implements [cairn.Querier] from the copy's index. An append
// condition is not decided here but where the record is applied, on every
// node alike, against the copy as it is at that point of the log.
func (d *DB) ReadQuery(ctx context.Context, q cairn.Query, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return d.local.ReadQuery(ctx, q, from, count, dir)
}

// BeginBackup starts a backup of the node's copy ([diskstore.DB.BeginBackup]):
// it holds every record the node applied before the call, and the mark of
// the last one, so that a node restored from it goes on applying the log
// from the record after. The node applies the log meanwhile, a
// compaction's purge steps too; giving their space back waits until the
// backup is closed.
func (d *DB) BeginBackup(ctx context.Context) (*diskstore.Backup, error) {
	if d.closing.Load() {
		return nil, cairn.ErrClosed
	}
	return d.local.BeginBackup(ctx)
}
