package diskstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// idKinds are the two kinds of event IDs the crash tests run with: random
// ones (UUIDv4, drawn from a generator seeded with seed, so that a failure
// can be repeated) and time-ordered ones (UUIDv7, the kind a cairn.Store
// assigns), which sort after every ID made before them. A generator is for
// one goroutine.
var idKinds = []struct {
	name string
	gen  func(seed uint64) func() uuid.UUID
}{
	{"v4", randomIDs},
	{"v7", func(uint64) func() uuid.UUID { return func() uuid.UUID { return uuid.Must(uuid.NewV7()) } }},
}

func maxID(a, b uuid.UUID) uuid.UUID {
	if bytes.Compare(a[:], b[:]) < 0 {
		return b
	}
	return a
}

func randomIDs(seed uint64) func() uuid.UUID {
	rng := rand.New(rand.NewPCG(seed, 4))
	return func() uuid.UUID {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // variant 10
		return id
	}
}

// TestRetryAfterCrash: appends acknowledged after the last flush of the
// index are in the log only, and Open replays them into the index. A retry
// of one of them after the crash (the same IDs, the same expectation) must
// return its first result and write nothing, and an append of its IDs to
// another stream must be refused with ErrDuplicateEvent: the contract's
// rule for a repeated first event ID holds whether the ID's record was
// replayed or not.
func TestRetryAfterCrash(t *testing.T) {
	ctx := context.Background()
	for _, ids := range idKinds {
		t.Run(ids.name, func(t *testing.T) {
			newID := ids.gen(2)
			fs := vfs.NewCrashableMem()
			open := func() *cairn.Store {
				db, err := diskstore.Open("db", diskstore.Options{FS: unlinked(fs)})
				if err != nil {
					t.Fatal(err)
				}
				return cairn.NewStore(db, cairn.Options{})
			}
			events := func(n int) []cairn.EventData {
				out := make([]cairn.EventData, n)
				for i := range out {
					out[i] = cairn.EventData{ID: newID(), Type: "E", Data: fmt.Appendf(nil, "%d", i)}
				}
				return out
			}
			// Appends whose retry records reach the index's tables: Close
			// flushes the index.
			s := open()
			var flushedMax uuid.UUID
			for i := range 2 {
				ev := events(2)
				if _, err := s.Append(ctx, fmt.Sprint("flushed-", i), cairn.NoStream, ev...); err != nil {
					t.Fatal(err)
				}
				flushedMax = maxID(flushedMax, ev[0].ID)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Appends acknowledged, then a crash before the index is
			// flushed again: their records are in the log only.
			s = open()
			type appended struct {
				stream   string
				expected cairn.ExpectedVersion
				events   []cairn.EventData
				res      cairn.AppendResult
			}
			var acked []appended
			var ackedMax uuid.UUID
			for i := range 40 {
				a := appended{stream: fmt.Sprint("s", i%4), expected: cairn.NoStream, events: events(1 + i%3)}
				switch {
				case i%5 == 2:
					a.expected = cairn.Any
				case i >= 4:
					a.expected = cairn.Exact(acked[i-4].res.Version)
				}
				res, err := s.Append(ctx, a.stream, a.expected, a.events...)
				if err != nil {
					t.Fatal(err)
				}
				a.res = res
				acked = append(acked, a)
				ackedMax = maxID(ackedMax, a.events[0].ID)
			}
			if bytes.Compare(ackedMax[:], flushedMax[:]) <= 0 {
				t.Fatalf("no ID acknowledged after the flush sorts after the IDs flushed (%s, %s): the test checks nothing", ackedMax, flushedMax)
			}
			fs = fs.CrashClone(vfs.CrashCloneCfg{})
			_ = s.Close()

			s = open()
			defer s.Close()
			before, err := s.ReadAll(ctx, 0, 1000, cairn.Forward)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range acked {
				res, err := s.Append(ctx, a.stream, a.expected, a.events...)
				if err != nil || res != a.res {
					t.Fatalf("retry after the crash of the append to %s at %d = %+v, %v; want the first result %+v", a.stream, a.res.Version, res, err, a.res)
				}
				if _, err := s.Append(ctx, "other", cairn.Any, a.events...); !errors.Is(err, cairn.ErrDuplicateEvent) {
					t.Fatalf("after the crash, the IDs of the append to %s at %d appended to another stream: %v, want ErrDuplicateEvent", a.stream, a.res.Version, err)
				}
				res2, err := s.AppendBatch(ctx, cairn.AppendRequest{Stream: a.stream, Expected: a.expected, Events: a.events})
				if err != nil || res2[0] != a.res {
					t.Fatalf("retry as a batch after the crash of the append to %s at %d = %+v, %v; want the first result %+v", a.stream, a.res.Version, res2, err, a.res)
				}
			}
			after, err := s.ReadAll(ctx, 0, 1000, cairn.Forward)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("the retries after the crash wrote %d events", len(after)-len(before))
			}
		})
	}
}

// TestRetryOutOfOrderIDs: appends whose time-ordered IDs reach the store
// out of order (made by clients moments before, on many connections), more
// of them than the committer keeps in memory to spare the index lookup.
// Every one of them, retried, returns its first result, and its ID on
// another stream is refused, whether the ID is among the recent ones or
// long forgotten, and after a reopen.
func TestRetryOutOfOrderIDs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := diskstore.Open(dir, diskstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	const total, window, batch = 80_000, 2_000, 500
	ids := make([]uuid.UUID, total)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	rng := rand.New(rand.NewPCG(19, 7))
	for w := 0; w < total; w += window {
		part := ids[w:min(w+window, total)]
		rng.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
	}
	stream := func(i int) string { return fmt.Sprint("s", i%64) }
	event := func(i int) cairn.EventData {
		return cairn.EventData{ID: ids[i], Type: "E", Data: []byte(fmt.Sprint(i))}
	}
	results := make([]cairn.AppendResult, 0, total)
	for b := 0; b < total; b += batch {
		reqs := make([]cairn.AppendRequest, 0, batch)
		for i := b; i < b+batch; i++ {
			reqs = append(reqs, cairn.AppendRequest{Stream: stream(i), Expected: cairn.Any, Events: []cairn.EventData{event(i)}})
		}
		res, err := db.AppendBatch(ctx, reqs)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res...)
	}
	check := func(db *diskstore.DB, i int) {
		t.Helper()
		got, err := db.Append(ctx, stream(i), cairn.Any, []cairn.EventData{event(i)})
		if err != nil || got != results[i] {
			t.Fatalf("retry of append %d: %+v, %v; want %+v", i, got, err, results[i])
		}
		if _, err := db.Append(ctx, "other", cairn.Any, []cairn.EventData{event(i)}); !errors.Is(err, cairn.ErrDuplicateEvent) {
			t.Fatalf("append %d's ID on another stream: %v, want ErrDuplicateEvent", i, err)
		}
	}
	for i := 0; i < total; i += 97 {
		check(db, i)
	}
	for i := total - window; i < total; i += 7 {
		check(db, i)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = diskstore.Open(dir, diskstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 13; i < total; i += 501 {
		check(db, i)
	}
	for i := total - window + 3; i < total; i += 11 {
		check(db, i)
	}
	// Nothing was written twice: a new append follows the last one.
	res, err := db.Append(ctx, "last", cairn.Any, []cairn.EventData{{ID: uuid.Must(uuid.NewV7()), Type: "E"}})
	if err != nil || res.Position != results[total-1].Position+1 {
		t.Fatalf("new append at position %d (%v), want %d", res.Position, err, results[total-1].Position+1)
	}
}
