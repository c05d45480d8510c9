package memstore

import (
	"context"
	"math"
	"slices"
	"sort"

	"github.com/cairndb/cairn"
)

// ReadStream implements [cairn.Backend].
func (s *Store) ReadStream(ctx context.Context, id string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.ReadStreamSized(ctx, id, from, count, math.MaxInt, dir)
}

// ReadStreamSized implements [cairn.SizedReader].
func (s *Store) ReadStreamSized(ctx context.Context, id string, from int64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	st, err := s.liveLocked("read", id)
	if err != nil {
		return nil, err
	}
	last := int64(len(st.positions)) - 1
	var out []cairn.Event
	n := 0
	if dir == cairn.Forward {
		for v := max(from, st.before); v <= last && len(out) < count && n < maxBytes; v++ {
			out = append(out, s.eventLocked(st.positions[v]))
			n += cairn.EventBytes(out[len(out)-1])
		}
		return out, nil
	}
	if from == cairn.StreamEnd || from > last {
		from = last
	}
	for v := from; v >= st.before && len(out) < count && n < maxBytes; v-- {
		out = append(out, s.eventLocked(st.positions[v]))
		n += cairn.EventBytes(out[len(out)-1])
	}
	return out, nil
}

// eventLocked returns a copy of the event at pos that the caller may
// modify. s.mu is held.
func (s *Store) eventLocked(pos uint64) cairn.Event {
	e := s.log[pos]
	e.Data, e.Metadata, e.Tags = slices.Clone(e.Data), slices.Clone(e.Metadata), slices.Clone(e.Tags)
	return e
}

// ReadAll implements [cairn.Backend].
func (s *Store) ReadAll(ctx context.Context, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.ReadAllSized(ctx, from, count, math.MaxInt, dir)
}

// ReadAllSized implements [cairn.SizedReader].
func (s *Store) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	n := uint64(len(s.log))
	var out []cairn.Event
	size := 0
	if dir == cairn.Forward {
		for p := from; p < n && len(out) < count && size < maxBytes; p++ {
			out = append(out, s.eventLocked(p))
			size += cairn.EventBytes(out[len(out)-1])
		}
		return out, nil
	}
	if n == 0 {
		return nil, nil
	}
	if from >= n {
		from = n - 1
	}
	for p := int64(from); p >= 0 && len(out) < count && size < maxBytes; p-- {
		out = append(out, s.eventLocked(uint64(p)))
		size += cairn.EventBytes(out[len(out)-1])
	}
	return out, nil
}

// StreamVersion implements [cairn.Backend].
func (s *Store) StreamVersion(ctx context.Context, id string) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return 0, err
	}
	st, err := s.liveLocked("stream version of", id)
	if err != nil {
		return 0, err
	}
	return st.current(), nil
}

// StreamExists implements [cairn.Backend].
func (s *Store) StreamExists(ctx context.Context, id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return false, err
	}
	st := s.streams[id]
	return st != nil && st.current() >= 0, nil
}

// HasEvents implements [cairn.Backend].
func (s *Store) HasEvents(ctx context.Context) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return false, err
	}
	return len(s.log) > 0, nil
}

// ListStreams implements [cairn.Backend].
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	var ids []string
	for id, st := range s.streams {
		if id > after && st.current() >= 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}
