package links

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
)

// readIndex reads a list of the store's index ([cairn.Store.ReadIndex]),
// saying which stream the read was for when the engine keeps no index.
func readIndex(ctx context.Context, store *cairn.Store, key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	es, err := store.ReadIndex(ctx, key, from, count, dir)
	if errors.Is(err, cairn.ErrNotSupported) {
		return nil, fmt.Errorf("read %s: the engine keeps no index: %w", StreamOf(key), err)
	}
	return es, err
}

// HasIndex reports whether the store's engine keeps the index that the
// standard projections' streams and the $idx- filters read.
func HasIndex(store *cairn.Store) bool {
	_, ok := store.Backend().(cairn.IndexReader)
	return ok
}

// lastEntry returns the last entry of the list key, and false when it has
// none.
func lastEntry(ctx context.Context, store *cairn.Store, key cairn.IndexKey) (cairn.IndexedEvent, bool, error) {
	es, err := readIndex(ctx, store, key, cairn.StreamEnd, 1, cairn.Backward)
	if err != nil || len(es) == 0 {
		return cairn.IndexedEvent{}, false, err
	}
	return es[0], true, nil
}

// NumberAt returns the number of the first entry of the list key whose
// position is pos or more: the number of entries when there is none. It
// searches the list (a list's positions ascend with its numbers), in
// about log2(entries) reads of one entry.
func NumberAt(ctx context.Context, store *cairn.Store, key cairn.IndexKey, pos uint64) (int64, error) {
	last, ok, err := lastEntry(ctx, store, key)
	if err != nil || !ok {
		return 0, err
	}
	if last.Position < pos {
		return last.Number + 1, nil
	}
	lo, hi := int64(0), last.Number
	for lo < hi {
		mid := lo + (hi-lo)/2
		es, err := readIndex(ctx, store, key, mid, 1, cairn.Forward)
		if err != nil {
			return 0, err
		}
		if len(es) == 0 || es[0].Position >= pos {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}
