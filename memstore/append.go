package memstore

import (
	"context"
	"slices"

	"github.com/cairndb/cairn"
)

// Append implements [cairn.Backend].
func (s *Store) Append(ctx context.Context, id string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return cairn.AppendResult{}, err
	}
	res, retry, err := s.prepareLocked(id, expected, events)
	if err != nil || retry {
		return res, err
	}
	return s.writeLocked(id, events), nil
}

// prepareLocked checks an append without writing. retry reports that
// there is nothing to write, res being the result: a repeat of an earlier
// append, or a check-only request of a batch (no events). s.mu is held.
func (s *Store) prepareLocked(id string, expected cairn.ExpectedVersion, events []cairn.EventData) (res cairn.AppendResult, retry bool, err error) {
	st := s.streams[id]
	if st != nil && st.tombstoned {
		return res, false, cairn.Deleted("append to", id)
	}
	if len(events) == 0 { // check-only, in a batch
		res.Version = -1
		if st != nil {
			res.Version = st.current()
		}
		return res, true, expected.Check(id, res.Version)
	}
	if pos, ok := s.ids[events[0].ID]; ok {
		first := s.log[pos]
		var recorded []cairn.Event
		if rs := s.streams[first.StreamID]; rs != nil {
			for v := first.Version; v < int64(len(rs.positions)) && len(recorded) < len(events); v++ {
				recorded = append(recorded, s.log[rs.positions[v]])
			}
		}
		res, err := cairn.RetryResult(id, expected, events, recorded)
		return res, true, err
	}
	current := int64(-1)
	if st != nil {
		current = st.current()
	}
	return res, false, expected.Check(id, current)
}

// writeLocked appends events to stream id. s.mu is held for writing.
func (s *Store) writeLocked(id string, events []cairn.EventData) cairn.AppendResult {
	st := s.streams[id]
	if st == nil {
		st = &stream{}
		s.streams[id] = st
	}
	st.deleted = false
	now := cairn.Now()
	for _, e := range events {
		pos := uint64(len(s.log))
		e.Data, e.Metadata, e.Tags = slices.Clone(e.Data), slices.Clone(e.Metadata), slices.Clone(e.Tags)
		s.log = append(s.log, cairn.Event{
			EventData: e,
			StreamID:  id,
			Version:   int64(len(st.positions)),
			Position:  pos,
			Created:   now,
		})
		st.positions = append(st.positions, pos)
		s.ids[e.ID] = pos
		s.fileLocked(&s.log[pos])
	}
	last := s.log[len(s.log)-1]
	return cairn.AppendResult{Version: last.Version, Position: last.Position}
}

// AppendBatch implements [cairn.BatchAppender].
func (s *Store) AppendBatch(ctx context.Context, reqs []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	results := make([]cairn.AppendResult, len(reqs))
	retried := make([]bool, len(reqs))
	errs := make([]error, len(reqs))
	failed := false
	for i, r := range reqs {
		results[i], retried[i], errs[i] = s.prepareLocked(r.Stream, r.Expected, r.Events)
		if errs[i] == nil && !retried[i] {
			errs[i] = s.checkConditionLocked(r.Condition)
		}
		failed = failed || errs[i] != nil
	}
	if failed {
		return nil, &cairn.BatchError{Errs: errs}
	}
	for i, r := range reqs {
		if !retried[i] {
			results[i] = s.writeLocked(r.Stream, r.Events)
		}
	}
	return results, nil
}
