// Package remotestore is a cairn engine whose storage is a cairn server: it
// implements [cairn.Backend] and every optional capability but transactional
// projections over cairn's own gRPC API (cairn.v1), the index and queries
// included ([cairn.IndexReader], [cairn.Querier]): the server's engine
// checks append conditions in its own critical section. A program, or the cairn
// command with --server, uses a remote server exactly as it uses a local
// store, and the conformance suite runs against it.
//
// The server decides durability: an append returns when the server's engine
// has made it durable. Live notifications come from the server's Watch
// stream, so [cairn.Store.Changes] fires for events appended by any client;
// after a lost connection the stream is re-opened and reports the current
// head, so a subscriber catches up on what it missed.
//
// # Caveats
//
// CommitAll with projections is not available remotely (a projection is Go
// code that must run inside the server's transaction).
package remotestore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"google.golang.org/grpc"
)

// Options configure a connection. The zero value connects without TLS and
// without credentials.
type Options struct {
	// TLS, when not nil, secures the connection.
	TLS *tls.Config
	// Username and Password are sent as basic authentication.
	Username, Password string
	// Logger receives connection diagnostics. Nil discards them.
	Logger *slog.Logger
}

// Store is a connection to a cairn server.
type Store struct {
	conn   *grpc.ClientConn
	c      cairnv1.CairnClient
	log    *slog.Logger
	closed atomic.Bool
	ctx    context.Context // cancelled by Close; ends Watch streams
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ cairn.Backend         = (*Store)(nil)
	_ cairn.BatchAppender   = (*Store)(nil)
	_ cairn.Truncater       = (*Store)(nil)
	_ cairn.Tombstoner      = (*Store)(nil)
	_ cairn.Compacter       = (*Store)(nil)
	_ cairn.DiskSizer       = (*Store)(nil)
	_ cairn.HealthChecker   = (*Store)(nil)
	_ cairn.Snapshotter     = (*Store)(nil)
	_ cairn.ReadModelReader = (*Store)(nil)
	_ cairn.Notifier        = (*Store)(nil)
	_ cairn.SizedReader     = (*Store)(nil)
)

// call runs fn unless the store is closed, and converts its error back to a
// typed cairn error.
func (s *Store) call(fn func() error) error {
	if s.closed.Load() {
		return cairn.ErrClosed
	}
	return cairnv1.FromStatus(fn())
}

// Append implements [cairn.Backend].
func (s *Store) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	var res *cairnv1.AppendResponse
	err := s.call(func() (err error) {
		res, err = s.c.Append(ctx, cairnv1.FromAppendRequest(cairn.AppendRequest{Stream: stream, Expected: expected, Events: events}))
		return err
	})
	if err != nil {
		return cairn.AppendResult{}, err
	}
	return cairn.AppendResult{Version: res.GetVersion(), Position: res.GetPosition()}, nil
}

// AppendBatch implements [cairn.BatchAppender].
func (s *Store) AppendBatch(ctx context.Context, reqs []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	in := &cairnv1.AppendBatchRequest{Requests: make([]*cairnv1.AppendRequest, len(reqs))}
	for i, r := range reqs {
		in.Requests[i] = cairnv1.FromAppendRequest(r)
	}
	var res *cairnv1.AppendBatchResponse
	if err := s.call(func() (err error) { res, err = s.c.AppendBatch(ctx, in); return err }); err != nil {
		return nil, err
	}
	out := make([]cairn.AppendResult, len(res.GetResults()))
	for i, r := range res.GetResults() {
		out[i] = cairn.AppendResult{Version: r.GetVersion(), Position: r.GetPosition()}
	}
	return out, nil
}

// ReadStream implements [cairn.Backend].
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.ReadStreamSized(ctx, stream, from, count, math.MaxInt, dir)
}

// ReadStreamSized implements [cairn.SizedReader].
func (s *Store) ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.read(count, maxBytes, func(last *cairn.Event, n int32, maxBytes int64) (*cairnv1.ReadResponse, bool, error) {
		next, ok := cairn.NextFrom(from, last, func(e *cairn.Event) int64 { return e.Version }, dir)
		if !ok {
			return nil, false, nil
		}
		res, err := s.c.ReadStream(ctx, &cairnv1.ReadStreamRequest{Stream: stream, From: next, Count: n, Direction: cairnv1.Direction(dir), MaxBytes: maxBytes})
		return res, true, err
	})
}

// ReadAll implements [cairn.Backend].
func (s *Store) ReadAll(ctx context.Context, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.ReadAllSized(ctx, from, count, math.MaxInt, dir)
}

// ReadAllSized implements [cairn.SizedReader].
func (s *Store) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.read(count, maxBytes, func(last *cairn.Event, n int32, maxBytes int64) (*cairnv1.ReadResponse, bool, error) {
		next, ok := cairn.NextFrom(from, last, func(e *cairn.Event) uint64 { return e.Position }, dir)
		if !ok {
			return nil, false, nil
		}
		res, err := s.c.ReadAll(ctx, &cairnv1.ReadAllRequest{From: next, Count: n, Direction: cairnv1.Direction(dir), MaxBytes: maxBytes})
		return res, true, err
	})
}

// read returns up to count events holding maxBytes (see
// [cairn.SizedReader]), calling the server as often as its caps on one
// response require: at most cairnv1.MaxReadCount events, and no more than
// fit in one message (the response then says size_limited). call reads
// after last (nil for the first call); false means there is nothing after
// it.
func (s *Store) read(count, maxBytes int, call func(last *cairn.Event, n int32, maxBytes int64) (*cairnv1.ReadResponse, bool, error)) ([]cairn.Event, error) {
	var out []cairn.Event
	var last *cairn.Event
	got := 0 // data and metadata bytes read
	for {
		want := min(count-len(out), cairnv1.MaxReadCount)
		var ask int64 // no limit but the server's
		if maxBytes < math.MaxInt {
			ask = int64(maxBytes - got)
		}
		var res *cairnv1.ReadResponse
		var ok bool
		if err := s.call(func() (err error) { res, ok, err = call(last, int32(want), ask); return err }); err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		page, err := cairnv1.ToEvents(res.GetEvents())
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		for _, e := range page {
			got += cairn.EventBytes(e)
		}
		switch {
		case len(out) >= count || got >= maxBytes:
			return out, nil // all that was asked for
		case len(page) == 0 || (len(page) < want && !res.GetSizeLimited()):
			return out, nil // the end
		}
		// A response cut at the server's caps: read on from its last event.
		last = &out[len(out)-1]
	}
}

// StreamVersion implements [cairn.Backend].
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	var res *cairnv1.StreamVersionResponse
	err := s.call(func() (err error) {
		res, err = s.c.StreamVersion(ctx, &cairnv1.StreamRequest{Stream: stream})
		return err
	})
	return res.GetVersion(), err
}

// StreamExists implements [cairn.Backend].
func (s *Store) StreamExists(ctx context.Context, stream string) (bool, error) {
	var res *cairnv1.StreamExistsResponse
	err := s.call(func() (err error) {
		res, err = s.c.StreamExists(ctx, &cairnv1.StreamRequest{Stream: stream})
		return err
	})
	return res.GetExists(), err
}

// HasEvents implements [cairn.Backend].
func (s *Store) HasEvents(ctx context.Context) (bool, error) {
	var res *cairnv1.HasEventsResponse
	err := s.call(func() (err error) { res, err = s.c.HasEvents(ctx, &cairnv1.Empty{}); return err })
	return res.GetHasEvents(), err
}

// ListStreams implements [cairn.Backend].
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	var res *cairnv1.ListStreamsResponse
	err := s.call(func() (err error) {
		res, err = s.c.ListStreams(ctx, &cairnv1.ListStreamsRequest{After: after, Limit: int32(min(limit, 1<<30))})
		return err
	})
	return res.GetStreams(), err
}

// DeleteStream implements [cairn.Backend].
func (s *Store) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return s.call(func() error {
		_, err := s.c.DeleteStream(ctx, &cairnv1.DeleteStreamRequest{Stream: stream, ExpectedVersion: new(expected.Int64())})
		return err
	})
}

// TombstoneStream implements [cairn.Tombstoner].
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return s.call(func() error {
		_, err := s.c.TombstoneStream(ctx, &cairnv1.DeleteStreamRequest{Stream: stream, ExpectedVersion: new(expected.Int64())})
		return err
	})
}

// TruncateStream implements [cairn.Truncater].
func (s *Store) TruncateStream(ctx context.Context, stream string, before int64) error {
	return s.call(func() error {
		_, err := s.c.TruncateStream(ctx, &cairnv1.TruncateStreamRequest{Stream: stream, Before: before})
		return err
	})
}

// Compact implements [cairn.Compacter].
func (s *Store) Compact(ctx context.Context) error {
	return s.call(func() error { _, err := s.c.Compact(ctx, &cairnv1.Empty{}); return err })
}

// Backup starts a backup of the server's embedded engine (cairn.v1's
// Backup call, which takes an administrator or an operator): the stream's
// first message holds the manifest, the others the files' contents, then
// it ends with io.EOF. previous is the manifest of the newest backup the
// caller holds of this store (package diskstore/backup), nil for none.
func (s *Store) Backup(ctx context.Context, previous []byte) (cairnv1.Cairn_BackupClient, error) {
	var stream cairnv1.Cairn_BackupClient
	err := s.call(func() (err error) {
		stream, err = s.c.Backup(ctx, &cairnv1.BackupRequest{Previous: previous})
		return err
	})
	return stream, err
}

// Stats returns the server's statistics.
func (s *Store) Stats(ctx context.Context) (*cairnv1.StatsResponse, error) {
	var res *cairnv1.StatsResponse
	err := s.call(func() (err error) { res, err = s.c.Stats(ctx, &cairnv1.Empty{}); return err })
	return res, err
}

// DiskBytes implements [cairn.DiskSizer].
func (s *Store) DiskBytes(ctx context.Context) (int64, error) {
	st, err := s.Stats(ctx)
	if err != nil {
		return 0, err
	}
	if !st.GetDiskBytesKnown() {
		return 0, fmt.Errorf("disk bytes: %w", cairn.ErrNotSupported)
	}
	return st.GetDiskBytes(), nil
}

// Health implements [cairn.HealthChecker]: an unreachable server, or one
// whose engine reports a problem, is unhealthy.
func (s *Store) Health(ctx context.Context) error {
	st, err := s.Stats(ctx)
	if err != nil {
		return err
	}
	if h := st.GetHealth(); h != "" {
		return errors.New(h)
	}
	return nil
}

// CommitSnapshot implements [cairn.Snapshotter].
func (s *Store) CommitSnapshot(ctx context.Context, snap cairn.Snapshot) error {
	return s.call(func() error { _, err := s.c.CommitSnapshot(ctx, cairnv1.FromSnapshot(snap)); return err })
}

// GetSnapshot implements [cairn.Snapshotter].
func (s *Store) GetSnapshot(ctx context.Context, stream string, min, max int64) (cairn.Snapshot, bool, error) {
	var res *cairnv1.GetSnapshotResponse
	err := s.call(func() (err error) {
		res, err = s.c.GetSnapshot(ctx, &cairnv1.GetSnapshotRequest{Stream: stream, Min: min, Max: max})
		return err
	})
	if err != nil || !res.GetFound() {
		return cairn.Snapshot{}, false, err
	}
	return cairnv1.ToSnapshot(res.GetSnapshot()), true, nil
}

// ReadModelGet implements [cairn.ReadModelReader].
func (s *Store) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	// Checked here too: a cairn.v1 message cannot carry a string that is
	// not UTF-8.
	if err := cairn.ValidateTable(table); err != nil {
		return nil, false, err
	}
	if err := cairn.ValidateKey(key); err != nil {
		return nil, false, err
	}
	var res *cairnv1.ReadModelGetResponse
	err := s.call(func() (err error) {
		res, err = s.c.ReadModelGet(ctx, &cairnv1.ReadModelGetRequest{Table: table, Key: key})
		return err
	})
	return res.GetValue(), res.GetFound(), err
}

// ReadModelScan implements [cairn.ReadModelReader].
func (s *Store) ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]cairn.Entry, error) {
	if err := cairn.ValidateScan(table, prefix, after); err != nil {
		return nil, err
	}
	var res *cairnv1.ReadModelScanResponse
	err := s.call(func() (err error) {
		res, err = s.c.ReadModelScan(ctx, &cairnv1.ReadModelScanRequest{Table: table, Prefix: prefix, After: after, Limit: int32(min(limit, 1<<30))})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]cairn.Entry, len(res.GetEntries()))
	for i, e := range res.GetEntries() {
		out[i] = cairn.Entry{Key: e.GetKey(), Value: e.GetValue()}
	}
	return out, nil
}

// Notify implements [cairn.Notifier] with the server's Watch stream,
// re-opened after a failure. fn runs on the stream's goroutine; stop ends
// the stream and waits for that goroutine, so fn is not called once stop
// returns.
func (s *Store) Notify(fn func(head uint64)) (stop func()) {
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.wg.Go(func() {
		defer close(done)
		backoff := 50 * time.Millisecond
		for ctx.Err() == nil {
			stream, err := s.c.Watch(ctx, &cairnv1.Empty{})
			for err == nil {
				var h *cairnv1.Head
				if h, err = stream.Recv(); err == nil {
					fn(h.GetPosition())
					backoff = 50 * time.Millisecond
				}
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("cairn server watch stream ended; reconnecting", "err", err, "after", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	})
	return func() {
		cancel()
		<-done
	}
}

// Close closes the connection. Calls after Close fail with ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return cairn.ErrClosed
	}
	s.cancel()
	err := s.conn.Close()
	s.wg.Wait()
	return err
}
