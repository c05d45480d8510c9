package diskstore

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// tx is the [cairn.Tx] a projection writes through: the indexed pebble
// batch of a group that also holds the commit's events. A write the batch
// refuses breaks the group, so the commit fails even if the projection
// ignores the error.
type tx struct {
	g      *group
	closed bool
	plan   *Plan // when set, the writes are recorded there too (see DB.PlanCommit)
}

var errTxDone = errors.New("diskstore: transaction used after its projection returned")

func (t *tx) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if t.closed {
		return nil, false, errTxDone
	}
	if err := checkEntry(table, key); err != nil {
		return nil, false, err
	}
	k := tableKey(table, key)
	v, closer, err := t.g.b.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrapErr(err)
	}
	defer closer.Close()
	p, err := unseal(k, v)
	if err != nil {
		return nil, false, err
	}
	return append([]byte{}, p...), true, nil
}

func (t *tx) Put(ctx context.Context, table, key string, value []byte) error {
	if t.closed {
		return errTxDone
	}
	if err := checkEntry(table, key); err != nil {
		return err
	}
	k := tableKey(table, key)
	if t.plan != nil {
		t.plan.Writes = append(t.plan.Writes, TableWrite{Table: table, Key: key, Value: append([]byte{}, value...)})
	}
	return t.g.set(k, seal(k, value))
}

func (t *tx) Delete(ctx context.Context, table, key string) error {
	if t.closed {
		return errTxDone
	}
	if err := checkEntry(table, key); err != nil {
		return err
	}
	if t.plan != nil {
		t.plan.Writes = append(t.plan.Writes, TableWrite{Table: table, Key: key, Delete: true})
	}
	return t.g.del(tableKey(table, key))
}

// checkTable rejects the table names that cairn.ValidateTable rejects (the
// key layout needs them non-empty and without NUL).
func checkTable(table string) error { return cairn.ValidateTable(table) }

// checkEntry rejects what checkTable rejects, and the keys that
// cairn.ValidateKey rejects.
func checkEntry(table, key string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	return cairn.ValidateKey(key)
}
