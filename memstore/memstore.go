// Package memstore is cairn's in-memory engine: the whole backend contract,
// every optional capability included, with no durability. It is meant for
// tests and examples.
//
// Every operation runs under one read-write mutex, so appends, batches and
// commits with projections are trivially atomic and the global log is
// gapless for readers. Events are kept in one slice indexed by position.
//
// # Caveats
//
// Nothing survives the process. Compact does nothing: memory is not given
// back for deleted or truncated events.
package memstore

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// Store is the in-memory engine. Its zero value is not usable; call [New].
type Store struct {
	mu        sync.RWMutex
	closed    bool
	log       []cairn.Event
	streams   map[string]*stream
	ids       map[uuid.UUID]uint64 // event id → position
	snapshots map[string]cairn.Snapshot
	tables    map[string]map[string][]byte
}

type stream struct {
	positions  []uint64 // positions[v] is the position of version v
	before     int64    // versions below are truncated or deleted
	deleted    bool     // soft-deleted and not recreated
	tombstoned bool
}

func (s *stream) current() int64 {
	if s.deleted || s.tombstoned {
		return -1
	}
	return int64(len(s.positions)) - 1
}

// New returns an empty in-memory engine.
func New() *Store {
	return &Store{
		streams:   map[string]*stream{},
		ids:       map[uuid.UUID]uint64{},
		snapshots: map[string]cairn.Snapshot{},
		tables:    map[string]map[string][]byte{},
	}
}

// Open returns a [cairn.Store] over a new in-memory engine.
func Open() *cairn.Store { return cairn.NewStore(New(), cairn.Options{}) }

var (
	_ cairn.Backend         = (*Store)(nil)
	_ cairn.BatchAppender   = (*Store)(nil)
	_ cairn.Truncater       = (*Store)(nil)
	_ cairn.Tombstoner      = (*Store)(nil)
	_ cairn.Compacter       = (*Store)(nil)
	_ cairn.DiskSizer       = (*Store)(nil)
	_ cairn.HealthChecker   = (*Store)(nil)
	_ cairn.Snapshotter     = (*Store)(nil)
	_ cairn.TxCommitter     = (*Store)(nil)
	_ cairn.ReadModelReader = (*Store)(nil)
	_ cairn.SizedReader     = (*Store)(nil)
)

func (s *Store) check(ctx context.Context) error {
	if s.closed {
		return cairn.ErrClosed
	}
	return ctx.Err()
}

// Append implements [cairn.Backend].
func (s *Store) Append(ctx context.Context, id string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return cairn.AppendResult{}, err
	}
	res, retry, err := s.prepare(id, expected, events)
	if err != nil || retry {
		return res, err
	}
	return s.write(id, events), nil
}

// prepare checks an append without writing. retry reports a repeat of an
// earlier append, whose result res is.
func (s *Store) prepare(id string, expected cairn.ExpectedVersion, events []cairn.EventData) (res cairn.AppendResult, retry bool, err error) {
	st := s.streams[id]
	if st != nil && st.tombstoned {
		return res, false, cairn.Deleted("append to", id)
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

func (s *Store) write(id string, events []cairn.EventData) cairn.AppendResult {
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
	}
	last := s.log[len(s.log)-1]
	return cairn.AppendResult{Version: last.Version, Position: last.Position}
}

// AppendBatch implements [cairn.BatchAppender].
func (s *Store) AppendBatch(ctx context.Context, reqs []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	results := make([]cairn.AppendResult, len(reqs))
	retried := make([]bool, len(reqs))
	errs := make([]error, len(reqs))
	failed := false
	for i, r := range reqs {
		results[i], retried[i], errs[i] = s.prepare(r.Stream, r.Expected, r.Events)
		failed = failed || errs[i] != nil
	}
	if failed {
		return nil, &cairn.BatchError{Errs: errs}
	}
	for i, r := range reqs {
		if !retried[i] {
			results[i] = s.write(r.Stream, r.Events)
		}
	}
	return results, nil
}

// CommitAll implements [cairn.TxCommitter]: the events and the projections'
// writes are applied in one critical section, or not at all.
func (s *Store) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return cairn.AppendResult{}, err
	}
	res, retry, err := s.prepare(req.Stream, req.Expected, req.Events)
	if err != nil || retry {
		return res, err
	}
	// Run the projections on the events as they will be recorded, then
	// apply their writes and the events together.
	st := s.streams[req.Stream]
	next := int64(0)
	if st != nil {
		next = int64(len(st.positions))
	}
	now := cairn.Now()
	recorded := make([]cairn.Event, len(req.Events))
	for i, e := range req.Events {
		recorded[i] = cairn.Event{EventData: e, StreamID: req.Stream, Version: next + int64(i), Position: uint64(len(s.log) + i), Created: now}
	}
	tx := &tx{s: s, writes: map[string]map[string]*[]byte{}}
	defer func() { tx.done = true }()
	for _, p := range projections {
		if err := p(ctx, tx, recorded); err != nil {
			return cairn.AppendResult{}, err
		}
	}
	res = s.write(req.Stream, req.Events)
	for table, kv := range tx.writes {
		t := s.tables[table]
		if t == nil {
			t = map[string][]byte{}
			s.tables[table] = t
		}
		for k, v := range kv {
			if v == nil {
				delete(t, k)
			} else {
				t[k] = *v
			}
		}
	}
	return res, nil
}

// tx buffers a projection's writes; a nil value is a delete. It is used
// under the Store's lock, by the projections of one CommitAll: done is set
// before the lock is released, and refuses calls from then on.
type tx struct {
	s      *Store
	writes map[string]map[string]*[]byte
	done   bool
}

var errTxDone = errors.New("memstore: transaction used after its projection returned")

// check refuses a call after the commit or with a bad table name.
func (t *tx) check(table string) error {
	if t.done {
		return errTxDone
	}
	return cairn.ValidateTable(table)
}

func (t *tx) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := t.check(table); err != nil {
		return nil, false, err
	}
	if v, ok := t.writes[table][key]; ok {
		if v == nil {
			return nil, false, nil
		}
		return slices.Clone(*v), true, nil
	}
	v, ok := t.s.tables[table][key]
	return slices.Clone(v), ok, nil
}

func (t *tx) Put(ctx context.Context, table, key string, value []byte) error {
	if err := t.check(table); err != nil {
		return err
	}
	t.set(table, key, new(slices.Clone(value)))
	return nil
}

func (t *tx) Delete(ctx context.Context, table, key string) error {
	if err := t.check(table); err != nil {
		return err
	}
	t.set(table, key, nil)
	return nil
}

func (t *tx) set(table, key string, v *[]byte) {
	if t.writes[table] == nil {
		t.writes[table] = map[string]*[]byte{}
	}
	t.writes[table][key] = v
}

// ReadModelGet implements [cairn.ReadModelReader].
func (s *Store) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	v, ok := s.tables[table][key]
	return slices.Clone(v), ok, nil
}

// ReadModelScan implements [cairn.ReadModelReader].
func (s *Store) ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]cairn.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var keys []string
	for k := range s.tables[table] {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]cairn.Entry, len(keys))
	for i, k := range keys {
		out[i] = cairn.Entry{Key: k, Value: slices.Clone(s.tables[table][k])}
	}
	return out, nil
}

// live returns the stream id, or the error for op on a stream that does not
// exist, was soft-deleted or was tombstoned.
func (s *Store) live(op, id string) (*stream, error) {
	st := s.streams[id]
	switch {
	case st != nil && st.tombstoned:
		return nil, cairn.Deleted(op, id)
	case st == nil || st.deleted:
		return nil, cairn.NotFound(op, id)
	}
	return st, nil
}

// ReadStream implements [cairn.Backend].
func (s *Store) ReadStream(ctx context.Context, id string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.ReadStreamSized(ctx, id, from, count, math.MaxInt, dir)
}

// ReadStreamSized implements [cairn.SizedReader].
func (s *Store) ReadStreamSized(ctx context.Context, id string, from int64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	st, err := s.live("read", id)
	if err != nil {
		return nil, err
	}
	last := int64(len(st.positions)) - 1
	var out []cairn.Event
	n := 0
	if dir == cairn.Forward {
		for v := max(from, st.before); v <= last && len(out) < count && n < maxBytes; v++ {
			out = append(out, s.event(st.positions[v]))
			n += cairn.EventBytes(out[len(out)-1])
		}
		return out, nil
	}
	if from == cairn.StreamEnd || from > last {
		from = last
	}
	for v := from; v >= st.before && len(out) < count && n < maxBytes; v-- {
		out = append(out, s.event(st.positions[v]))
		n += cairn.EventBytes(out[len(out)-1])
	}
	return out, nil
}

// event returns a copy of the event at pos that the caller may modify.
func (s *Store) event(pos uint64) cairn.Event {
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
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	n := uint64(len(s.log))
	var out []cairn.Event
	size := 0
	if dir == cairn.Forward {
		for p := from; p < n && len(out) < count && size < maxBytes; p++ {
			out = append(out, s.event(p))
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
		out = append(out, s.event(uint64(p)))
		size += cairn.EventBytes(out[len(out)-1])
	}
	return out, nil
}

// StreamVersion implements [cairn.Backend].
func (s *Store) StreamVersion(ctx context.Context, id string) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	st, err := s.live("stream version of", id)
	if err != nil {
		return 0, err
	}
	return st.current(), nil
}

// StreamExists implements [cairn.Backend].
func (s *Store) StreamExists(ctx context.Context, id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return false, err
	}
	st := s.streams[id]
	return st != nil && st.current() >= 0, nil
}

// HasEvents implements [cairn.Backend].
func (s *Store) HasEvents(ctx context.Context) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return false, err
	}
	return len(s.log) > 0, nil
}

// ListStreams implements [cairn.Backend].
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
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

// DeleteStream implements [cairn.Backend].
func (s *Store) DeleteStream(ctx context.Context, id string, expected cairn.ExpectedVersion) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRemove(ctx, "delete", id, expected); err != nil {
		return err
	}
	st, err := s.live("delete", id)
	if err != nil {
		return err
	}
	st.deleted = true
	st.before = int64(len(st.positions))
	delete(s.snapshots, id)
	return nil
}

// TombstoneStream implements [cairn.Tombstoner].
func (s *Store) TombstoneStream(ctx context.Context, id string, expected cairn.ExpectedVersion) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRemove(ctx, "tombstone", id, expected); err != nil {
		return err
	}
	st := s.streams[id]
	if st == nil {
		st = &stream{}
		s.streams[id] = st
	}
	st.tombstoned = true
	st.before = int64(len(st.positions))
	delete(s.snapshots, id)
	return nil
}

// checkRemove checks a delete or tombstone of id: the store is open, the
// stream is not tombstoned, and its version satisfies expected.
func (s *Store) checkRemove(ctx context.Context, op, id string, expected cairn.ExpectedVersion) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	st := s.streams[id]
	if st != nil && st.tombstoned {
		return cairn.Deleted(op, id)
	}
	current := int64(-1)
	if st != nil {
		current = st.current()
	}
	return expected.Check(id, current)
}

// TruncateStream implements [cairn.Truncater].
func (s *Store) TruncateStream(ctx context.Context, id string, before int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	st, err := s.live("truncate", id)
	if err != nil {
		return err
	}
	st.before = max(st.before, before)
	return nil
}

// Compact implements [cairn.Compacter]; in memory it does nothing.
func (s *Store) Compact(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check(ctx)
}

// DiskBytes implements [cairn.DiskSizer]: an in-memory store uses no disk.
func (s *Store) DiskBytes(ctx context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return 0, s.check(ctx)
}

// Health implements [cairn.HealthChecker].
func (s *Store) Health(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check(ctx)
}

// CommitSnapshot implements [cairn.Snapshotter].
func (s *Store) CommitSnapshot(ctx context.Context, snap cairn.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if old, ok := s.snapshots[snap.StreamID]; ok && old.Version >= snap.Version {
		return nil
	}
	if st := s.streams[snap.StreamID]; st != nil && (st.deleted || st.tombstoned) {
		return nil // a deleted stream has no snapshot
	}
	snap.Data = slices.Clone(snap.Data)
	snap.Metadata = slices.Clone(snap.Metadata)
	snap.Created = cairn.Now()
	s.snapshots[snap.StreamID] = snap
	return nil
}

// GetSnapshot implements [cairn.Snapshotter].
func (s *Store) GetSnapshot(ctx context.Context, id string, min, max int64) (cairn.Snapshot, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return cairn.Snapshot{}, false, err
	}
	snap, ok := s.snapshots[id]
	if !ok || snap.Version <= min || snap.Version > max {
		return cairn.Snapshot{}, false, nil
	}
	snap.Data = slices.Clone(snap.Data)
	snap.Metadata = slices.Clone(snap.Metadata)
	return snap, true, nil
}

// Close implements [cairn.Backend].
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return cairn.ErrClosed
	}
	s.closed = true
	return nil
}
