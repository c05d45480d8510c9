package storetest

// Rules of transactional projections and read models.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

func testCommitAll(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	_, canRead := b.(cairn.ReadModelReader)
	ctx := context.Background()
	balance := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		for _, e := range events {
			old, _, err := tx.Get(ctx, "balances", e.StreamID)
			if err != nil {
				return err
			}
			n := len(old) + 1
			if err := tx.Put(ctx, "balances", e.StreamID, make([]byte, n)); err != nil {
				return err
			}
			// A transaction reads its own writes.
			if got, ok, err := tx.Get(ctx, "balances", e.StreamID); err != nil || !ok || len(got) != n {
				return fmt.Errorf("read own write: %d bytes, %v, %v", len(got), ok, err)
			}
			if e.StreamID == "" || e.Type == "" {
				return fmt.Errorf("projection got an incomplete event %+v", e)
			}
		}
		return tx.Put(ctx, "audit", fmt.Sprintf("%s@%d", events[0].StreamID, events[0].Version), []byte(events[0].Type))
	}
	res, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.NoStream, Events: evs(3, "Deposited")}, balance)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 {
		t.Fatalf("CommitAll returned version %d, want 2", res.Version)
	}
	if canRead {
		v, ok, err := s.ReadModelGet(ctx, "balances", "acc-1")
		if err != nil || !ok || len(v) != 3 {
			t.Fatalf("read model after commit = %d bytes, %v, %v; want 3", len(v), ok, err)
		}
	}
	logLen := len(readAll(t, s))

	boom := errors.New("projection failed")
	failing := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		if err := tx.Put(ctx, "balances", "acc-1", []byte("garbage")); err != nil {
			return err
		}
		return boom
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.Exact(2), Events: evs(1, "Deposited")}, balance, failing)
	if !errors.Is(err, boom) {
		t.Fatalf("CommitAll with a failing projection: %v, want the projection's error", err)
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.Exact(0), Events: evs(1, "Deposited")}, balance)
	wantWrongVersion(t, err, "acc-1", cairn.Exact(0), 2)
	wantVersion(t, s, "acc-1", 2)
	wantLogLen(t, s, logLen)
	if canRead {
		v, ok, err := s.ReadModelGet(ctx, "balances", "acc-1")
		if err != nil || !ok || len(v) != 3 {
			t.Fatalf("read model after failed commits = %q, %v, %v; want the 3-byte value", v, ok, err)
		}
		var keys []string
		for e, err := range s.ReadModel(ctx, "audit", "acc-") {
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, e.Key)
		}
		if !slices.Equal(keys, []string{"acc-1@0"}) {
			t.Fatalf("audit table = %v", keys)
		}
	}
}
