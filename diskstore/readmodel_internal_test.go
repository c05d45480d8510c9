package diskstore

import (
	"context"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
)

// An entry under the empty key, which a store written before keys were
// checked may hold, is not listed: a scan lists the keys strictly after
// its cursor, and a page that ended with the empty key could not be
// followed (a scan in pages of one listed it forever).
func TestScanSkipsAnEmptyKeyWrittenBefore(t *testing.T) {
	db, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := cairn.NewStore(db, cairn.Options{ReadBatch: 1})
	ctx := context.Background()
	// Write as the Tx did before it refused the empty key.
	legacy := func(_ context.Context, x cairn.Tx, _ []cairn.Event) error {
		g := x.(*tx).g
		for _, key := range []string{"", "a", "b"} {
			k := tableKey("t", key)
			if err := g.set(k, seal(k, []byte("v"+key))); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Expected: cairn.Any, Events: []cairn.EventData{{Type: "E"}}}, legacy); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for e, err := range s.ReadModel(ctx, "t", "") {
		if err != nil {
			t.Fatal(err)
		}
		if keys = append(keys, e.Key); len(keys) > 5 {
			break
		}
	}
	if !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("ReadModel in pages of one lists %q, want [\"a\" \"b\"]", keys)
	}
}
