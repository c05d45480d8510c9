package remotestore

import (
	"context"
	"math"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
)

var (
	_ cairn.IndexReader = (*Store)(nil)
	_ cairn.Querier     = (*Store)(nil)
)

// ReadQuery implements [cairn.Querier] with the server's ReadQuery, read on
// from the last event while the server cuts its responses at its caps. The
// server checks conditions: an AppendBatch (or the Store's AppendIf, which
// goes through it) carries them to the server's engine, which checks them
// in its own critical section.
func (s *Store) ReadQuery(ctx context.Context, q cairn.Query, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	wire := cairnv1.FromQuery(q)
	return s.read(count, math.MaxInt, func(last *cairn.Event, n int32, maxBytes int64) (*cairnv1.ReadResponse, bool, error) {
		next, ok := cairn.NextFrom(from, last, func(e *cairn.Event) uint64 { return e.Position }, dir)
		if !ok {
			return nil, false, nil
		}
		res, err := s.c.ReadQuery(ctx, &cairnv1.ReadQueryRequest{Query: wire, From: next, Count: n, Direction: cairnv1.Direction(dir), MaxBytes: maxBytes})
		return res, true, err
	})
}

// ReadIndex implements [cairn.IndexReader] with the server's ReadIndex.
func (s *Store) ReadIndex(ctx context.Context, key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	wire := cairnv1.FromIndexKey(key)
	var out []cairn.IndexedEvent
	next := from
	for len(out) < count {
		want := min(count-len(out), cairnv1.MaxReadCount)
		var res *cairnv1.ReadIndexResponse
		err := s.call(func() (err error) {
			res, err = s.c.ReadIndex(ctx, &cairnv1.ReadIndexRequest{Key: wire, From: next, Count: int32(want), Direction: cairnv1.Direction(dir)})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, e := range res.GetEntries() {
			entry, err := cairnv1.ToIndexedEvent(e)
			if err != nil {
				return nil, err
			}
			out = append(out, entry)
		}
		page := res.GetEntries()
		if len(page) == 0 || (len(page) < want && !res.GetSizeLimited()) {
			break // the end
		}
		last := out[len(out)-1].Number
		if dir == cairn.Backward {
			if last == 0 {
				break
			}
			next = last - 1
		} else {
			next = last + 1
		}
	}
	return out, nil
}
