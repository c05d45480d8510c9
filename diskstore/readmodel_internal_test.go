package diskstore

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
)

// An entry under a key that cairn.ValidateKey refuses, which a store
// written before keys were checked may hold, is not listed: a scan could
// not resume after it (a page of one that ended with the empty key listed
// it forever; the Store refuses a cursor with NUL or invalid UTF-8).
func TestScanSkipsBadKeysWrittenBefore(t *testing.T) {
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
		for _, key := range []string{"", "a", "a\x00b", "a\xff", strings.Repeat("a", cairn.MaxKeyBytes+1), "b"} {
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
