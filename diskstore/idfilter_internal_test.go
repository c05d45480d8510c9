package diskstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// randomID returns a UUIDv4 drawn from rng, as the KurrentDB clients make
// them.
func randomID(rng *rand.Rand) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], rng.Uint64())
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// TestIDFilter: a filter holds every ID added, of any kind (random,
// time-ordered, sequential), and tells most IDs not added apart.
func TestIDFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 100_000
	f := newIDFilter(n)
	var added []id128
	for i := range n {
		var id uuid.UUID
		switch i % 3 {
		case 0:
			id = randomID(rng)
		case 1:
			id = uuid.Must(uuid.NewV7())
		default:
			binary.BigEndian.PutUint64(id[8:], uint64(i)) // 0, 1, 2, …
		}
		k := toID128(id)
		f.add(k)
		added = append(added, k)
	}
	for i, k := range added {
		if !f.mayContain(k) {
			t.Fatalf("ID %d of %d added, then said not to be", i, n)
		}
	}
	falsePositives := 0
	const tries = 100_000
	for range tries {
		if f.mayContain(toID128(randomID(rng))) {
			falsePositives++
		}
	}
	if rate := float64(falsePositives) / tries; rate > 0.03 {
		t.Errorf("%.2f%% of IDs never added may be, at %d bits an ID", 100*rate, idFilterBitsPerID)
	}
	if f.full() {
		t.Errorf("full at its capacity of %d, after %d", f.capacity, f.added.Load())
	}
	for i := range f.capacity + 1 - n {
		f.add(id128{lo: uint64(i), hi: 1})
	}
	if !f.full() {
		t.Errorf("not full past its capacity: %d of %d", f.added.Load(), f.capacity)
	}
}

// TestRecentIDsRuleWithFilter is TestRecentIDsRule's rule with a filter
// built, as the committer builds one, halfway: every ID added, random or
// time-ordered, in order or late, is still said to may have a record; and
// the filter sends few IDs never added to the index.
func TestRecentIDsRuleWithFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var r recentIDs
	r.reset(uuid.UUID{})
	var added []uuid.UUID
	add := func(id uuid.UUID) {
		r.add(id)
		added = append(added, id)
	}
	for i := range 3 * maxRecentIDs {
		if i%2 == 0 {
			add(randomID(rng))
		} else {
			add(uuid.Must(uuid.NewV7()))
		}
		if i == maxRecentIDs {
			// The build: registered, then the IDs recorded so
			// far read (the snapshot), then put to use.
			r.next = newIDFilter(4 * maxRecentIDs)
			for _, id := range added {
				r.next.add(toID128(id))
			}
			r.next.ready.Store(true)
			r.filter, r.next = r.next, nil
		}
	}
	for i, id := range added {
		if !r.mayBeRecorded(id) {
			t.Fatalf("ID %d of %d (%v) added, then said to have no record (floor %x)", i, len(added), id, r.floor)
		}
	}
	sent := 0
	const tries = 10_000
	for range tries {
		if r.mayBeRecorded(randomID(rng)) {
			sent++
		}
	}
	if rate := float64(sent) / tries; rate > 0.05 {
		t.Errorf("%.1f%% of new random IDs sent to the index", 100*rate)
	}
}

// TestIDFilterInStore: appends whose IDs clients made at random (UUIDv4)
// make the committer of a reopened store, whose floor is the greatest ID
// recorded, build a filter of the recorded IDs. With the filter in use,
// every retry of an earlier append still returns its first result, and
// every repeat of its first ID on another stream is refused: for appends
// recorded before the filter was built and after.
func TestIDFilterInStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 10))
	const total = 6000
	ids := make([]uuid.UUID, total)
	results := make([]cairn.AppendResult, total)
	stream := func(i int) string { return fmt.Sprint("s", i%64) }
	event := func(i int) []cairn.EventData {
		return []cairn.EventData{{ID: ids[i], Type: "E", Data: []byte(fmt.Sprint(i))}}
	}
	appendAll := func(db *DB, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			ids[i] = randomID(rng)
			var err error
			if results[i], err = db.Append(ctx, stream(i), cairn.Any, event(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An append's answer follows its group's start, where the committer
	// puts a built filter to use: reading it here races with nothing.
	waitFilter := func(db *DB) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for db.recent.filter == nil {
			if time.Now().After(deadline) {
				t.Fatalf("no ID filter in use after %d lookups", db.recent.lookups)
			}
			if _, err := db.Append(ctx, "more", cairn.Any, []cairn.EventData{{ID: randomID(rng), Type: "E"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(db *DB, i int) {
		t.Helper()
		got, err := db.Append(ctx, stream(i), cairn.Any, event(i))
		if err != nil || got != results[i] {
			t.Fatalf("retry of append %d: %+v, %v; want %+v", i, got, err, results[i])
		}
		if _, err := db.Append(ctx, "other", cairn.Any, event(i)); !errors.Is(err, cairn.ErrDuplicateEvent) {
			t.Fatalf("append %d's ID on another stream: %v, want ErrDuplicateEvent", i, err)
		}
	}
	reopen := func(db *DB) *DB {
		t.Helper()
		if db != nil {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
		db, err := Open(dir, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := reopen(nil)
	appendAll(db, 0, total/2)
	db = reopen(db)
	waitFilter(db)
	// Recorded after the filter was built: filed in it as they come.
	appendAll(db, total/2, total)
	for i := 0; i < total; i += 7 {
		check(db, i)
	}
	db = reopen(db)
	defer db.Close()
	waitFilter(db)
	for i := 3; i < total; i += 11 {
		check(db, i)
	}
}
