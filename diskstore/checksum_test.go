package diskstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestChecksum damages a stored event value behind pebble's back (so that
// pebble's own checksums, computed over the damaged value, pass): the
// engine's checksum catches it, and reads fail with ErrCorrupt instead of
// returning the event.
func TestChecksum(t *testing.T) {
	ctx := context.Background()
	db, err := Open("db", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events := []cairn.EventData{{Type: "E", Data: []byte(`{"n":1}`)}, {Type: "E", Data: []byte(`{"n":2}`)}, {Type: "E", Data: []byte(`{"n":3}`)}}
	for i := range events {
		events[i].ID[0] = byte(i + 1)
	}
	if _, err := db.Append(ctx, "s", cairn.NoStream, events); err != nil {
		t.Fatal(err)
	}
	k := eventKey(1)
	v, closer, err := db.pdb.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), v...)
	closer.Close()
	bad[len(bad)-3] ^= 1 // a bit of the event's data
	if err := db.pdb.Set(k, bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.publish(db.pdb.NewSnapshot(), db.next)

	if _, err := db.ReadAll(ctx, 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("ReadAll over a damaged event: %v, want ErrCorrupt", err)
	}
	if _, err := db.ReadStream(ctx, "s", 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("ReadStream over a damaged event: %v, want ErrCorrupt", err)
	}
	if _, err := db.ReadStream(ctx, "s", cairn.StreamEnd, 10, cairn.Backward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("backward ReadStream over a damaged event: %v, want ErrCorrupt", err)
	}
	// The events before it are still readable.
	got, err := db.ReadAll(ctx, 0, 1, cairn.Forward)
	if err != nil || len(got) != 1 || string(got[0].Data) != `{"n":1}` {
		t.Fatalf("ReadAll of the undamaged event = %v, %v", got, err)
	}
}

// TestFormatVersion: a store written in another format version is refused
// at open with an error that says so.
func TestFormatVersion(t *testing.T) {
	fs := vfs.NewMem()
	db, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	val := append([]byte(formatMagic), 0, 0, 0, FormatVersion+1)
	if err := db.pdb.Set(formatKey, seal(formatKey, val), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open("db", Options{FS: fs})
	if err == nil || !strings.Contains(err.Error(), "format version 2; this build reads version 1") {
		t.Fatalf("open of a store in format 2: %v", err)
	}
}

func TestEventLen(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, stream := range []string{"s", long} {
		for _, version := range []int64{0, 1, 127, 128, 1 << 40} {
			for _, created := range []int64{0, -1, 63, 64, -65, 1_700_000_000_000_000, -1_700_000_000_000_000} {
				for _, e := range []cairn.EventData{
					{},
					{Type: "t", Data: []byte(long), Metadata: []byte("m")},
					{Type: long, Data: make([]byte, 20000), Tags: []string{"a", long, ""}},
				} {
					got := eventLen(stream, version, created, &e)
					want := len(appendEvent(nil, stream, version, created, &e))
					if got != want {
						t.Fatalf("eventLen(%d-byte stream, %d, %d) = %d, the encoding has %d bytes", len(stream), version, created, got, want)
					}
				}
			}
		}
	}
}
