package memstore

import (
	"context"
	"errors"
	"slices"

	"github.com/cairndb/cairn"
)

// CommitAll implements [cairn.TxCommitter]: the events and the projections'
// writes are applied in one critical section, or not at all.
func (s *Store) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return cairn.AppendResult{}, err
	}
	res, retry, err := s.prepareLocked(req.Stream, req.Expected, req.Events)
	if err != nil || retry {
		return res, err
	}
	if err := s.checkConditionLocked(req.Condition); err != nil {
		return cairn.AppendResult{}, err
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
	res = s.writeLocked(req.Stream, req.Events)
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

// tx buffers a projection's writes; a nil value is a delete. It lives
// inside CommitAll, which holds s.mu for writing. It lives
// inside CommitAll, which holds s.mu for writing. It is used
// under the Store's lock, by the projections of one CommitAll: done is set
// before the lock is released, and refuses calls from then on.
type tx struct {
	s      *Store
	writes map[string]map[string]*[]byte
	done   bool
}

var errTxDone = errors.New("memstore: transaction used after its projection returned")

// check refuses a call after the commit or with a bad table name or key.
func (t *tx) check(table, key string) error {
	if t.done {
		return errTxDone
	}
	if err := cairn.ValidateTable(table); err != nil {
		return err
	}
	return cairn.ValidateKey(key)
}

func (t *tx) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := t.check(table, key); err != nil {
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
	if err := t.check(table, key); err != nil {
		return err
	}
	t.set(table, key, new(slices.Clone(value)))
	return nil
}

func (t *tx) Delete(ctx context.Context, table, key string) error {
	if err := t.check(table, key); err != nil {
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
