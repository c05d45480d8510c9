package diskstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// TestChecksum damages a stored event in the log: the record's checksum
// catches it, and reads fail with ErrCorrupt instead of returning the event.
func TestChecksum(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	db, err := Open("db", Options{FS: fs})
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
	damage(t, fs, "db/log/"+segmentName(1), []byte(`{"n":2}`))

	if _, err := db.ReadAll(ctx, 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("ReadAll over a damaged event: %v, want ErrCorrupt", err)
	}
	if _, err := db.ReadStream(ctx, "s", 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("ReadStream over a damaged event: %v, want ErrCorrupt", err)
	}
	if _, err := db.ReadStream(ctx, "s", cairn.StreamEnd, 10, cairn.Backward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("backward ReadStream over a damaged event: %v, want ErrCorrupt", err)
	}
	// Reads through the index read the same records.
	if _, err := db.ReadIndex(ctx, cairn.IndexKey{Kind: cairn.IndexType, Value: "E"}, 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("ReadIndex over a damaged event: %v, want ErrCorrupt", err)
	}
	if _, err := db.ReadQuery(ctx, cairn.Query{Items: []cairn.QueryItem{{Types: []string{"E"}}}}, 0, 10, cairn.Forward); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("ReadQuery over a damaged event: %v, want ErrCorrupt", err)
	}
	// The events before it are still readable.
	got, err := db.ReadAll(ctx, 0, 1, cairn.Forward)
	if err != nil || len(got) != 1 || string(got[0].Data) != `{"n":1}` {
		t.Fatalf("ReadAll of the undamaged event = %v, %v", got, err)
	}
}

// damage flips a bit of the first occurrence of what in the file at path.
func damage(t *testing.T, fs vfs.FS, path string, what []byte) {
	t.Helper()
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, st.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(buf, what)
	if i < 0 {
		t.Fatalf("%q not found in %s", what, path)
	}
	if _, err := f.WriteAt([]byte{buf[i+1] ^ 1}, int64(i+1)); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedFrame: at open, a damaged frame at the end of the log is the
// torn write of an append never acknowledged, and is dropped; a damaged
// frame followed by intact ones is reported as corruption, never dropped
// with what follows it.
func TestDamagedFrame(t *testing.T) {
	ctx := context.Background()
	for _, last := range []bool{true, false} {
		fs := vfs.NewMem()
		db, err := Open("db", Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		for i, data := range []string{`{"a":1}`, `{"b":2}`} {
			expected := cairn.NoStream
			if i > 0 {
				expected = cairn.Exact(int64(i) - 1)
			}
			if _, err := db.Append(ctx, "s", expected, []cairn.EventData{{ID: uuid.New(), Type: "E", Data: []byte(data)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		// Drop the index: every frame is replayed from the log.
		names, _ := fs.List("db")
		for _, n := range names {
			if n != "log" {
				_ = fs.RemoveAll("db/" + n)
			}
		}
		target := `{"a":1}`
		if last {
			target = `{"b":2}`
		}
		damage(t, fs, "db/log/"+segmentName(1), []byte(target))
		db, err = Open("db", Options{FS: fs})
		if !last {
			if !errors.Is(err, cairn.ErrCorrupt) {
				t.Fatalf("open with a damaged frame before an intact one: %v, want ErrCorrupt", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("open with a torn last frame: %v", err)
		}
		got, err := db.ReadStream(ctx, "s", 0, 10, cairn.Forward)
		if err != nil || len(got) != 1 || string(got[0].Data) != `{"a":1}` {
			t.Fatalf("after dropping the torn frame, the stream holds %v, %v; want the first event", got, err)
		}
		if _, err := db.Append(ctx, "s", cairn.Exact(0), []cairn.EventData{{ID: uuid.New(), Type: "E"}}); err != nil {
			t.Fatalf("append after the torn frame: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFormatVersion: a store written in a format version this build
// neither reads nor converts (version 1, which kept the events in pebble,
// and any later one) is refused at open with an error that says so.
func TestFormatVersion(t *testing.T) {
	for _, v := range []byte{1, FormatVersion + 1} {
		fs := vfs.NewMem()
		db, err := Open("db", Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		val := append([]byte(formatMagic), 0, 0, 0, v)
		if err := db.pdb.Set(formatKey, seal(formatKey, val), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = Open("db", Options{FS: fs})
		want := fmt.Sprintf("format version %d; this build reads versions %d to %d", v, formatNoIndex, FormatVersion)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("open of a store in format %d: %v", v, err)
		}
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
