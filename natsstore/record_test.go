package natsstore

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/google/uuid"
)

func sampleRecord() *record {
	after := uint64(7)
	return &record{
		id:   uuid.Must(uuid.NewV7()),
		time: time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC),
		writes: []diskstore.Write{
			&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{
				Stream: "order-1", Expected: cairn.NoStream,
				Events:    []cairn.EventData{{ID: uuid.New(), Type: "Placed", ContentType: cairn.ContentBinary, Data: []byte{1, 2}, Metadata: []byte(`{"a":1}`), Tags: []string{"t:1", "t:2"}}},
				Condition: &cairn.AppendCondition{After: &after, FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Placed"}, Tags: []string{"t:1"}}}}},
			}, {Stream: "order-2", Expected: cairn.Exact(4), Events: []cairn.EventData{{ID: uuid.New(), Type: "X"}}}}},
			&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "order-3", Expected: cairn.Exact(0), Events: []cairn.EventData{{ID: uuid.New(), Type: "B"}}}}, Batch: true},
			&diskstore.DeleteWrite{Stream: "a", Expected: cairn.Any},
			&diskstore.DeleteWrite{Stream: "b", Expected: cairn.StreamExists, Tombstone: true},
			&diskstore.TruncateWrite{Stream: "c", Before: 3},
			&diskstore.SnapshotWrite{Snapshot: cairn.Snapshot{StreamID: "d", Version: 9, Data: []byte("s"), Metadata: []byte("m")}},
			&diskstore.CommitWrite{
				Request: cairn.AppendRequest{Stream: "e", Expected: cairn.Any, Events: []cairn.EventData{{ID: uuid.New(), Type: "C"}}},
				Plan:    diskstore.Plan{Position: 12, Version: 3, Writes: []diskstore.TableWrite{{Table: "t", Key: "k", Value: []byte("v")}, {Table: "t", Key: "gone", Delete: true}, {Table: "t", Key: "empty", Value: []byte{}}}},
			},
		},
	}
}

// A record decodes to exactly what was encoded: every node applies what
// the writer logged.
func TestRecordRoundTrip(t *testing.T) {
	purges := []*record{
		{id: uuid.New(), time: time.UnixMicro(6).UTC(), writes: []diskstore.Write{&diskstore.PurgeWrite{}}},
		{id: uuid.New(), time: time.UnixMicro(7).UTC(), writes: []diskstore.Write{&diskstore.PurgeWrite{After: "stream-9", At: true, Runs: 4096}}},
	}
	for _, r := range append([]*record{sampleRecord(), {id: uuid.New(), time: time.UnixMicro(5).UTC(), compact: true}}, purges...) {
		b, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, r)
		}
		// Every cut of the record is refused, never half-applied.
		for i := range b {
			if _, err := decodeRecord(b[:i]); !errors.Is(err, errRecord) {
				t.Fatalf("record cut at %d of %d: %v", i, len(b), err)
			}
		}
	}
}

// Any bytes decode to a record or to an error matching errRecord, without
// a panic; a record decoded encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	b, err := encodeRecord(sampleRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{recordVersion})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeRecord(p)
		if err != nil {
			if !errors.Is(err, errRecord) {
				t.Fatalf("error %v does not match errRecord", err)
			}
			return
		}
		if _, err := encodeRecord(r); err != nil {
			t.Fatal(err)
		}
	})
}
