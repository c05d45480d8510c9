package diskstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestReopen checks that everything the store holds survives a close and
// reopen: events with all their fields, stream states (deleted, tombstoned,
// truncated), snapshots, read model tables and retry records.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	open := func() *cairn.Store {
		db, err := diskstore.Open("db", diskstore.Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		return cairn.NewStore(db, cairn.Options{})
	}
	s := open()
	first := cairn.EventData{Type: "Opened", ContentType: cairn.ContentBinary, Data: []byte{0, 1, 2}, Metadata: []byte(`{"by":"x"}`), Tags: []string{"a", "b"}}
	first.ID[15] = 1
	res, err := s.Append(ctx, "kept", cairn.NoStream, first, cairn.EventData{Type: "Second"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"deleted", "tombstoned", "truncated"} {
		if _, err := s.Append(ctx, id, cairn.NoStream, cairn.EventData{Type: "E"}, cairn.EventData{Type: "E"}, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteStream(ctx, "deleted", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, "tombstoned", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateStream(ctx, "truncated", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "kept", Version: 1, Data: []byte("state"), Metadata: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	project := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		return tx.Put(ctx, "counts", events[0].StreamID, []byte{byte(len(events))})
	}
	if _, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "projected", Expected: cairn.NoStream, Events: []cairn.EventData{{Type: "E"}}}, project); err != nil {
		t.Fatal(err)
	}
	before, err := s.ReadAll(ctx, 0, 100, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close()
	after, err := s.ReadAll(ctx, 0, 100, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(before, after, func(a, b cairn.Event) bool {
		return a.ID == b.ID && a.Type == b.Type && a.ContentType == b.ContentType && string(a.Data) == string(b.Data) &&
			string(a.Metadata) == string(b.Metadata) && slices.Equal(a.Tags, b.Tags) && a.StreamID == b.StreamID &&
			a.Version == b.Version && a.Position == b.Position && a.Created.Equal(b.Created)
	}) {
		t.Fatalf("log after reopen differs:\n%v\n%v", before, after)
	}
	// A repeat of the first append is recognised.
	again, err := s.Append(ctx, "kept", cairn.NoStream, first, cairn.EventData{ID: after[1].ID, Type: "Second"})
	if err != nil || again != res {
		t.Fatalf("retry after reopen = %+v, %v; want %+v", again, err, res)
	}
	if _, err := s.StreamVersion(ctx, "deleted"); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("deleted stream after reopen: %v", err)
	}
	if res, err := s.Append(ctx, "deleted", cairn.NoStream, cairn.EventData{Type: "E"}); err != nil || res.Version != 3 {
		t.Fatalf("recreating a deleted stream after reopen = %+v, %v; want version 3", res, err)
	}
	if _, err := s.ReadStream(ctx, "tombstoned", 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrStreamDeleted) {
		t.Fatalf("tombstoned stream after reopen: %v", err)
	}
	got, err := s.ReadStream(ctx, "truncated", 0, 10, cairn.Forward)
	if err != nil || len(got) != 1 || got[0].Version != 2 {
		t.Fatalf("truncated stream after reopen = %v, %v", got, err)
	}
	snap, ok, err := s.GetSnapshot(ctx, "kept", 0, 10)
	if err != nil || !ok || snap.Version != 1 || string(snap.Data) != "state" || string(snap.Metadata) != "v1" || snap.Created.IsZero() {
		t.Fatalf("snapshot after reopen = %+v, %v, %v", snap, ok, err)
	}
	v, ok, err := s.ReadModelGet(ctx, "counts", "projected")
	if err != nil || !ok || len(v) != 1 || v[0] != 1 {
		t.Fatalf("read model after reopen = %v, %v, %v", v, ok, err)
	}
	var streams []string
	for id, err := range s.Streams(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, id)
	}
	// "deleted" was deleted and written again; $deletions records it.
	if want := []string{cairn.DeletionsStream, "deleted", "kept", "projected", "truncated"}; !slices.Equal(streams, want) {
		t.Fatalf("streams after reopen = %v, want %v", streams, want)
	}
}
